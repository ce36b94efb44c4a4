"""Defects found in review: a cancel after activation, and a runner killed by a DB blip."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from restock.data.store import SalesStore
from restock.jobs import JobRecords, ThreadJobQueue
from restock.jobs.runner import run_job


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_a_cancel_after_activation_does_not_turn_success_into_cancelled(
        store: SalesStore) -> None:
    """Once the pipeline reports ``done`` the new version is active: the job succeeded."""
    records = JobRecords(store.engine)
    job = records.create({})
    claimed = records.claim_next()
    assert claimed is not None and claimed.job_id == job.job_id

    def task(params: dict[str, Any], on_event: Callable[[dict], None]) -> dict[str, Any]:
        on_event({"stage": "activate", "progress": 0.98, "message": "activating"})
        records.request_cancel(job.job_id)  # the user clicks Cancel a moment too late
        on_event({"stage": "done", "progress": 1.0, "message": "active"})
        return {"model_version": "v1"}

    run_job(records, task, claimed)
    finished = records.get(job.job_id)
    assert (finished.status, finished.model_version) == ("succeeded", "v1")


class FlakyRecords(JobRecords):
    """Job records whose first ``claim_next`` fails like a locked or lost database."""

    failures = 1

    def claim_next(self):  # noqa: ANN201 - same as the parent
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database is locked")
        return super().claim_next()


def test_the_runner_survives_a_database_error(store: SalesStore, tmp_path: Path) -> None:
    def task(params: dict[str, Any], on_event: Callable[[dict], None]) -> dict[str, Any]:
        on_event({"stage": "done", "progress": 1.0, "message": "ok"})
        return {"model_version": "v-ok"}

    queue = ThreadJobQueue(FlakyRecords(store.engine), task, lock_path=tmp_path / "jobs.lock",
                           poll_interval=0.05, lock_retry=0.05).start()
    try:
        job = queue.submit({})
        wait_for(lambda: queue.get(job.job_id).finished)
        assert queue.get(job.job_id).status == "succeeded"
        assert queue.is_runner
    finally:
        queue.shutdown(timeout=10)
