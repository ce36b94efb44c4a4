"""Stopping ``restock serve`` (SIGTERM) during a retrain (issue 11): the worker exits
without SIGABRT, the job ends ``cancelled`` (or, if it cannot stop in time, ``failed``)
with the reason, and the previously active version stays active."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from webtools import GOOD_CSV, Server, wait_for

pytestmark = pytest.mark.timeout(300)

ABORTS = ("terminate called", "SIGABRT", "Aborted", "core dumped")


def start(home: Path, **env: str) -> Server:
    return Server(home, RESTOCK_RATELIMIT_DEFAULT="100000 per minute", **env)


def retrain_until(server: Server, stage: str) -> str:
    files = {"file": ("sales.csv", GOOD_CSV.replace(b"p1", b"P0001"), "text/csv")}
    # the LSTM's refit stage is sure to come only with seed weights (auto refits it only
    # where the chosen rules use it)
    form = {"weights": "seed"} if stage == "lstm" else {}
    job_id = requests.post(server.url + "/retrain", files=files, data=form,
                           timeout=30).json()["job_id"]

    def reached() -> bool:
        return requests.get(f"{server.url}/jobs/{job_id}", timeout=10).json()["stage"] == stage

    wait_for(reached, 240, f"the retrain to reach {stage}", interval=0.2)
    return job_id


def terminate(server: Server) -> tuple[float, str]:
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(60)
    took = time.monotonic() - started
    server.kill()
    return took, server.log.read_text()


def job_after_restart(home: Path, job_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    server = start(home)
    try:
        job = requests.get(f"{server.url}/jobs/{job_id}", timeout=10).json()
        health = requests.get(server.url + "/", timeout=10).json()
    finally:
        server.stop()
    return job, health


@pytest.fixture
def home(trained_home: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(trained_home, copy, ignore=shutil.ignore_patterns("jobs.lock"))
    return copy


CANCELLED = "cancelled: the server shut down while this job ran; retrain again"
TIMED_OUT = {"code": "interrupted",
             "message": "the server shut down and the job did not stop in time; retrain again"}


def assert_clean_exit(server: Server, took: float, log: str) -> None:
    assert server.process.returncode == 0, log[-3000:]
    assert not [word for word in ABORTS if word in log], log[-3000:]
    assert "SIGKILL" not in log, log[-3000:]  # the master never had to kill a worker
    assert took < 40, (took, log[-3000:])


def test_sigterm_cancels_the_running_retrain_at_its_next_event(home: Path) -> None:
    """Deterministic: the job waits in the test pause after 'merge'; its next event (the
    start of the backtest) comes a moment after the pause, and the job unwinds there."""
    before = sorted(p.name for p in (home / "models").iterdir())
    server = start(home, RESTOCK_TEST_PAUSE_AT_STAGE="merge", RESTOCK_TEST_PAUSE_SECONDS="2")
    previous = requests.get(server.url + "/", timeout=10).json()["model_version"]
    assert previous
    job_id = retrain_until(server, "merge")
    took, log = terminate(server)
    assert_clean_exit(server, took, log)
    assert "job did not stop in time" not in log
    job, health = job_after_restart(home, job_id)
    assert job["status"] == "cancelled", job
    assert job["error"] == {"code": "cancelled", "message": CANCELLED}, job
    assert health["model_version"] == previous
    assert sorted(p.name for p in (home / "models").iterdir()) == before


def test_a_job_that_cannot_stop_in_time_is_recorded_failed_and_the_worker_exits(
        home: Path) -> None:
    server = start(home, RESTOCK_TEST_PAUSE_AT_STAGE="merge", RESTOCK_TEST_PAUSE_SECONDS="300")
    previous = requests.get(server.url + "/", timeout=10).json()["model_version"]
    job_id = retrain_until(server, "merge")
    took, log = terminate(server)
    assert_clean_exit(server, took, log)
    assert "job did not stop in time" in log
    job, health = job_after_restart(home, job_id)
    assert job["status"] == "failed" and job["error"] == TIMED_OUT, job
    assert health["model_version"] == previous


def test_sigterm_while_torch_trains_never_aborts(home: Path) -> None:
    """The reported crash: SIGTERM while the LSTM trains. Whether the epoch ends within the
    grace period depends on the machine's load, so either clean outcome is accepted; an
    abort, a job left running or a new version is not."""
    before = sorted(p.name for p in (home / "models").iterdir())
    # enough epochs that the LSTM's refit outlasts the status polls (two took 0.15 s on an
    # idle machine, and the test waited for a stage that had come and gone)
    server = start(home, RESTOCK_LSTM_EPOCHS="200")
    previous = requests.get(server.url + "/", timeout=10).json()["model_version"]
    job_id = retrain_until(server, "lstm")
    took, log = terminate(server)
    assert_clean_exit(server, took, log)
    job, health = job_after_restart(home, job_id)
    assert (job["status"], job["error"]) in (
        ("cancelled", {"code": "cancelled", "message": CANCELLED}), ("failed", TIMED_OUT)), job
    assert health["model_version"] == previous
    assert sorted(p.name for p in (home / "models").iterdir()) == before
