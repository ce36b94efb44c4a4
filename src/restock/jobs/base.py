"""The JobQueue interface: what the web layer needs from any background-job backend.

The web views and the CLI only ever talk to this interface, so the embedded thread queue
(``restock.jobs.thread``) and the Celery queue (scale-out) are interchangeable. Events are
numbered per job from 1; a client that saw event ``n`` asks for ``events(job_id, n)`` and
gets exactly what it missed, which is what SSE's ``Last-Event-ID`` needs.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
EventKind = Literal["progress", "done", "error"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

#: One job event as the pipeline reports it: ``{stage, progress, message, ...}``.
EventData = dict[str, Any]
#: The body of a job: gets the job's params and a callback for its progress events, returns
#: the payload of the final ``done`` event. The callback may raise ``JobCancelled``.
Task = Callable[[dict[str, Any], Callable[[EventData], None]], dict[str, Any]]


@dataclass(frozen=True)
class Job:
    """A job's current state, as ``GET /jobs/<id>`` shows it."""

    job_id: str
    kind: str
    status: JobStatus
    stage: str | None
    progress: float
    params: dict[str, Any]
    upload_id: str | None
    model_version: str | None
    error: dict[str, Any] | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "job_id": self.job_id, "kind": self.kind, "status": self.status,
            "stage": self.stage, "progress": self.progress, "model_version": self.model_version,
            "error": self.error, "upload_id": self.upload_id,
            "created_at": iso(self.created_at), "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }


@dataclass(frozen=True)
class Event:
    """One persisted event; ``event_id`` is the SSE ``id:``."""

    job_id: str
    event_id: int
    event: EventKind
    data: EventData = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.event in ("done", "error")


class JobQueue(ABC):
    """Submit, observe and cancel background jobs, whatever runs them.

    Guarantees every implementation keeps: FIFO, one retrain at a time, every job reaches
    a terminal status with a final ``done`` or ``error`` event, and events are replayable
    from any id for as long as the job record exists.
    """

    kind: str = "abstract"

    @abstractmethod
    def submit(self, params: dict[str, Any], *, upload_id: str | None = None,
               kind: str = "retrain") -> Job:
        """Queue a job and return it (status ``queued``, one ``progress`` event)."""

    @abstractmethod
    def get(self, job_id: str) -> Job:
        """The job's state; raises ``JobNotFoundError``."""

    @abstractmethod
    def events(self, job_id: str, after_id: int = 0) -> list[Event]:
        """Events with ``event_id > after_id`` in order; raises ``JobNotFoundError``."""

    @abstractmethod
    def cancel(self, job_id: str) -> Job:
        """Cancel: a queued job never starts, a running one stops at its next event.

        Raises ``JobNotFoundError``, or ``JobConflictError`` when the job already ended.
        """

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """``{kind, queued, running}`` for the health endpoint."""

    @abstractmethod
    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop taking work; a running job is left to the next start's interrupted sweep."""

    def poll_events(self, job_id: str, after_id: int) -> list[Event]:
        """``events`` for a poller that asks several times a second (the stream
        broadcaster). Backends whose live mirror is cheaper to ask than the record may
        answer from it alone: they may then miss an event the mirror lost, which the
        poller catches up on with ``events`` once ``get`` says the job ended."""
        return self.events(job_id, after_id)

    def wait_events(self, job_id: str, after_id: int, timeout: float,
                    poll: float = 0.1) -> list[Event]:
        """Block up to ``timeout`` seconds for events after ``after_id``.

        Polling the store is the lowest common denominator: it works across processes
        (another gunicorn worker may be running the job). Backends with a blocking read
        (a Redis Stream) override it.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(job_id, after_id)
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
