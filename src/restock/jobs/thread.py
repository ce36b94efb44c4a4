"""The embedded JobQueue: one background thread that runs jobs from the database, FIFO.

The queue itself lives in the ``jobs`` table (see ``records``), so every web worker can
submit, watch and cancel, but only the process holding ``$RESTOCK_HOME/jobs.lock`` runs
jobs. That keeps "one retrain at a time" true under ``gunicorn --workers N`` on one
machine without a broker; when the runner dies the OS drops its lock and a sibling worker
takes over, first failing what the dead one left ``running`` (reason ``interrupted``).
Several machines need the Celery queue instead.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from restock.errors import JobCancelled
from restock.jobs.base import Event, Job, JobQueue, Task
from restock.jobs.records import JobRecords, utcnow
from restock.jobs.runner import run_job

log = logging.getLogger(__name__)

SHUTDOWN_MESSAGE = "cancelled: the server shut down while this job ran; retrain again"


class ThreadJobQueue(JobQueue):
    """Run jobs one at a time on a daemon thread of this process.

    Parameters
    ----------
    records: where jobs and events live (shared by every process on the same database).
    task: the job body, ``task(params, on_event) -> done payload``.
    lock_path: the file whose exclusive lock makes this process the runner; ``None``
        runs jobs unconditionally (a single process).
    started_at: when the server started; queued jobs older than this are swept as
        interrupted. Defaults to now.
    poll_interval: how often an idle runner looks for jobs submitted by other processes.
    """

    kind = "thread"
    STATS_TTL = 1.0

    def __init__(self, records: JobRecords, task: Task, *, lock_path: Path | None = None,
                 started_at: datetime | None = None, poll_interval: float = 0.5,
                 lock_retry: float = 2.0) -> None:
        self.records = records
        self.task = task
        self.lock_path = lock_path
        self.started_at = started_at or utcnow()
        self.poll_interval = poll_interval
        self.lock_retry = lock_retry
        self._lock_file: IO[bytes] | None = None
        self._owner = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="restock-jobs", daemon=True)

    # -- the interface ---------------------------------------------------------------------

    def start(self) -> "ThreadJobQueue":
        self._thread.start()
        return self

    def submit(self, params: dict[str, Any], *, upload_id: str | None = None,
               kind: str = "retrain") -> Job:
        job = self.records.create(params, upload_id=upload_id, kind=kind)
        self._wake.set()
        return job

    def get(self, job_id: str) -> Job:
        return self.records.get(job_id)

    def events(self, job_id: str, after_id: int = 0) -> list[Event]:
        return self.records.events(job_id, after_id)

    def cancel(self, job_id: str) -> Job:
        return self.records.request_cancel(job_id)

    def stats(self) -> dict[str, Any]:
        """Counts at most ``STATS_TTL`` seconds old: ``GET /`` is polled hard, jobs are not."""
        return {"kind": self.kind, **self.records.counts(max_age=self.STATS_TTL),
                "runner": self.is_runner}

    @property
    def is_runner(self) -> bool:
        """Whether this process holds the runner lock (runs jobs) right now."""
        return self._owner

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop taking jobs; a running one is cancelled at its next progress event.

        The pipeline then unwinds as for a user's cancel (staging removed, ``current``
        untouched) and the job ends ``cancelled`` with the reason. Left running, the
        thread would still be inside torch or a Prophet pool when the interpreter exits,
        which aborts the process (``std::terminate``) with the job left ``running``.
        """
        self._stop.set()
        self._wake.set()
        if wait and self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        """Whether the runner thread has ended (after ``shutdown``, its job too)."""
        return not self._thread.is_alive()

    def fail_running(self, error: dict[str, Any]) -> int:
        """Record the job that did not stop in time as failed with ``error`` (the caller then
        ends the process at once); returns how many were marked."""
        return self.records.mark_interrupted(None, error) if not self.stopped else 0

    # -- the runner thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception:  # noqa: BLE001 - a database blip must not end the runner
                    log.exception("job runner step failed; retrying")
                    self._stop.wait(self.lock_retry)
        finally:
            self._release()

    def _step(self) -> None:
        """Take the lock if free, then run the oldest queued job (or wait for one)."""
        if not self._become_runner():
            self._stop.wait(self.lock_retry)
            return
        job = self.records.claim_next()
        if job is None:
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            return
        run_job(self.records, self.task, job, check=self._check_stop)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise JobCancelled(SHUTDOWN_MESSAGE)

    def _become_runner(self) -> bool:
        """Take the runner lock if free; on taking it, sweep what a dead runner left."""
        if self.is_runner:
            return True
        if self.lock_path is not None:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.lock_path, "ab")  # noqa: SIM115 - held for the process's life
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            self._lock_file = handle
        swept = self.records.mark_interrupted(self.started_at)
        self._owner = True
        log.info("pid %s runs the job queue; %d interrupted job(s) marked failed",
                 os.getpid(), swept)
        return True

    def _release(self) -> None:
        self._owner = False
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
