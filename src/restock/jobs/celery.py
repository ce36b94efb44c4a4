"""The scale-out JobQueue: retrains run on ``restock worker`` processes through Celery.

Selected with ``RESTOCK_QUEUE=celery``; ``RESTOCK_REDIS_URL`` is the broker and the
result backend. The division of labour:

- **The database stays the record of jobs** (``JobRecords``): status, stage, progress and
  every event, so ``GET /jobs/<id>`` works on any web worker and the FIFO order of
  ``queued`` jobs lives in one place.
- **A Redis Stream per job mirrors its events** (``EventStream``), written under the job's
  row lock so entries arrive in id order. Each entry's stream id is ``<event id>-0``, so a
  client's ``Last-Event-ID: n`` is an ``XRANGE``/``XREAD`` from ``n-0``; any web worker
  follows any job live with ``XREAD BLOCK`` instead of polling the database. Streams are
  capped (``MAXLEN``) and expire; when a stream no longer reaches back to what a client
  asks for, the database answers, so replay never loses events.
- **A Celery message only says "there is work"** (task ``restock.drain``). The worker
  that gets the cluster-wide retrain lock (a redis-py ``Lock`` with an expiry, renewed by
  a thread while the holder lives) claims the oldest queued job from the database, runs
  the same ``run_job`` as the embedded thread, and repeats until nothing is queued. That
  keeps FIFO and "one retrain at a time" true however many workers run.
- **Large catalogues fan out.** While a worker runs a retrain, the members' independent
  per-series work goes to the cluster as shard tasks whenever other pool slots exist
  (``restock.models.fanout``; one task per kind, ``restock.<kind>_shard``): Prophet's fits
  with at least ``_MIN_SERIES_FOR_POOL`` series (``SHARD_SIZE`` series a shard, answered
  with ``model_to_json`` strings) and the statistical members' StatsForecast chunks
  (``SHARD_SERIES`` series a shard, history and forecasts as Arrow), for the members costly
  enough to pool. More workers shorten the retrain. The global LightGBM member (one model
  over all series), the LSTM and the combination stay on the retrain's worker. The
  retrain's own slot only waits, so a lone worker with ``--concurrency 1`` fits locally
  instead of waiting for itself.
- **Cancellation** is the job row's ``cancel_requested`` flag, which every progress event
  reads back (``JobRecords.progress``): the pipeline stops at its next event with
  ``JobCancelled``. A queued job is cancelled outright and never claimed.

Death of a worker that only fits shards: the retrain goes on. Each shard keeps a
heartbeat key alive and has a time limit from its size (``restock.jobs.shards``); the
retrain notices a lost shard within seconds and sends it again once (a second loss fails
the job with ``worker_lost``), instead of waiting the broker's hour for the message.

Death of the worker running the retrain (``kill -9``, out of memory): the job ends
``failed`` with reason ``worker_lost``; it is **not retried**. A retrain that killed its
worker would most likely kill the next one too, and a retry would run it behind the user's back over data
that may have changed since; a failed job with a clear reason is resubmitted in one
click. ``current`` is never touched (the pipeline activates only at its very end) and the
next retrain runs normally. How the job gets there: tasks are ``acks_late`` with
``reject_on_worker_lost``, so the message of a dead worker's drain goes back to the broker
instead of being lost, and every ``restock worker`` sends one drain when it starts. A drain
that finds the lock held while a job is ``running`` retries every half lock TTL; once the
dead holder's lock expires, the next holder sweeps every ``running`` job (only a lock
holder runs jobs, so they are orphans) to ``failed``/``worker_lost``, then runs what is
queued.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import redis
import sqlalchemy as sa
from celery import Celery
from redis.exceptions import LockError, RedisError

from restock.config import Settings
from restock.errors import RestockError
from restock.jobs.base import Event, Job, JobQueue, Task
from restock.jobs.records import JobRecords
from restock.jobs.runner import run_job
from restock.jobs.shards import ShardCollector, shard_heartbeat, time_limit, worker_name
from restock.models import prophet, statistical
from restock.models.fanout import ShardWork, shard_with

log = logging.getLogger(__name__)

WORKER_LOST: dict[str, Any] = {
    "code": "worker_lost",
    "message": "the worker running this retrain died (killed or out of memory); the "
               "previous model is still active, submit the retrain again"}
DRAIN_TASK = "restock.drain"
#: every kind of shard a retrain may send to the workers (each gets its own task)
SHARD_WORKS: tuple[ShardWork[Any, Any], ...] = (prophet.SHARDS, statistical.SHARDS)


class ClusterLockLost(RestockError):
    """The retrain lock expired under a running job (its holder stalled past the TTL).

    Another worker may already be running the next job, so this one stops rather than
    race it to ``activate``.
    """

    code = "lock_lost"


class EventStream:
    """Each job's events in a capped Redis Stream whose entry ids are the event ids."""

    MAX_BLOCK = 2.0

    def __init__(self, client: redis.Redis, prefix: str, maxlen: int = 10_000,
                 ttl_seconds: int = 7 * 24 * 3600) -> None:
        self.client = client
        self.prefix = prefix
        self.maxlen = maxlen
        self.ttl_seconds = ttl_seconds

    def key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:events"

    def append(self, event: Event) -> None:
        """``XADD`` the event as ``<event id>-0``; the expiry bounds what Redis keeps.

        Best effort: the database holds every event, so a Redis blip must not fail the
        retrain; readers notice the gap (``read``) and ask the database instead.
        """
        key = self.key(event.job_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(key, {"event": event.event, "data": json.dumps(event.data, default=str)},
                  id=f"{event.event_id}-0", maxlen=self.maxlen, approximate=True)
        pipe.expire(key, self.ttl_seconds)
        try:
            pipe.execute()
        except redis.RedisError as error:
            log.warning("job %s: event %s not mirrored to Redis (%s)", event.job_id,
                        event.event_id, error)

    def read(self, job_id: str, after_id: int) -> list[Event] | None:
        """Events after ``after_id``, or ``None`` when the stream does not continue from
        there (nothing new, trimmed or expired): the database then has the answer."""
        try:
            entries = self.client.xrange(self.key(job_id), min=f"{after_id + 1}-0")
        except redis.RedisError:
            return None
        return self._contiguous(job_id, after_id, entries) or None

    def follow(self, job_id: str, after_id: int) -> list[Event] | None:
        """Like ``read``, but ``[]`` when the stream exists and has nothing after
        ``after_id``: a poller then asks Redis alone while the job runs, never the
        database. ``None`` (trimmed, expired, a gap, Redis away) still means "ask the
        database"."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xrange(self.key(job_id), min=f"{after_id + 1}-0")
        pipe.exists(self.key(job_id))
        try:
            entries, exists = pipe.execute()
        except redis.RedisError:
            return None
        if not entries:
            return [] if exists else None
        return self._contiguous(job_id, after_id, entries)

    @staticmethod
    def _contiguous(job_id: str, after_id: int, entries: list[Any]) -> list[Event] | None:
        """The entries as events if they continue exactly from ``after_id``, else None."""
        events = [Event(job_id, int(entry_id.split("-")[0]), fields["event"],
                        json.loads(fields["data"])) for entry_id, fields in entries]
        expected = list(range(after_id + 1, after_id + 1 + len(events)))
        if [e.event_id for e in events] != expected:
            return None  # trimmed, expired, or a gap from a failed mirror
        return events

    def wait(self, job_id: str, after_id: int, timeout: float) -> None:
        """Block (``XREAD BLOCK``) until an event after ``after_id`` exists, or timeout.

        One read blocks at most ``MAX_BLOCK`` seconds: redis-py gives up on a socket
        after 5 s by default, which is what keeps a dead Redis from hanging a request.
        """
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                if self.client.xread({self.key(job_id): f"{after_id}-0"}, count=1,
                                     block=max(1, int(min(left, self.MAX_BLOCK) * 1000))):
                    return
            except redis.RedisError:
                time.sleep(min(left, 0.5))  # Redis is away: the caller re-reads the database
                return


class ClusterLock:
    """A redis-py ``Lock`` with an expiry, kept alive by a thread while its holder lives.

    A holder that dies stops renewing, so the lock frees itself ``ttl`` seconds later;
    a holder that merely stalls past ``ttl`` learns it through ``check``.
    """

    def __init__(self, client: redis.Redis, name: str, ttl: float) -> None:
        self.ttl = ttl
        self._lock = client.lock(name, timeout=ttl, thread_local=False)
        self._stop = threading.Event()
        self._lost = False
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free (never waits) and start renewing it."""
        if not self._lock.acquire(blocking=False):
            return False
        self._renewer = threading.Thread(target=self._renew, name="restock-lock", daemon=True)
        self._renewer.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self._lock.reacquire()
            except LockError:
                self._lost = True
                log.error("the retrain lock expired under its holder")
                return
            except RedisError as error:  # transient: the next tick tries again
                log.warning("could not renew the retrain lock: %s", error)

    def check(self) -> None:
        """Raise ``ClusterLockLost`` once the lock has been lost."""
        if self._lost:
            raise ClusterLockLost("the retrain lock expired while this job ran")

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            self._lock.release()
        except LockError:
            pass  # already expired: nothing to give back


def make_celery(settings: Settings) -> Celery:
    """The Celery app for these settings: Redis broker and backend under the key prefix."""
    prefix = {"global_keyprefix": f"{settings.redis_prefix}:celery:"}
    app = Celery("restock", broker=settings.redis_url, backend=settings.redis_url,
                 set_as_current=False)
    app.conf.update(
        broker_transport_options=prefix, result_backend_transport_options=prefix,
        task_default_queue="restock", task_acks_late=True, task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1, task_serializer="json", result_serializer="json",
        accept_content=["json"], result_expires=24 * 3600,
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
    )
    return app


class CeleryJobQueue(JobQueue):
    """Jobs recorded in the database, run by Celery workers, streamed through Redis.

    The web processes only submit, read and cancel; ``drain`` (the body of the Celery
    task) runs on workers. ``task`` is the job body, as for ``ThreadJobQueue``.
    """

    kind = "celery"
    STATS_TTL = 1.0

    def __init__(self, settings: Settings, records_engine: sa.Engine, task: Task) -> None:
        self.settings = settings
        self.task = task
        self.redis = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        self.stream = EventStream(self.redis, settings.redis_prefix)
        self.records = JobRecords(records_engine, on_append=self.stream.append)
        self.celery = make_celery(settings)
        self._register_tasks()

    def _register_tasks(self) -> None:
        """Register the tasks on this queue's own Celery app (no module globals)."""

        @self.celery.task(name=DRAIN_TASK, bind=True, max_retries=None, ignore_result=True)
        def drain(celery_task: Any) -> None:
            if not self.drain():
                raise celery_task.retry(countdown=self.settings.job_lock_ttl / 2)

        self._drain_task = drain
        self._shard_tasks = {work.name: self._register_shard_task(work) for work in SHARD_WORKS}

    def _register_shard_task(self, work: ShardWork[Any, Any]) -> Any:
        """The task ``restock.<kind>_shard``: run one shard of ``work`` under a heartbeat."""

        @self.celery.task(name=shard_task_name(work), bind=True)
        def shard(celery_task: Any, data: Any, config: dict[str, Any]) -> Any:
            with shard_heartbeat(self.redis, self.settings.redis_prefix,
                                 celery_task.request.id, worker_name()):
                return work.encode_result(work.run(work.decode(data), config))

        return shard

    # -- the interface ---------------------------------------------------------------------

    def submit(self, params: dict[str, Any], *, upload_id: str | None = None,
               kind: str = "retrain") -> Job:
        job = self.records.create(params, upload_id=upload_id, kind=kind)
        self.kick()
        return job

    def kick(self) -> None:
        """Tell the workers there may be work (a job, or an orphan to sweep)."""
        self._drain_task.apply_async()

    def get(self, job_id: str) -> Job:
        return self.records.get(job_id)

    def events(self, job_id: str, after_id: int = 0) -> list[Event]:
        streamed = self.stream.read(job_id, after_id)
        return streamed if streamed is not None else self.records.events(job_id, after_id)

    def poll_events(self, job_id: str, after_id: int) -> list[Event]:
        """The job's Redis Stream while it continues from ``after_id``; the database
        only when it does not (see ``EventStream.follow``)."""
        streamed = self.stream.follow(job_id, after_id)
        return streamed if streamed is not None else self.records.events(job_id, after_id)

    def wait_events(self, job_id: str, after_id: int, timeout: float,
                    poll: float = 0.1) -> list[Event]:
        """A blocking ``XREAD`` on the job's stream instead of polling the database."""
        found = self.events(job_id, after_id)
        if found:
            return found
        self.stream.wait(job_id, after_id, timeout)
        return self.events(job_id, after_id)

    def cancel(self, job_id: str) -> Job:
        return self.records.request_cancel(job_id)

    def stats(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.records.counts(max_age=self.STATS_TTL)}

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Nothing runs here; only the Redis connections are given back."""
        self.redis.close()

    # -- the worker side ---------------------------------------------------------------------

    def after_fork(self) -> None:
        """In a freshly forked pool process: never reuse the parent's database sockets."""
        self.records.engine.dispose(close=False)

    def drain(self) -> bool:
        """Run queued jobs, oldest first, while holding the cluster lock.

        Returns ``False`` when another holder has a job ``running``: the caller retries
        later, so that a job whose worker died is swept once the dead lock expires.
        """
        while True:
            lock = ClusterLock(self.redis, f"{self.settings.redis_prefix}:retrain-lock",
                               self.settings.job_lock_ttl)
            if not lock.acquire():
                return self.records.counts()["running"] == 0
            try:
                swept = self.records.mark_interrupted(None, WORKER_LOST)
                if swept:
                    log.warning("%d job(s) of a dead worker marked failed (worker_lost)", swept)
                while (job := self.records.claim_next()) is not None:
                    with self._sharding():
                        run_job(self.records, self.task, job, check=lock.check)
            finally:
                lock.release()
            # a job submitted just before the release found the lock taken: look again
            if self.records.counts()["queued"] == 0:
                return True

    def _sharding(self) -> AbstractContextManager[None]:
        """Fan shards of per-series fits (Prophet, the statistical members) out to the
        cluster when some pool slot besides ours exists."""
        replies = self.celery.control.inspect(timeout=1.0).stats() or {}
        slots = sum(int(r.get("pool", {}).get("max-concurrency", 0)) for r in replies.values())
        if slots <= 1:
            return nullcontext()
        log.info("per-series fits go to the cluster's %d other pool slot(s)", slots - 1)
        return shard_with(self.shard_map)

    def shard_map(self, work: ShardWork[Any, Any], shards: Iterable[Any],
                  config: dict[str, Any]) -> Iterator[tuple[int, Any]]:
        """Send the shards as ``restock.<kind>_shard`` tasks; yield each one's
        ``(index, result)`` as it lands (``ShardCollector`` re-sends a shard whose worker
        died, once). Leaving early (cancelled, failed) revokes the shards still pending."""
        task = self._shard_tasks[work.name]

        def send(payload: tuple[Any, float], config: dict[str, Any]) -> Any:
            # a hard limit only: a soft one would surface inside the fit, which may
            # record it as one failed series and carry on with the next
            data, limit = payload
            return task.apply_async((data, config), time_limit=limit)

        payloads = [(work.encode(shard), time_limit(work.series(shard))) for shard in shards]
        collector = ShardCollector(send, self.redis, self.settings.redis_prefix, payloads,
                                   config, label=work.name)
        try:
            yield from collector
        finally:
            collector.close()


def shard_task_name(work: ShardWork[Any, Any]) -> str:
    """``restock.prophet_shard``, ``restock.statistical_shard``: the kind shows in logs."""
    return f"restock.{work.name}_shard"
