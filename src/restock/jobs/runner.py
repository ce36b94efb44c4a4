"""Run one claimed job to a terminal state: shared by the thread queue and Celery workers.

Whatever the job body does (returns, raises a domain error, is cancelled, crashes), the
job ends with a terminal status and a final ``done`` or ``error`` event, so no client
stream is left waiting. Backends differ only in what they check between events.
"""

from __future__ import annotations

import ctypes
import gc
import logging
from collections.abc import Callable

from restock.errors import JobCancelled, RestockError
from restock.jobs.base import EventData, Job, Task
from restock.jobs.records import JobRecords

log = logging.getLogger(__name__)


def _no_check() -> None:
    """The default ``check``: nothing beyond the cancel flag."""


def release_memory() -> None:
    """Hand the memory a finished retrain freed back to the OS (glibc keeps it otherwise).

    A retrain allocates hundreds of MB of frames and tensors in the long-lived process that
    runs jobs; without this its RSS stays at the high-water mark of the largest retrain.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to trim


def run_job(records: JobRecords, task: Task, job: Job,
            check: Callable[[], None] = _no_check) -> None:
    """Run ``task`` for ``job``, persisting its events, until a terminal state.

    Each progress event is written first, then the cancel flag it returns is honoured
    (``JobCancelled``), then ``check`` runs: it may raise a ``RestockError`` to stop the
    job for a backend's own reason (the Celery queue's lost cluster lock).
    """
    job_id = job.job_id

    def on_event(data: EventData) -> None:
        cancel_requested = records.progress(job_id, dict(data))
        if data.get("stage") == "done":
            return  # the new version is already active: too late to cancel, report success
        if cancel_requested:
            raise JobCancelled("cancelled while running")
        check()

    log.info("job %s started", job_id)
    try:
        try:
            result = task(dict(job.params), on_event)
        finally:
            release_memory()
    except JobCancelled as exc:  # by a user, or by the server shutting down: the reason says
        error = {"code": "cancelled", "message": exc.message}
        records.finish(job_id, "cancelled", "error", error, error=error)
        log.info("job %s cancelled", job_id)
    except RestockError as exc:
        records.finish(job_id, "failed", "error", exc.to_dict(), error=exc.to_dict())
        log.warning("job %s failed: %s", job_id, exc.message)
    except Exception:  # noqa: BLE001 - the job must end, the details stay in the log
        log.exception("job %s crashed", job_id)
        error = {"code": "internal_error",
                 "message": "the job failed unexpectedly; the server log has details"}
        records.finish(job_id, "failed", "error", error, error=error)
    else:
        records.finish(job_id, "succeeded", "done", result,
                       model_version=result.get("model_version"))
        log.info("job %s succeeded: %s", job_id, result.get("model_version"))
