"""The shard watch in-process over the real Redis: the test plays the workers, writing
heartbeat keys and results where real shard tasks would (the Celery result backend)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from billiard.exceptions import TimeLimitExceeded
from celery import Celery
from celery.result import AsyncResult

from cluster import REDIS_URL, wait_for
from restock.config import Settings
from restock.jobs import shards
from restock.jobs.celery import make_celery
from restock.jobs.shards import (ShardCollector, ShardLostError, busy_key, shard_heartbeat,
                                 shard_key)


class Cluster:
    """Stands in for the workers: records what was sent, finishes or loses shards."""

    def __init__(self, app: Celery, client: redis.Redis, prefix: str) -> None:
        self.app = app
        self.client = client
        self.prefix = prefix
        self.sent: list[tuple[int, AsyncResult]] = []

    def send(self, shard: list[dict[str, Any]], config: dict[str, Any]) -> AsyncResult:
        result = AsyncResult(str(uuid.uuid4()), app=self.app)
        self.sent.append((shard[0]["n"], result))
        return result

    def beat(self, n: int, attempt: int = -1, ttl_ms: int = 300) -> None:
        """A heartbeat of shard ``n``'s latest (or given) task that expires soon."""
        task_id = [r for i, r in self.sent if i == n][attempt].id
        self.client.set(shard_key(self.prefix, task_id), "1@test", px=ttl_ms)

    def finish(self, n: int, result: Any = None, state: str = "SUCCESS") -> None:
        task_id = [r for i, r in self.sent if i == n][-1].id
        rows = [[f"s{n}", "{}", ""]] if result is None else result
        self.app.backend.store_result(task_id, rows, state)


@pytest.fixture
def cluster(redis_client: redis.Redis, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    monkeypatch.setattr(shards, "CHECK", 0.05)
    prefix = f"restock-test-{uuid.uuid4().hex[:10]}"
    settings = Settings.from_env({"home": tmp_path, "queue": "celery", "redis_url": REDIS_URL,
                                  "redis_prefix": prefix}, environ={})
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield Cluster(make_celery(settings), client, prefix)
    keys = list(redis_client.scan_iter(match=prefix + ":*"))
    if keys:
        redis_client.delete(*keys)
    client.close()


def collect(cluster: Cluster, count: int, stall: float = 30.0
            ) -> tuple[list[tuple[int, Any]], list[BaseException], threading.Thread]:
    """Run a collector over ``count`` shards on a thread (the retrain's side)."""
    got: list[tuple[int, Any]] = []
    errors: list[BaseException] = []
    collector = ShardCollector(cluster.send, cluster.client, cluster.prefix,
                               [[{"n": n}] for n in range(count)], {}, poll=0.02, stall=stall)

    def run() -> None:
        try:
            got.extend(collector)
        except BaseException as error:  # noqa: BLE001 - handed to the test
            errors.append(error)
        finally:
            collector.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return got, errors, thread


def test_a_shard_whose_heartbeat_stops_is_sent_again_once(cluster: Cluster) -> None:
    got, errors, thread = collect(cluster, 2)
    wait_for(lambda: len(cluster.sent) == 2, 5, "both shards sent")
    cluster.beat(0)  # shard 0 starts, then its worker dies (the key expires)
    cluster.beat(1, ttl_ms=5000)
    cluster.finish(1)
    wait_for(lambda: len(cluster.sent) == 3, 5, "shard 0 sent again")
    assert cluster.sent[2][0] == 0
    cluster.finish(0)
    thread.join(5)
    assert errors == [] and sorted((i, rows[0][0]) for i, rows in got) == [(0, "s0"), (1, "s1")]


def test_a_second_loss_fails_the_retrain_as_worker_lost(cluster: Cluster) -> None:
    got, errors, thread = collect(cluster, 1)
    wait_for(lambda: len(cluster.sent) == 1, 5, "the shard sent")
    cluster.beat(0)
    wait_for(lambda: len(cluster.sent) == 2, 5, "the shard sent again")
    cluster.beat(0)
    thread.join(5)
    assert got == [] and len(errors) == 1 and isinstance(errors[0], ShardLostError)
    assert errors[0].to_dict()["code"] == "worker_lost"


def test_shards_that_never_start_while_nothing_runs_are_sent_again(cluster: Cluster) -> None:
    got, errors, thread = collect(cluster, 2, stall=0.5)
    wait_for(lambda: len(cluster.sent) == 2, 5, "both shards sent")
    started = time.monotonic()
    wait_for(lambda: len(cluster.sent) == 4, 5, "both shards sent again")
    assert time.monotonic() - started >= 0.4
    # another retrain's shard running somewhere: ours may be queued behind it, no stall
    cluster.client.set(busy_key(cluster.prefix), "1@test", px=1500)
    time.sleep(1.2)
    assert len(cluster.sent) == 4
    cluster.finish(0)
    cluster.finish(1)
    thread.join(5)
    assert errors == [] and len(got) == 2


def test_a_timed_out_shard_is_sent_again_but_a_failing_one_fails(cluster: Cluster) -> None:
    got, errors, thread = collect(cluster, 1)
    wait_for(lambda: len(cluster.sent) == 1, 5, "the shard sent")
    cluster.finish(0, TimeLimitExceeded(60.0), state="FAILURE")
    wait_for(lambda: len(cluster.sent) == 2, 5, "the timed-out shard sent again")
    cluster.finish(0, ValueError("a bug in the fit"), state="FAILURE")
    thread.join(5)
    assert got == [] and len(errors) == 1 and "a bug in the fit" in str(errors[0])


def test_the_heartbeat_keeps_the_key_alive_while_the_shard_runs(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shards, "HEARTBEAT", 0.1)
    monkeypatch.setattr(shards, "KEY_TTL", 0.3)
    key = shard_key(cluster.prefix, "t1")
    with shard_heartbeat(cluster.client, cluster.prefix, "t1", "42@host"):
        time.sleep(1.0)  # three TTLs: only the refreshing thread keeps it
        assert cluster.client.get(key) == "42@host"
        assert cluster.client.get(busy_key(cluster.prefix)) == "42@host"
    wait_for(lambda: cluster.client.get(key) is None, 2, "the key expiring after the end")
    assert shards.time_limit(1) == shards.MIN_LIMIT
    assert shards.time_limit(25) == 25 * shards.PER_SERIES_LIMIT
