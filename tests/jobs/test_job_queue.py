"""The embedded job queue over a real database: FIFO, one at a time, cancel, replay, restart."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from restock.data.store import SalesStore
from restock.errors import InvalidParameterError, JobConflictError, JobNotFoundError
from restock.jobs import JobRecords, ThreadJobQueue


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


class GatedTask:
    """A job body that reports progress, then waits until the test opens its gate.

    It records start order and the largest number of jobs that ran at once, which is
    what "FIFO, one at a time" is about.
    """

    def __init__(self) -> None:
        self.gates: dict[str, threading.Event] = {}
        self.started: list[str] = []
        self.running = 0
        self.max_running = 0
        self.ticks: dict[str, int] = {}
        self._lock = threading.Lock()

    def gate(self, name: str) -> threading.Event:
        return self.gates.setdefault(name, threading.Event())

    def __call__(self, params: dict[str, Any], on_event: Callable[[dict], None]) -> dict:
        name = params["name"]
        with self._lock:
            self.started.append(name)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            on_event({"stage": "validate", "progress": 0.1, "message": "started"})
            while not self.gate(name).wait(0.02):
                self.ticks[name] = self.ticks.get(name, 0) + 1
                on_event({"stage": "lstm", "progress": 0.5, "message": "epoch"})
            if params.get("fail") == "domain":
                raise InvalidParameterError("bad weights", {"weights": "x"})
            if params.get("fail") == "crash":
                raise RuntimeError("secret /etc/path detail")
            on_event({"stage": "done", "progress": 1.0, "message": "done"})
            return {"model_version": f"v-{name}", "metrics": {"mase": 0.5}}
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def task() -> GatedTask:
    return GatedTask()


@pytest.fixture
def queue(store: SalesStore, task: GatedTask, tmp_path: Path) -> Iterator[ThreadJobQueue]:
    q = ThreadJobQueue(JobRecords(store.engine), task, lock_path=tmp_path / "jobs.lock",
                       poll_interval=0.05, lock_retry=0.05).start()
    wait_for(lambda: q.is_runner)
    yield q
    for gate in task.gates.values():
        gate.set()
    q.shutdown(timeout=10)


def test_jobs_run_fifo_one_at_a_time(queue: ThreadJobQueue, task: GatedTask) -> None:
    jobs = [queue.submit({"name": n}) for n in ("a", "b", "c")]
    assert [j.status for j in jobs] == ["queued"] * 3
    wait_for(lambda: queue.get(jobs[0].job_id).status == "running")
    assert queue.get(jobs[1].job_id).status == "queued"
    for name in ("a", "b", "c"):
        task.gate(name).set()
    wait_for(lambda: all(queue.get(j.job_id).finished for j in jobs))
    assert task.started == ["a", "b", "c"]
    assert task.max_running == 1
    done = queue.get(jobs[2].job_id)
    assert done.status == "succeeded" and done.model_version == "v-c" and done.progress == 1.0
    assert done.started_at is not None and done.finished_at >= done.started_at
    assert queue.stats() == {"kind": "thread", "queued": 0, "running": 0, "runner": True}


def test_events_are_numbered_and_replay_exactly_after_an_id(
        queue: ThreadJobQueue, task: GatedTask) -> None:
    job = queue.submit({"name": "a"})
    wait_for(lambda: task.ticks.get("a", 0) >= 3)
    task.gate("a").set()
    wait_for(lambda: queue.get(job.job_id).finished)
    events = queue.events(job.job_id)
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    assert events[0].event == "progress" and events[0].data["stage"] == "queued"
    assert events[-1].event == "done"
    assert events[-1].data == {"model_version": "v-a", "metrics": {"mase": 0.5}}
    assert all(e.event == "progress" for e in events[:-1])
    assert queue.events(job.job_id, after_id=3) == events[3:]
    assert queue.events(job.job_id, after_id=events[-1].event_id) == []
    assert queue.wait_events(job.job_id, events[-1].event_id, timeout=0.1) == []


def test_cancel_queued_job_never_starts(queue: ThreadJobQueue, task: GatedTask) -> None:
    first = queue.submit({"name": "a"})
    second = queue.submit({"name": "b"})
    wait_for(lambda: queue.get(first.job_id).status == "running")
    cancelled = queue.cancel(second.job_id)
    assert cancelled.status == "cancelled" and cancelled.error["code"] == "cancelled"
    assert queue.events(second.job_id)[-1].event == "error"
    task.gate("a").set()
    task.gate("b").set()
    wait_for(lambda: queue.get(first.job_id).finished)
    time.sleep(0.2)
    assert task.started == ["a"]
    assert queue.get(second.job_id).status == "cancelled"


def test_cancel_running_job_stops_at_next_event(queue: ThreadJobQueue, task: GatedTask) -> None:
    job = queue.submit({"name": "a"})
    wait_for(lambda: task.ticks.get("a", 0) >= 2)
    flagged = queue.cancel(job.job_id)
    assert flagged.cancel_requested
    wait_for(lambda: queue.get(job.job_id).finished)
    final = queue.get(job.job_id)
    assert final.status == "cancelled" and final.model_version is None
    assert queue.events(job.job_id)[-1].data["code"] == "cancelled"
    ticks = task.ticks["a"]
    time.sleep(0.1)
    assert task.ticks["a"] == ticks and task.running == 0


def test_cancel_finished_or_unknown_job_is_an_error(queue: ThreadJobQueue, task: GatedTask) -> None:
    task.gate("a").set()
    job = queue.submit({"name": "a"})
    wait_for(lambda: queue.get(job.job_id).finished)
    with pytest.raises(JobConflictError):
        queue.cancel(job.job_id)
    with pytest.raises(JobNotFoundError):
        queue.cancel("nope")
    with pytest.raises(JobNotFoundError):
        queue.get("nope")
    with pytest.raises(JobNotFoundError):
        queue.events("nope")


@pytest.mark.parametrize("fail, code", [("domain", "invalid_parameter"),
                                        ("crash", "internal_error")])
def test_failing_job_ends_failed_with_an_error_event(
        queue: ThreadJobQueue, task: GatedTask, fail: str, code: str) -> None:
    task.gate("a").set()
    job = queue.submit({"name": "a", "fail": fail})
    wait_for(lambda: queue.get(job.job_id).finished)
    final = queue.get(job.job_id)
    assert final.status == "failed" and final.error["code"] == code
    last = queue.events(job.job_id)[-1]
    assert last.event == "error" and last.data["code"] == code
    assert "/etc/path" not in str(last.data)
    # the runner survives a crashing job
    task.gate("b").set()
    after = queue.submit({"name": "b"})
    wait_for(lambda: queue.get(after.job_id).status == "succeeded")


def test_only_the_lock_holder_runs_jobs_and_a_sibling_takes_over(
        store: SalesStore, task: GatedTask, tmp_path: Path) -> None:
    records = JobRecords(store.engine)
    lock = tmp_path / "jobs.lock"
    first = ThreadJobQueue(records, task, lock_path=lock, poll_interval=0.05,
                           lock_retry=0.05).start()
    wait_for(lambda: first.is_runner)
    second = ThreadJobQueue(records, task, lock_path=lock, poll_interval=0.05,
                            lock_retry=0.05).start()
    try:
        job = second.submit({"name": "a"})  # submitted through the non-runner
        wait_for(lambda: second.get(job.job_id).status == "running")
        assert not second.is_runner
        task.gate("a").set()
        wait_for(lambda: first.get(job.job_id).status == "succeeded")
        first.shutdown(timeout=10)
        wait_for(lambda: second.is_runner)
        task.gate("b").set()
        later = second.submit({"name": "b"})
        wait_for(lambda: second.get(later.job_id).status == "succeeded")
        assert task.max_running == 1
    finally:
        first.shutdown(timeout=10)
        second.shutdown(timeout=10)


DEAD_PROCESS = textwrap.dedent("""
    import os, sys, time, threading
    from pathlib import Path
    from restock.data.store import SalesStore
    from restock.jobs import JobRecords, ThreadJobQueue

    def hang(params, on_event):
        on_event({"stage": "prophet", "progress": 0.3, "message": "fitting"})
        threading.Event().wait()

    store = SalesStore(sys.argv[1], Path(sys.argv[2]))
    q = ThreadJobQueue(JobRecords(store.engine), hang, lock_path=Path(sys.argv[3]),
                       poll_interval=0.05).start()
    running = q.submit({"name": "running"})
    while q.get(running.job_id).stage != "prophet":
        time.sleep(0.02)
    queued = q.submit({"name": "queued"})
    print(running.job_id, queued.job_id, flush=True)
    os._exit(0)  # dies without any cleanup, like a killed worker
""")


def test_restart_marks_jobs_of_a_dead_process_interrupted(
        store: SalesStore, task: GatedTask, tmp_path: Path) -> None:
    lock = tmp_path / "jobs.lock"
    out = subprocess.run([sys.executable, "-c", DEAD_PROCESS, store.url,
                          str(tmp_path / "uploads"), str(lock)],
                         capture_output=True, text=True, timeout=60, check=True)
    running_id, queued_id = out.stdout.split()
    records = JobRecords(store.engine)
    assert records.get(running_id).status == "running"
    assert records.get(queued_id).status == "queued"
    restarted = ThreadJobQueue(records, task, lock_path=lock, poll_interval=0.05).start()
    try:
        wait_for(lambda: restarted.is_runner)
        for job_id in (running_id, queued_id):
            job = restarted.get(job_id)
            assert job.status == "failed" and job.error["code"] == "interrupted"
            last = restarted.events(job_id)[-1]
            assert last.event == "error" and last.data["code"] == "interrupted"
        assert task.started == []
        task.gate("new").set()
        fresh = restarted.submit({"name": "new"})
        wait_for(lambda: restarted.get(fresh.job_id).status == "succeeded")
    finally:
        restarted.shutdown(timeout=10)
