"""A retrain's shards on the cluster (Prophet's and the statistical members' per-series
fits, see ``restock.models.fanout``), watched so that a lost worker costs seconds, not an
hour.

A shard task is ``acks_late``: when the worker running it dies, Redis hands its message
to another worker only after the broker's visibility timeout (an hour), and until then the
retrain that sent it would wait. So each shard is watched two ways:

- **A heartbeat key** (``<prefix>:shard:<task id>``, the worker's name as value) that the
  running shard refreshes every ``HEARTBEAT`` seconds and that expires ``KEY_TTL`` seconds
  after the last refresh. A shard whose key was seen and is gone, with no result, ran on a
  worker that died: it is *lost* within ``KEY_TTL`` (+ one check). When no shard has been
  running or finished for ``STALL`` seconds, the shards that never started are lost too
  (a dead worker had reserved them before they could start).
- **A time limit from its expected cost** (``time_limit``, enforced by the worker's pool):
  ``PER_SERIES_LIMIT`` seconds per series, at least ``MIN_LIMIT``, so a shard stuck in a
  fit ends as a failure instead of hanging.

A lost (or timed-out) shard is sent again once, to whichever worker is free, and the old
message is revoked; a second loss fails the retrain with ``worker_lost`` (the pipeline
activates a version only at its very end, so the previous model stays active).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from celery.result import AsyncResult

from restock.errors import RestockError

log = logging.getLogger(__name__)

HEARTBEAT = 5.0
KEY_TTL = 15.0
STALL = 45.0
CHECK = 1.0
MIN_LIMIT = 60.0
PER_SERIES_LIMIT = 10.0
MAX_ATTEMPTS = 2
#: the failures of a shard that mean "its worker or time ran out", not "its code failed"
LOST_FAILURES = frozenset({"WorkerLostError", "TimeLimitExceeded", "SoftTimeLimitExceeded"})


class ShardLostError(RestockError):
    """A shard's worker died (or it ran out of time) twice: the retrain cannot finish."""

    code = "worker_lost"


def shard_key(prefix: str, task_id: str) -> str:
    return f"{prefix}:shard:{task_id}"


def busy_key(prefix: str) -> str:
    """Alive while any shard of the deployment runs (a revoked retrain's shards too)."""
    return f"{prefix}:shards-running"


def time_limit(series: int) -> float:
    """Seconds a shard of ``series`` series may run before its worker's pool kills it."""
    return max(MIN_LIMIT, PER_SERIES_LIMIT * series)


@contextmanager
def shard_heartbeat(client: redis.Redis, prefix: str, task_id: str, worker: str
                    ) -> Iterator[None]:
    """Keep the shard's key (and ``busy_key``) alive while the block runs (a thread
    refreshes them).

    The key is left to expire rather than deleted at the end: the result is stored only
    after the task returns, and a collector must never see "no key, no result" for a
    shard that finished.
    """
    stop = threading.Event()

    def beat() -> None:
        while True:
            pipe = client.pipeline(transaction=False)
            pipe.set(shard_key(prefix, task_id), worker, px=int(KEY_TTL * 1000))
            pipe.set(busy_key(prefix), worker, px=int(KEY_TTL * 1000))
            try:
                pipe.execute()
            except redis.RedisError as error:  # a blip: the next beat tries again
                log.warning("shard heartbeat not written: %s", error)
            if stop.wait(HEARTBEAT):
                return

    thread = threading.Thread(target=beat, name="restock-shard-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def worker_name() -> str:
    """What a heartbeat names: the pool's parent (the ``restock worker`` process) and host."""
    return f"{os.getppid()}@{socket.gethostname()}"


#: sends one shard (as the collector was given it) with the config; returns its result handle
SendShard = Callable[[Any, dict[str, Any]], AsyncResult]


@dataclass(eq=False)
class Attempt:
    """One shard's current task: its result handle and what the watch has seen of it."""

    index: int
    shard: Any
    result: AsyncResult
    number: int = 1
    seen: bool = False


class ShardCollector:
    """Send shards, yield each one's result as it lands, re-send a lost one once.

    ``send`` dispatches one shard; ``client``/``prefix`` locate the heartbeat keys;
    ``label`` names the kind of shard in the log. Iterating yields ``(shard index,
    result)`` in completion order; ``close`` revokes what is left.
    """

    def __init__(self, send: SendShard, client: redis.Redis, prefix: str,
                 shards: list[Any], config: dict[str, Any], *, label: str = "",
                 poll: float = 0.1, stall: float = STALL) -> None:
        self.send = send
        self.label = label
        self.client = client
        self.prefix = prefix
        self.config = config
        self.poll = poll
        self.stall = stall
        self.pending = [Attempt(i, shard, send(shard, config)) for i, shard in enumerate(shards)]
        self.resent = 0
        self._active_at = time.monotonic()
        self._checked_at = time.monotonic()

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        while self.pending:
            ready = [a for a in self.pending if a.result.ready()]
            for attempt in ready:
                self.pending.remove(attempt)
                self._active_at = time.monotonic()
                if attempt.result.failed() and self._lost_failure(attempt):
                    self._resend(attempt, "its task failed with "
                                 f"{type(attempt.result.result).__name__}")
                    continue
                result = attempt.result.get(disable_sync_subtasks=False)
                attempt.result.forget()
                yield attempt.index, result
            if not ready:
                if time.monotonic() - self._checked_at >= CHECK:
                    self._watch()
                time.sleep(self.poll)

    def close(self) -> None:
        """Revoke the shards still pending (cancelled or failed retrain)."""
        for attempt in self.pending:
            attempt.result.revoke()
        self.pending = []

    @staticmethod
    def _lost_failure(attempt: Attempt) -> bool:
        return type(attempt.result.result).__name__ in LOST_FAILURES

    def _watch(self) -> None:
        """Read every pending shard's heartbeat key; re-send the lost ones."""
        now = self._checked_at = time.monotonic()
        keys = [shard_key(self.prefix, a.result.id) for a in self.pending]
        try:
            *alive, busy = self.client.mget([*keys, busy_key(self.prefix)])
        except redis.RedisError as error:
            log.warning("could not read the shard heartbeats: %s", error)
            return
        if busy is not None:
            self._active_at = now  # some shard runs: ours may be queued behind it
        lost: list[tuple[Attempt, str]] = []
        for attempt, worker in zip(list(self.pending), alive):
            if worker is not None:
                attempt.seen = True
                self._active_at = now
            elif attempt.seen and not attempt.result.ready():
                lost.append((attempt, "its worker stopped sending heartbeats"))
        if not lost and now - self._active_at >= self.stall:
            lost = [(a, f"it did not start within {self.stall:.0f} s while nothing ran")
                    for a in self.pending if not a.seen and not a.result.ready()]
            self._active_at = now
        for attempt, why in lost:
            self.pending.remove(attempt)
            self._resend(attempt, why)

    def _resend(self, attempt: Attempt, why: str) -> None:
        attempt.result.revoke()
        if attempt.number >= MAX_ATTEMPTS:
            raise ShardLostError(
                "a worker fitting part of this retrain was lost twice (killed, out of "
                "memory or over its time limit); the previous model is still active, "
                "submit the retrain again", {"shard": attempt.index, "reason": why})
        log.warning("%s shard %d lost (%s): sending it again", self.label, attempt.index, why)
        self.resent += 1
        self.pending.append(Attempt(attempt.index, attempt.shard,
                                    self.send(attempt.shard, self.config),
                                    number=attempt.number + 1))
