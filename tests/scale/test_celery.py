"""Retrains through Celery on real processes: ``restock serve`` (gunicorn, several
workers) + ``restock worker`` + Redis + PostgreSQL, read by a real HTTP client.

The shared ``cluster`` tests run in file order (a retrain, a cancel, a second retrain);
each states what it relies on. The worker-death and rate-limit tests get a deployment of
their own.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
import requests

from cluster import Topology, read_events, wait_for

pytestmark = pytest.mark.timeout(600)


def test_retrain_streams_through_redis_and_resumes_on_another_web_worker(
        cluster: Topology, demo_csv: bytes) -> None:
    first = cluster.upload(demo_csv, headers={"Accept": "text/event-stream"}, stream=True)
    assert first.status_code == 200
    job_id = first.headers["X-Job-ID"]
    head = read_events(first, stop_after=3)
    assert [e["id"] for e in head] == [1, 2, 3]
    # a new connection (any web worker) resumes from Last-Event-ID, as EventSource does
    resumed = requests.get(f"{cluster.url}/jobs/{job_id}/events", stream=True, timeout=300,
                           headers={"Last-Event-ID": "3"})
    events = head + read_events(resumed)
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["event"] == "done", events[-1]
    stages = [e["data"].get("stage") for e in events[:-1]]
    # the LSTM's epochs stream from its backtest training (its refit stage, and Prophet's,
    # run only where the chosen rules use them)
    assert stages[0] == "queued" and "backtest" in stages
    assert any("epoch" in e["data"] for e in events[:-1])
    version = events[-1]["data"]["model_version"]

    job = cluster.job(job_id)
    assert job["status"] == "succeeded" and job["model_version"] == version
    assert cluster.current_version() == version
    # the events really went through the job's Redis Stream, with the SSE ids as entry ids
    key = f"{cluster.prefix}:job:{job_id}:events"
    ids = [entry_id.decode() for entry_id, _ in cluster.redis.xrange(key)]
    assert ids == [f"{n}-0" for n in range(1, len(events) + 1)]
    # a finished job replays from any point, and a client that saw everything gets nothing
    replay = requests.get(f"{cluster.url}/jobs/{job_id}/events", stream=True, timeout=30,
                          headers={"Last-Event-ID": str(len(events) - 2)})
    assert [e["id"] for e in read_events(replay)] == [len(events) - 1, len(events)]
    health = requests.get(cluster.url + "/", timeout=10).json()
    assert health["queue"]["kind"] == "celery"


def test_cancel_a_running_retrain(cluster: Topology, demo_csv: bytes) -> None:
    before = cluster.current_version()
    models_before = requests.get(cluster.url + "/models", timeout=10).json()["items"]
    job_id = cluster.upload(demo_csv).json()["job_id"]
    stream = requests.get(f"{cluster.url}/jobs/{job_id}/events", stream=True, timeout=300)
    seen = read_events(stream, stop_at='"stage":"backtest"')
    response = requests.delete(f"{cluster.url}/jobs/{job_id}", timeout=10)
    assert response.status_code == 202
    resumed = requests.get(f"{cluster.url}/jobs/{job_id}/events", stream=True, timeout=300,
                           headers={"Last-Event-ID": str(seen[-1]["id"])})
    last = read_events(resumed)[-1]
    assert last["event"] == "error" and last["data"]["code"] == "cancelled"
    job = cluster.wait_job(job_id, ("cancelled",), timeout=30)
    assert job["model_version"] is None
    assert cluster.current_version() == before
    assert requests.get(cluster.url + "/models", timeout=10).json()["items"] == models_before


def test_every_web_worker_serves_the_new_version_after_activation(
        cluster: Topology, demo_csv: bytes) -> None:
    """The registry's ``current`` pointer moves; each gunicorn worker notices on its next
    request, with no restart. Which worker answered is read from the access log."""

    def ask(n: int) -> list[tuple[str, str]]:
        answers = []
        for _ in range(n):  # a new connection each time, so the kernel spreads them
            r = requests.post(cluster.url + "/forecast", timeout=30,
                              json={"product_id": "P0001", "days": 7},
                              headers={"Connection": "close"})
            assert r.status_code == 200, r.text
            answers.append((r.headers["X-Request-ID"], r.json()["model_version"]))
        return answers

    def pids(answers: list[tuple[str, str]]) -> set[int]:
        log = cluster.server_log.read_text()
        found = {rid: int(pid) for pid, rid in
                 re.findall(r"\[(\d+)\] \[[^\]]*\] restock\.web\.access: POST /forecast "
                            r"200 \S+ rid=(\w+)", log)}
        return {found[rid] for rid, _ in answers if rid in found}

    old = cluster.current_version()
    assert old is not None, "needs the retrain of the first test"
    warm = ask(12)  # both workers load the old version before the swap
    assert {v for _, v in warm} == {old}
    job_id = cluster.upload(demo_csv).json()["job_id"]
    new = cluster.wait_job(job_id, ("succeeded", "failed"))["model_version"]
    assert new and new != old

    def all_workers_answer(version: str) -> bool:
        answers = ask(16)
        assert {v for _, v in answers} == {version}
        return len(pids(answers)) >= 2

    wait_for(lambda: all_workers_answer(new), 30, "both web workers answering")
    # and a rollback through the API reaches every worker the same way
    assert requests.post(f"{cluster.url}/models/{old}/activate", timeout=30).ok
    wait_for(lambda: all_workers_answer(old), 30, "both web workers after the rollback")


def test_a_killed_worker_fails_its_job_as_worker_lost(topology: Topology,
                                                      demo_csv: bytes) -> None:
    """kill -9 of the worker (and its pool) mid-retrain: the job ends ``failed`` with
    ``worker_lost`` once another worker starts (not retried, see jobs/celery.py), the
    active model is untouched and the next retrain succeeds."""
    topology.start_server(workers=1)
    worker = topology.start_worker(concurrency=2)
    first = topology.upload(demo_csv).json()["job_id"]
    version = topology.wait_job(first, ("succeeded",))["model_version"]

    doomed = topology.upload(demo_csv).json()["job_id"]
    stream = requests.get(f"{topology.url}/jobs/{doomed}/events", stream=True, timeout=300)
    seen = read_events(stream, stop_at='"stage":"backtest"')
    Topology.kill(worker)
    time.sleep(2 * 3)  # two lock TTLs: nobody renews the lock, nobody finishes the job
    assert topology.job(doomed)["status"] == "running"

    topology.start_worker(concurrency=2)  # its start-up drain sweeps the orphan
    job = topology.wait_job(doomed, ("failed", "succeeded", "cancelled"), timeout=60)
    assert job["status"] == "failed" and job["error"]["code"] == "worker_lost", job
    tail = read_events(requests.get(f"{topology.url}/jobs/{doomed}/events", stream=True,
                                    timeout=30, headers={"Last-Event-ID": str(seen[-1]["id"])}))
    assert tail[-1]["event"] == "error" and tail[-1]["data"]["code"] == "worker_lost"
    assert topology.current_version() == version
    models = requests.get(topology.url + "/models", timeout=10).json()["items"]
    assert [m["version"] for m in models] == [version]

    again = topology.upload(demo_csv).json()["job_id"]
    done = topology.wait_job(again, ("succeeded", "failed"))
    assert done["status"] == "succeeded", done
    assert topology.current_version() == done["model_version"] != version


def test_rate_limits_are_shared_by_every_web_worker_through_redis(
        topology: Topology, redis_client) -> None:
    """With ``RESTOCK_RATELIMIT_STORAGE_URI=redis://...`` four workers count together:
    exactly the limit passes, where per-process memory would let each worker allow it."""
    token = "t-" + topology.prefix
    topology.env.update(RESTOCK_RATELIMIT_STORAGE_URI=topology.env["RESTOCK_REDIS_URL"],
                        RESTOCK_RATELIMIT_DEFAULT="5 per minute", RESTOCK_API_TOKENS=token)
    topology.start_server(workers=4)
    codes = []
    for _ in range(14):
        r = requests.get(topology.url + "/series", timeout=10, headers={
            "Authorization": f"Bearer {token}", "Connection": "close"})
        codes.append(r.status_code)
    assert codes.count(200) == 5 and codes.count(429) == 9, codes


def test_a_large_catalogue_fans_prophet_out_to_shard_tasks(
        cluster: Topology, tmp_path) -> None:
    """40 series + the total: the retrain sends its Prophet fits to the worker's other
    pool slot as shard tasks, gathers them, and activates a complete version (``seed``:
    Prophet is refitted on every series, so both passes go out as shards)."""
    from restock.data.demo import write_demo_csv

    path = tmp_path / "catalogue.csv"
    write_demo_csv(path, products=20, stores=2, days=90, seed=11)
    job_id = cluster.upload(path.read_bytes(), data={"weights": "seed"}).json()["job_id"]
    job = cluster.wait_job(job_id, ("succeeded", "failed", "cancelled"))
    assert job["status"] == "succeeded", job
    log = "".join(p.read_text() for p in cluster.root.glob("worker-*.log"))
    shards = re.findall(r"restock\.prophet_shard\[[^\]]+\] succeeded", log)
    assert len(shards) >= 2 * 2, "backtest and refit: two passes of two shards each"
    series = requests.get(cluster.url + "/series", timeout=10).json()["total"]
    assert series >= 40
    forecast = requests.post(cluster.url + "/forecast", timeout=30,
                             json={"product_id": "P0020", "days": 7}).json()
    assert forecast["model_version"] == job["model_version"]


@pytest.mark.timeout(1800)
def test_a_killed_shard_worker_costs_seconds_not_the_visibility_timeout(
        topology: Topology, tmp_path) -> None:
    """kill -9 of a worker while it fits Prophet shards of a retrain running elsewhere:
    the retrain's worker notices the lost shards within a minute (heartbeat keys), sends
    them again to the worker that is left, and the job ends (here: succeeds) long before
    the broker's one-hour visibility timeout would have handed the messages back."""
    from restock.data.demo import write_demo_csv

    path = tmp_path / "catalogue.csv"
    write_demo_csv(path, products=30, stores=2, days=90, seed=13)  # 61 series: 3 shards
    topology.start_server(workers=1)
    runner = topology.start_worker(concurrency=2)  # alone: it takes the retrain
    job_id = topology.upload(path.read_bytes()).json()["job_id"]
    wait_for(lambda: topology.job(job_id)["status"] == "running", 60, "the retrain started")
    victim = topology.start_worker(concurrency=2)  # joins in: it can only take shards

    def victim_runs_a_shard() -> bool:
        names = [topology.redis.get(k) for k in
                 topology.redis.scan_iter(match=f"{topology.prefix}:shard:*")]
        return any(n and n.decode().startswith(f"{victim.pid}@") for n in names)

    wait_for(victim_runs_a_shard, 240, "a shard running on the second worker", interval=0.2)
    Topology.kill(victim)
    killed_at = time.monotonic()
    runner_log = topology.root / "worker-1.log"
    wait_for(lambda: b"lost (its worker stopped sending heartbeats)" in runner_log.read_bytes(),
             60, "the lost shard noticed within a minute")
    # the rest of the retrain runs on one pool slot of a shared 2-core machine: generous,
    # but far below the broker's hour
    job = topology.wait_job(job_id, ("succeeded", "failed", "cancelled"), timeout=1200)
    ended_after = time.monotonic() - killed_at
    assert ended_after < 1500, ended_after
    assert job["status"] == "succeeded", job  # re-sent to the worker that is left
    assert runner.poll() is None
    assert topology.current_version() == job["model_version"]
    forecast = requests.post(topology.url + "/forecast", timeout=30,
                             json={"product_id": "P0030", "days": 7})
    assert forecast.status_code == 200, forecast.text
