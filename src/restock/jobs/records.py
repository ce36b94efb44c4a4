"""Job rows and their events in the store's database (tables ``jobs`` and ``job_events``).

The database, not process memory, is the source of truth for jobs: a browser reconnecting
to another gunicorn worker, or after a restart, replays exactly what it missed, and the
queue of pending jobs survives any one process. Every state change that a client can
observe is written together with its event in one transaction, so an event stream and
``GET /jobs/<id>`` never disagree.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from restock.data.tables import aware, job_events, jobs
from restock.errors import JobConflictError, JobNotFoundError
from restock.jobs.base import Event, EventData, EventKind, Job


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _job(row: sa.Row[Any]) -> Job:
    return Job(
        job_id=row.job_id, kind=row.kind, status=row.status, stage=row.stage,
        progress=float(row.progress or 0.0), params=row.params or {}, upload_id=row.upload_id,
        model_version=row.model_version, error=row.error,
        cancel_requested=bool(row.cancel_requested), created_at=aware(row.created_at),
        started_at=aware(row.started_at), finished_at=aware(row.finished_at),
    )


#: Sees every event as it is appended (inside its transaction, under the job's row lock).
EventSink = Callable[[Event], None]

INTERRUPTED = {"code": "interrupted",
               "message": "the server stopped while this job was pending or running"}


class JobRecords:
    """CRUD for jobs and their numbered events over a SQLAlchemy engine.

    ``on_append`` mirrors events elsewhere (the Celery queue's Redis Stream) once their
    transaction has committed; a job has one writer at a time, so they arrive in id order
    (and a mirror that gets one out of order or misses one has a gap readers detect).
    """

    def __init__(self, engine: sa.Engine, on_append: EventSink | None = None) -> None:
        self.engine = engine
        #: reads in deferred transactions: on SQLite they never queue behind an upload
        self.reader = engine.execution_options(read_only=True)
        self.on_append = on_append
        self._counts: tuple[float, dict[str, int]] | None = None

    # -- reading -------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).first()
        if row is None:
            raise JobNotFoundError(f"no job {job_id!r}", {"job_id": job_id})
        return _job(row)

    def events(self, job_id: str, after_id: int = 0) -> list[Event]:
        with self.reader.connect() as conn:
            exists = conn.execute(
                sa.select(jobs.c.job_id).where(jobs.c.job_id == job_id)).first()
            if exists is None:
                raise JobNotFoundError(f"no job {job_id!r}", {"job_id": job_id})
            rows = conn.execute(
                sa.select(job_events)
                .where(job_events.c.job_id == job_id, job_events.c.event_id > after_id)
                .order_by(job_events.c.event_id)).all()
        return [Event(r.job_id, r.event_id, r.event, r.data) for r in rows]

    def counts(self, max_age: float = 0.0) -> dict[str, int]:
        """Queued and running jobs; at most ``max_age`` seconds old (``GET /`` is polled
        hard, jobs are not). A ``create`` here drops the cached figure."""
        now = time.monotonic()
        if self._counts is not None and now - self._counts[0] <= max_age:
            return self._counts[1]
        with self.reader.connect() as conn:
            rows = conn.execute(
                sa.select(jobs.c.status, sa.func.count())
                .where(jobs.c.status.in_(("queued", "running")))
                .group_by(jobs.c.status)).all()
        found = {status: int(n) for status, n in rows}
        counts = {"queued": found.get("queued", 0), "running": found.get("running", 0)}
        self._counts = (now, counts)
        return counts

    # -- writing -------------------------------------------------------------------------

    def create(self, params: dict[str, Any], *, upload_id: str | None = None,
               kind: str = "retrain") -> Job:
        """Insert a queued job with its first event, so a stream opened now shows it."""
        job_id = str(uuid.uuid4())
        self._counts = None
        with self._transaction() as (conn, pending):
            conn.execute(jobs.insert().values(
                job_id=job_id, kind=kind, status="queued", stage="queued", progress=0.0,
                params=params, upload_id=upload_id, cancel_requested=False,
                created_at=utcnow()))
            self._append(conn, pending, job_id, "progress", {
                "stage": "queued", "progress": 0.0, "message": "waiting for the worker",
                "job_id": job_id})
        return self.get(job_id)

    def claim_next(self) -> Job | None:
        """Move the oldest queued job to ``running`` and return it (None when idle).

        The conditional UPDATE makes the claim safe against a concurrent cancel.
        """
        with self.engine.begin() as conn:
            job_id = conn.execute(
                sa.select(jobs.c.job_id).where(jobs.c.status == "queued")
                .order_by(jobs.c.created_at, jobs.c.job_id).limit(1)).scalar()
            if job_id is None:
                return None
            claimed = conn.execute(
                jobs.update().where(jobs.c.job_id == job_id, jobs.c.status == "queued")
                .values(status="running", started_at=utcnow())).rowcount
        return self.get(job_id) if claimed else None

    def progress(self, job_id: str, data: EventData) -> bool:
        """Persist a progress event and return whether cancellation was requested."""
        values: dict[str, Any] = {}
        if data.get("stage") is not None:
            values["stage"] = str(data["stage"])[:20]
        if data.get("progress") is not None:
            values["progress"] = float(data["progress"])
        with self._transaction() as (conn, pending):
            self._append(conn, pending, job_id, "progress", data)
            if values:
                conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(**values))
            return bool(conn.execute(
                sa.select(jobs.c.cancel_requested).where(jobs.c.job_id == job_id)).scalar())

    def finish(self, job_id: str, status: str, event: EventKind, data: EventData, *,
               model_version: str | None = None, error: dict[str, Any] | None = None) -> None:
        """Set a terminal status and write the final event in the same transaction."""
        values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
        if model_version is not None:
            values.update(model_version=model_version, progress=1.0, stage="done")
        with self._transaction() as (conn, pending):
            conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(**values))
            self._append(conn, pending, job_id, event, data)

    def request_cancel(self, job_id: str) -> Job:
        """Cancel a queued job outright, or flag a running one for its next event."""
        error = {"code": "cancelled", "message": "cancelled before it started"}
        with self._transaction() as (conn, pending):
            cancelled = conn.execute(
                jobs.update().where(jobs.c.job_id == job_id, jobs.c.status == "queued")
                .values(status="cancelled", cancel_requested=True, finished_at=utcnow(),
                        error=error)).rowcount
            if cancelled:
                self._append(conn, pending, job_id, "error", error)
            else:
                conn.execute(
                    jobs.update().where(jobs.c.job_id == job_id, jobs.c.status == "running")
                    .values(cancel_requested=True))
        job = self.get(job_id)
        if job.finished and not cancelled:
            raise JobConflictError(f"job {job_id} already {job.status}",
                                   {"job_id": job_id, "status": job.status})
        return job

    def mark_interrupted(self, created_before: datetime | None,
                         error: dict[str, Any] = INTERRUPTED) -> int:
        """Fail the jobs a dead process left behind; each gets a final ``error`` event.

        ``running`` jobs are always orphans when this is called (one runner at a time);
        ``queued`` ones only if they predate ``created_before`` (this server's start), so
        a job queued by a sibling worker a moment ago is not swept. ``None`` sweeps no
        queued job: with a broker they are still waiting to run, not orphans.
        """
        orphaned = jobs.c.status == "running"
        if created_before is not None:
            orphaned = sa.or_(orphaned, sa.and_(jobs.c.status == "queued",
                                                jobs.c.created_at < created_before))
        with self._transaction() as (conn, pending):
            orphans = conn.execute(sa.select(jobs.c.job_id).where(orphaned)).scalars().all()
            for job_id in orphans:
                conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(
                    status="failed", finished_at=utcnow(), error=error))
                self._append(conn, pending, job_id, "error", error)
        return len(orphans)

    @contextmanager
    def _transaction(self) -> Iterator[tuple[sa.Connection, list[Event]]]:
        """A write transaction; the events it appended are mirrored only after it commits.

        Mirroring after the commit means the mirror never shows an event the database
        lost (a writer killed mid-transaction); a mirror that misses one (a writer killed
        between commit and mirror) has a gap, which readers detect and answer from here.
        """
        pending: list[Event] = []
        with self.engine.begin() as conn:
            yield conn, pending
        if self.on_append is not None:
            for event in pending:
                self.on_append(event)

    def _append(self, conn: sa.Connection, pending: list[Event], job_id: str,
                event: EventKind, data: EventData) -> int:
        """Append an event with the job's next id; the row lock serialises writers on PG."""
        conn.execute(sa.select(jobs.c.job_id).where(jobs.c.job_id == job_id).with_for_update())
        last = conn.execute(sa.select(sa.func.max(job_events.c.event_id))
                            .where(job_events.c.job_id == job_id)).scalar()
        event_id = int(last or 0) + 1
        conn.execute(job_events.insert().values(
            job_id=job_id, event_id=event_id, event=event, data=data, created_at=utcnow()))
        pending.append(Event(job_id, event_id, event, data))
        return event_id
