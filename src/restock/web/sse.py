"""Server-sent events for a job: replay from an id, follow live, heartbeat while idle.

Every event carries ``id:`` (the job's event number), ``event:`` (progress, done or
error) and one line of JSON ``data:``. A client that reconnects with ``Last-Event-ID: n``
gets exactly the events after ``n``; the stream ends after the job's ``done`` or
``error`` event. Comment lines every ``heartbeat`` seconds keep proxies from closing an
idle connection and let the server notice a client that went away.

Under ``restock serve`` the stream is written by the process's broadcaster thread
(``restock.web.streams``), not by the request's thread; the generator here is the same
stream for servers whose connections cannot be taken over (the test client, TLS).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import request, stream_with_context
from werkzeug.wrappers import Response

from restock.errors import InvalidParameterError
from restock.jobs.base import Event, JobQueue
from restock.web.jsonbody import dumps_finite
from restock.web.streamslots import Slot

if TYPE_CHECKING:
    from restock.web.streams import StreamHub

RETRY_MS = 2000
#: the environ key of a stream view's ``PendingStream``
PENDING = "restock.stream"


@dataclass(frozen=True)
class PendingStream:
    """A stream a view answered: which job, from which event, and its slot."""

    job_id: str
    after_id: int
    finished: bool
    slot: Slot


def format_event(event: Event) -> str:
    data = dumps_finite(event.data, separators=(",", ":"), default=str)
    return f"id: {event.event_id}\nevent: {event.event}\ndata: {data}\n\n"


def last_event_id() -> int:
    """The resume point: ``Last-Event-ID`` header (what EventSource sends) or query arg."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or "0"
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameterError("Last-Event-ID must be an event number",
                                    {"last_event_id": raw[:40]}) from None
    if value < 0:
        raise InvalidParameterError("Last-Event-ID must not be negative")
    return value


def job_events(queue: JobQueue, job_id: str, after_id: int, heartbeat: float) -> Iterator[str]:
    """The SSE text for a job from ``after_id`` until its terminal event."""
    yield f"retry: {RETRY_MS}\n\n"
    last = after_id
    while True:
        events = queue.events(job_id, last)
        if not events:
            if queue.get(job_id).finished:
                # the status and the final event are written in one transaction: if the
                # job ended since the read above, this read has its final event
                events = queue.events(job_id, last)
                if not events:
                    return  # the client already saw the final event
            else:
                events = queue.wait_events(job_id, last, timeout=heartbeat)
            if not events:
                yield ": heartbeat\n\n"
                continue
        for event in events:
            yield format_event(event)
            last = event.event_id
            if event.terminal:
                return


def sse_response(hub: StreamHub, job_id: str, after_id: int, status: int = 200) -> Response:
    """A streaming response for the job's events, counted against the stream limits.

    A 404 and a 429/503 (``StreamLimitError``) happen before the stream starts. The
    ``PendingStream`` left in the environ lets ``DetachStreams`` hand the connection to
    the broadcaster. A plain werkzeug ``Response`` on purpose: spectree calls
    ``get_data()`` on Flask responses returned by validated views, which would buffer the
    stream to its end.
    """
    job = hub.queue.get(job_id)  # a 404 must happen before the stream starts
    slot = hub.slots.acquire(request.remote_addr or "unknown")
    request.environ[PENDING] = PendingStream(job_id, after_id, job.finished, slot)
    response = Response(stream_with_context(
        job_events(hub.queue, job_id, after_id, hub.heartbeat)),
        status=status, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    response.headers["X-Job-ID"] = job_id
    return response
