"""The Redis pieces of the Celery queue, in-process over the real Redis: per-job event
streams (ids, replay, fallback to the database, blocking reads) and the renewed lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cluster import REDIS_URL
from restock.config import Settings
from restock.data.store import SalesStore
from restock.errors import JobNotFoundError
from restock.jobs.celery import CeleryJobQueue, ClusterLock, ClusterLockLost


def never_run(params: dict, on_event: object) -> dict:
    raise AssertionError("no job runs in these tests")


@pytest.fixture
def queue(tmp_path: Path, redis_client: redis.Redis) -> Iterator[CeleryJobQueue]:
    prefix = f"restock-test-{tmp_path.name}-{time.monotonic_ns()}"
    settings = Settings.from_env({"home": tmp_path, "queue": "celery", "redis_url": REDIS_URL,
                                  "redis_prefix": prefix}, environ={})
    store = SalesStore(settings.db_url, settings.uploads_dir)
    jobs = CeleryJobQueue(settings, store.engine, never_run)
    yield jobs
    jobs.shutdown()
    store.close()
    keys = list(redis_client.scan_iter(match=prefix + ":*"))
    if keys:
        redis_client.delete(*keys)


def test_events_are_mirrored_with_their_ids_and_replay_from_the_database(
        queue: CeleryJobQueue) -> None:
    job = queue.records.create({})  # what submit records, without waking a worker
    for step in range(5):
        queue.records.progress(job.job_id, {"stage": "lstm", "progress": step / 10})
    key = queue.stream.key(job.job_id)
    assert [i for i, _ in queue.redis.xrange(key)] == [f"{n}-0" for n in range(1, 7)]
    from_stream = queue.events(job.job_id, 2)
    assert [e.event_id for e in from_stream] == [3, 4, 5, 6]
    assert from_stream == queue.records.events(job.job_id, 2)
    assert queue.events(job.job_id, 6) == []

    queue.redis.xtrim(key, maxlen=2)  # capped: the stream no longer reaches back to 1
    assert [e.event_id for e in queue.events(job.job_id, 0)] == [1, 2, 3, 4, 5, 6]
    queue.redis.delete(key)  # expired
    assert [e.event_id for e in queue.events(job.job_id, 4)] == [5, 6]
    with pytest.raises(JobNotFoundError):
        queue.events("no-such-job", 0)


def test_wait_events_wakes_on_the_next_event(queue: CeleryJobQueue) -> None:
    job = queue.records.create({})
    timer = threading.Timer(0.5, queue.records.progress, (job.job_id, {"stage": "save"}))
    started = time.monotonic()
    timer.start()
    found = queue.wait_events(job.job_id, 1, timeout=10)
    assert [e.event_id for e in found] == [2] and time.monotonic() - started < 3
    started = time.monotonic()
    assert queue.wait_events(job.job_id, 2, timeout=0.3) == []
    assert 0.25 < time.monotonic() - started < 2


def test_the_lock_is_exclusive_renewed_and_reports_its_loss(queue: CeleryJobQueue) -> None:
    name = f"{queue.settings.redis_prefix}:lock"
    holder = ClusterLock(queue.redis, name, ttl=1.0)
    assert holder.acquire()
    time.sleep(2.5)  # well past the TTL: only the renewal keeps it
    assert not ClusterLock(queue.redis, name, ttl=1.0).acquire()
    holder.check()
    queue.redis.delete(name)  # as if it had expired while its holder stalled
    time.sleep(1.0)
    with pytest.raises(ClusterLockLost):
        holder.check()
    holder.release()
    again = ClusterLock(queue.redis, name, ttl=1.0)
    assert again.acquire()
    again.release()
    assert queue.redis.get(name) is None


def test_poll_events_follows_the_stream_and_asks_the_database_on_a_gap(
        queue: CeleryJobQueue) -> None:
    job = queue.records.create({})
    queue.records.progress(job.job_id, {"stage": "validate"})
    assert queue.stream.follow(job.job_id, 2) == []  # nothing new: Redis alone says so
    assert [e.event_id for e in queue.poll_events(job.job_id, 0)] == [1, 2]
    key = queue.stream.key(job.job_id)
    queue.redis.delete(key)  # expired
    assert queue.stream.follow(job.job_id, 2) is None
    assert [e.event_id for e in queue.poll_events(job.job_id, 1)] == [2]
    queue.records.progress(job.job_id, {"stage": "lstm"})  # the stream now starts at 3
    assert queue.stream.follow(job.job_id, 1) is None
    assert [e.event_id for e in queue.poll_events(job.job_id, 1)] == [2, 3]


def test_the_broadcaster_fans_out_a_celery_jobs_stream(queue: CeleryJobQueue) -> None:
    from restock.web.broadcast import Broadcaster
    from restock.web.streamslots import StreamSlots
    from webtools import connect, wait_for

    slots = StreamSlots(total=100, per_client=100)
    hub = Broadcaster(queue, heartbeat=0.2)
    try:
        job = queue.records.create({})
        queue.redis.delete(queue.stream.key(job.job_id))  # event 1 only in the database
        clients = [connect(hub, slots, job.job_id) for _ in range(20)]
        wait_for(lambda: hub.streams == 20, 5, "the streams attached")
        for step in range(3):
            queue.records.progress(job.job_id, {"stage": "lstm", "progress": step / 10})
        queue.records.finish(job.job_id, "succeeded", "done", {"model_version": "v1"})
        for client in clients:
            client.thread.join(10)
            events = [e for e in client.events() if "event" in e]
            assert [e["id"] for e in events] == [1, 2, 3, 4, 5]
            assert events[-1]["event"] == "done"
        wait_for(lambda: slots.open == 0, 5, "every slot given back")
    finally:
        hub.close()
