"""The statistical members' chunks as shard tasks on real ``restock worker`` processes
(real Redis broker and result backend): the same forecasts as in-process, bit for bit,
and a lost shard sent again once, then failing the fit as ``worker_lost``.

The test process plays the retrain's coordinating worker: it installs the Celery queue's
shard map (``fanout.shard_with``) exactly as ``CeleryJobQueue.drain`` does.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import restock.models.statistical as statistical
from cluster import Topology, wait_for
from restock.config import Settings
from restock.data.demo import write_demo_csv
from restock.data.store import SalesStore
from restock.jobs.celery import CeleryJobQueue
from restock.jobs.shards import ShardLostError, shard_key
from restock.models.fanout import ShardWork, shard_with
from restock.models.statistical import (CESForecaster, ETSForecaster, MSTLForecaster,
                                        ThetaForecaster)
from restock.registry import ModelRegistry
from restock.training import retrain

pytestmark = pytest.mark.timeout(900)


def panel(n_series: int, n: int, long: int = 0, seed: int = 3) -> pd.DataFrame:
    """Weekly-seasonal counts of different levels and lengths; the first ``long`` series
    span two years (MSTL's second season group), one series is too short for ETS."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        length = 740 if i < long else (5 if i == n_series - 1 else n - (i % 30))
        t = np.arange(length)
        rate = (3 + 2 * i % 17) * (1 + 0.4 * np.sin(2 * np.pi * t / 7)) * (1 + t / 900)
        frames.append(pd.DataFrame({
            "unique_id": f"s{i:03d}", "y": rng.poisson(rate).astype(float),
            "ds": pd.date_range(end="2024-06-30", periods=length, freq="D")}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def queue(topology: Topology) -> Iterator[CeleryJobQueue]:
    """The deployment's Celery queue, seen from this process (the retrain's side)."""
    settings = Settings.from_env(environ=topology.env)
    queue = CeleryJobQueue(settings, sa.create_engine("sqlite://"), task=lambda *_: {})
    yield queue
    queue.shutdown()


class Sent:
    """The queue's shard map, counting what goes through it."""

    def __init__(self, queue: CeleryJobQueue) -> None:
        self.queue = queue
        self.shards: list[tuple[str, int]] = []

    def __call__(self, work: ShardWork[Any, Any], shards: Iterable[Any],
                 config: dict[str, Any]) -> Iterator[tuple[int, Any]]:
        shards = list(shards)
        self.shards.append((work.name, len(shards)))
        yield from self.queue.shard_map(work, shards, config)


def test_shards_on_a_worker_give_the_in_process_forecasts(
        topology: Topology, queue: CeleryJobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statistical, "SHARD_SERIES", 8)  # several shards of a small panel
    data = panel(n_series=51, n=100, long=2)  # theta shards from 50
    worker = topology.start_worker(concurrency=2)
    sent = Sent(queue)
    for member in (ETSForecaster(), ThetaForecaster(), CESForecaster(), MSTLForecaster()):
        member.precompute_h = 14
        here = member.fit(data, "D")
        here_cv = member.cross_validate(data, "D", h=7, n_windows=3, step_size=7)
        with shard_with(sent):
            there = type(member)(**member.get_params())
            there.precompute_h = 14
            there.fit(data, "D")
            there_cv = there.cross_validate(data, "D", h=7, n_windows=3, step_size=7)
        # bit for bit: the worker ran the same StatsForecast calls on the same data
        pd.testing.assert_frame_equal(here.forecasts_, there.forecasts_, check_exact=True)
        pd.testing.assert_frame_equal(here_cv, there_cv, check_exact=True)
        assert here.skipped_ == there.skipped_ and here.last_dates_ == there.last_dates_
        pd.testing.assert_frame_equal(here.predict(14), there.predict(14), check_exact=True)

    # each fit and backtest went out as several shards (MSTL's over both season groups)
    assert [name for name, _ in sent.shards] == ["statistical"] * 8
    assert all(count >= 5 for _, count in sent.shards), sent.shards
    log = "".join(p.read_text() for p in topology.root.glob("worker-*.log"))
    done = re.findall(r"restock\.statistical_shard\[[^\]]+\] succeeded", log)
    assert len(done) == sum(count for _, count in sent.shards) and worker.poll() is None


def test_members_too_cheap_to_pool_stay_in_process(queue: CeleryJobQueue) -> None:
    """seasonal naive and the intermittent family take microseconds a series: a shard
    task would cost more than it saves, so nothing is sent (no worker runs here)."""
    sent = Sent(queue)
    with shard_with(sent):
        for alias in ("seasonal_naive", "croston_sba", "imapa", "tsb"):
            statistical.MEMBERS[alias]().fit(panel(n_series=60, n=60), "D")
    assert sent.shards == []


def test_a_lost_shard_is_sent_again_once_then_fails_the_fit_as_worker_lost(
        topology: Topology, queue: CeleryJobQueue, caplog: pytest.LogCaptureFixture) -> None:
    """One shard of AutoETS fits; kill -9 of the worker running it, twice: the first loss
    sends it again to the next worker, the second fails the fit with ``worker_lost``."""
    data = panel(n_series=statistical.SHARD_SERIES, n=730)
    errors: list[BaseException] = []

    def fit() -> None:
        try:
            with shard_with(queue.shard_map):
                ETSForecaster().fit(data, "D")
        except BaseException as error:  # noqa: BLE001 - handed to the test
            errors.append(error)

    def running_on(process: Any) -> bool:
        names = [queue.redis.get(k) for k in
                 queue.redis.scan_iter(match=shard_key(topology.prefix, "*"))]
        return any(n and n.startswith(f"{process.pid}@") for n in names)

    caplog.set_level(logging.WARNING, logger="restock.jobs.shards")
    first = topology.start_worker(concurrency=1)
    thread = threading.Thread(target=fit, daemon=True)
    thread.start()
    for attempt, victim in enumerate([first, None]):
        victim = victim or topology.start_worker(concurrency=1)
        wait_for(lambda: running_on(victim), 120, f"attempt {attempt + 1} running",
                 interval=0.1)
        Topology.kill(victim)
    thread.join(120)
    assert not thread.is_alive()
    assert "statistical shard 0 lost (its worker stopped sending heartbeats): sending it " \
           "again" in caplog.text
    assert len(errors) == 1 and isinstance(errors[0], ShardLostError), errors
    assert errors[0].to_dict()["code"] == "worker_lost"


@pytest.mark.slow  # ~3 min: the member-level equality above runs in every `make test`
@pytest.mark.timeout(1800)
def test_a_celery_retrain_shards_the_statistical_members_and_matches_thread_mode(
        topology: Topology, tmp_path: Path) -> None:
    """A whole retrain through ``restock serve`` + ``restock worker``: the worker's other
    pool slots fit the statistical members' shards, and every saved statistical member
    (and the ensemble's forecasts) equals a thread-mode retrain of the same upload."""
    path = tmp_path / "catalogue.csv"
    write_demo_csv(path, products=20, stores=2, days=90, seed=11)  # 40 series + the total
    topology.start_server(workers=1)
    topology.start_worker(concurrency=3)
    job_id = topology.upload(path.read_bytes()).json()["job_id"]
    job = topology.wait_job(job_id, ("succeeded", "failed", "cancelled"), timeout=1200)
    assert job["status"] == "succeeded", job
    log = "".join(p.read_text() for p in topology.root.glob("worker-*.log"))
    # ETS, CES and MSTL pool from 20 series: a backtest and a refit of 41 series each
    assert len(re.findall(r"restock\.statistical_shard\[[^\]]+\] succeeded", log)) >= 3 * 2

    local = Settings.from_env({"home": tmp_path / "thread", "queue": "thread"},
                              environ=topology.env)
    version = retrain(local, SalesStore.from_settings(local),
                      ModelRegistry(local.models_dir), upload=path)
    sharded_dir = Settings.from_env(environ=topology.env).models_dir / job["model_version"]
    thread_dir = local.models_dir / version
    files = sorted(p.name for p in (thread_dir / "statistical").glob("*.parquet"))
    assert {"ets.parquet", "ces.parquet", "mstl.parquet"} <= set(files)
    assert sorted(p.name for p in (sharded_dir / "statistical").glob("*.parquet")) == files
    for name in files:
        pd.testing.assert_frame_equal(pd.read_parquet(sharded_dir / "statistical" / name),
                                      pd.read_parquet(thread_dir / "statistical" / name),
                                      check_exact=True, obj=name)
    pd.testing.assert_frame_equal(pd.read_parquet(sharded_dir / "forecasts.parquet"),
                                  pd.read_parquet(thread_dir / "forecasts.parquet"))
