"""One thread per process that serves every open progress stream.

Under gunicorn's gthread worker a streaming response holds a pool thread until its body
ends, so twenty open progress pages used to leave no thread for ``GET /`` or a forecast.
Now the stream view only decides the response head; the client's socket is then taken
from gunicorn (``restock.web.detach``) and handed to this process's ``Broadcaster``, which

- reads each followed job's new events once per tick (``JobQueue.poll_events``: the
  database for the embedded queue, the job's Redis Stream for Celery), not once per
  client, and formats each event once;
- writes them, chunk-framed, to every connection following that job with non-blocking
  sends from one ``selectors`` loop, each connection from its own ``Last-Event-ID``;
- sends the heartbeat comments, notices clients that went away, drops a client that
  stops reading (it resumes with ``Last-Event-ID``), and ends each stream after the job's
  final event, exactly as the generator in ``restock.web.sse`` does for in-process use.

Every ``heartbeat`` seconds (and at once for a job that had already ended when the stream
opened) the job's status is read too: a finished job's events are then read from the
record itself, so a stream also ends when a mirror missed the final event or a client
resumed past it.
"""

from __future__ import annotations

import logging
import queue as queues
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

from restock.errors import JobNotFoundError
from restock.jobs.base import Event, JobQueue
from restock.web.sse import format_event
from restock.web.streamslots import Slot

log = logging.getLogger(__name__)

#: a client whose unsent output exceeds this and that has taken nothing for
#: ``STALL_SECONDS`` is dropped; it resumes with Last-Event-ID. (A burst bigger than the
#: backlog, such as a long job's history replayed to a resuming client, is no reason to
#: drop a client that is reading it.)
MAX_BACKLOG = 256 * 1024
STALL_SECONDS = 10.0
#: buffers per sendmsg call (well below IOV_MAX)
MAX_IOV = 64
END_OF_BODY = b"0\r\n\r\n"


def chunk(text: str) -> bytes:
    """One HTTP/1.1 chunk (the streams use chunked framing, as gunicorn did)."""
    data = text.encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


HEARTBEAT = chunk(": heartbeat\n\n")


@dataclass(eq=False)
class Stream:
    """One client connection following one job."""

    sock: socket.socket
    slot: Slot
    job_id: str
    last: int
    out: list[bytes | memoryview] = field(default_factory=list)
    backlog: int = 0
    ending: bool = False  # the last chunk is queued: close once it is sent
    writing: bool = False  # registered for EVENT_WRITE
    last_sent: float = field(default_factory=time.monotonic)  # when the socket last took data

    def push(self, data: bytes) -> None:
        self.out.append(data)
        self.backlog += len(data)


@dataclass(eq=False)
class Feed:
    """A followed job: its streams, when it last wrote, when its status is due a read."""

    job_id: str
    streams: set[Stream] = field(default_factory=set)
    emitted: float = field(default_factory=time.monotonic)
    check_at: float = 0.0


@dataclass(frozen=True)
class Handoff:
    """What a request thread gives the broadcaster: the socket, the bytes to send first
    (response head and ``retry:``), where the client resumes and its slot."""

    sock: socket.socket
    first: bytes
    job_id: str
    after_id: int
    finished: bool
    slot: Slot


class Broadcaster:
    """The per-process fan-out loop; ``add`` is called from request threads.

    Parameters
    ----------
    queue: where events come from (``poll_events`` each tick, ``get``/``events`` for the
        periodic status read).
    heartbeat: seconds of silence after which a stream gets a comment line.
    poll: seconds between reads of each job's new events (what clients wait at most).
    """

    def __init__(self, queue: JobQueue, heartbeat: float, poll: float = 0.1) -> None:
        self.queue = queue
        self.heartbeat = heartbeat
        self.poll = min(poll, heartbeat)
        self.feeds: dict[str, Feed] = {}
        self._inbox: queues.SimpleQueue[Handoff] = queues.SimpleQueue()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="restock-streams", daemon=True)
        self._thread.start()

    @property
    def streams(self) -> int:
        return sum(len(feed.streams) for feed in self.feeds.values())

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def add(self, handoff: Handoff) -> None:
        """Queue a detached connection for the loop (thread-safe, never blocks)."""
        self._inbox.put(handoff)
        self._wake()
        if not self.alive:  # stopped meanwhile: what the loop will not take, close here
            self._refuse_inbox()

    def close(self) -> None:
        """Stop the loop and close every stream (their clients reconnect elsewhere)."""
        self._stop.set()
        self._wake()
        self._thread.join(10)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (already woken) or closed (stopping)

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        next_poll = time.monotonic()
        try:
            while not self._stop.is_set():
                timeout = max(0.0, next_poll - time.monotonic()) if self.feeds else None
                for key, mask in self._selector.select(timeout):
                    if key.data is None:
                        self._take_inbox()
                    elif not (mask & selectors.EVENT_READ and self._closed_by_client(key.data)):
                        if mask & selectors.EVENT_WRITE:
                            self._flush(key.data)
                now = time.monotonic()
                if now >= next_poll:
                    for feed in list(self.feeds.values()):
                        self._sync(feed, now)
                    next_poll = now + self.poll
        except Exception:  # noqa: BLE001 - logged; the streams' clients will reconnect
            log.exception("the stream broadcaster stopped")
        finally:
            for feed in list(self.feeds.values()):
                for stream in list(feed.streams):
                    self._drop(stream)
            self._refuse_inbox()
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _refuse_inbox(self) -> None:
        """Close connections handed over after the loop ended (their clients reconnect)."""
        while True:
            try:
                handoff = self._inbox.get_nowait()
            except queues.Empty:
                return
            handoff.sock.close()
            handoff.slot.release()

    def _take_inbox(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                handoff = self._inbox.get_nowait()
            except queues.Empty:
                return
            self._attach(handoff)

    def _attach(self, handoff: Handoff) -> None:
        stream = Stream(handoff.sock, handoff.slot, handoff.job_id, handoff.after_id)
        try:
            stream.sock.setblocking(False)
            self._selector.register(stream.sock, selectors.EVENT_READ, stream)
        except (OSError, ValueError):
            stream.slot.release()
            stream.sock.close()
            return
        feed = self.feeds.setdefault(handoff.job_id, Feed(handoff.job_id))
        feed.streams.add(stream)
        if handoff.finished:
            feed.check_at = 0.0  # replay it now and end: nothing more will come
        stream.push(handoff.first)
        self._flush(stream)

    # -- reading the source ----------------------------------------------------------------

    def _sync(self, feed: Feed, now: float) -> None:
        """One read for the job's streams: new events, or the job's end, or a heartbeat."""
        after = min((s.last for s in feed.streams), default=0)
        finished = False
        try:
            if now >= feed.check_at:
                feed.check_at = now + self.heartbeat
                # the status first: a job that ended has its final event in the record
                finished = self.queue.get(feed.job_id).finished
            events = (self.queue.events(feed.job_id, after) if finished
                      else self.queue.poll_events(feed.job_id, after))
        except JobNotFoundError:
            events, finished = [], True
        except Exception as error:  # noqa: BLE001 - a database or Redis blip: next tick
            log.warning("job %s: could not read its events (%s)", feed.job_id, error)
            return
        if events:
            self._deliver(feed, events)
            feed.emitted = now
        if finished:
            for stream in list(feed.streams):
                self._end(stream)
        elif now - feed.emitted >= self.heartbeat:
            feed.emitted = now
            for stream in list(feed.streams):
                stream.push(HEARTBEAT)
                self._flush(stream)

    def _deliver(self, feed: Feed, events: list[Event]) -> None:
        chunks = [(event, chunk(format_event(event))) for event in events]
        for stream in list(feed.streams):
            for event, data in chunks:
                if event.event_id <= stream.last:
                    continue
                stream.push(data)
                stream.last = event.event_id
                if event.terminal:
                    self._end(stream)
                    break
            else:
                self._flush(stream)

    # -- the connections -------------------------------------------------------------------

    def _end(self, stream: Stream) -> None:
        """Close the body (last chunk) and the connection once everything is sent."""
        if stream.ending:
            return
        stream.ending = True
        stream.push(END_OF_BODY)
        self._flush(stream)

    def _flush(self, stream: Stream) -> None:
        """Send what the socket takes now; wait for writability for the rest."""
        while stream.out:
            try:
                sent = stream.sock.sendmsg(stream.out[:MAX_IOV])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._drop(stream)  # the client went away
                return
            stream.backlog -= sent
            if sent:
                stream.last_sent = time.monotonic()
            while sent:
                head = stream.out[0]
                if sent >= len(head):
                    sent -= len(head)
                    stream.out.pop(0)
                else:
                    stream.out[0] = memoryview(head)[sent:]
                    sent = 0
        if not stream.out and stream.ending:
            self._drop(stream)
            return
        if stream.backlog > MAX_BACKLOG and time.monotonic() - stream.last_sent > STALL_SECONDS:
            log.info("job %s: dropping a stream that stopped reading", stream.job_id)
            self._drop(stream)
            return
        want_write = bool(stream.out)
        if want_write != stream.writing:
            stream.writing = want_write
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
            self._selector.modify(stream.sock, events, stream)

    def _closed_by_client(self, stream: Stream) -> bool:
        """A client sends nothing after its request: readable means it closed (or sent
        junk, which is discarded). Drops the stream and says so when it closed."""
        try:
            data = stream.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self._drop(stream)
            return True
        return False

    def _drop(self, stream: Stream) -> None:
        feed = self.feeds.get(stream.job_id)
        if feed is None or stream not in feed.streams:
            return
        feed.streams.discard(stream)
        if not feed.streams:
            del self.feeds[stream.job_id]
        try:
            self._selector.unregister(stream.sock)
        except (KeyError, ValueError):
            pass
        stream.sock.close()
        stream.slot.release()
