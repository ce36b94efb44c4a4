"""SalesStore: the sales history in a database, upserted one upload per transaction.

The seed rewrote ``large_dataset.csv`` on every upload, so an upload's cost grew with the
history and two concurrent uploads could lose each other's rows. Here an upload is staged
in a temporary table and merged with one ``INSERT ... ON CONFLICT DO UPDATE`` inside one
transaction: its cost grows with the upload only, and it lands whole or not at all.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from werkzeug.utils import secure_filename
from sqlalchemy.dialects import postgresql, sqlite

from restock import migrations
from restock.config import Settings
from restock.data import tables
from restock.query import ITEM_COLUMNS
from restock.data.frequency import MIN_DATASET_DATES, check_matches_history, classify
from restock.data.items import ParsedItems, parse_items_csv, settings_records
from restock.data.schema import (CANONICAL, Limits, OnDuplicate, OnError, ParsedUpload,
                                 neutralise_formulas, parse_sales_csv)

log = logging.getLogger(__name__)

Filter = str | Sequence[str] | None
_CHUNK_ROWS = 100_000
#: an upload's file is written before its row commits: a file without a row younger than
#: this may belong to an upload still in flight in another process
ORPHAN_GRACE_SECONDS = 3600.0
_UPLOAD_FILE = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
                          r"\.(csv|partial)$")
#: distinct dates of the history whose spacing tells its frequency (newest first)
_HISTORY_DATES = 60
_SQL_RECENT_DATES = """
WITH RECURSIVE recent(day, n) AS (
  SELECT max(date), 1 FROM sales
  UNION ALL
  SELECT (SELECT max(date) FROM sales WHERE date < recent.day), n + 1
  FROM recent WHERE recent.day IS NOT NULL AND n < :limit)
SELECT day FROM recent WHERE day IS NOT NULL
"""
# first key of restock's PostgreSQL advisory locks ("rstk"); the second names what is locked
ADVISORY_LOCK_SPACE = 0x7273746B
_SQLITE_COUNT_SERIES = """
WITH RECURSIVE
products(p) AS (
  SELECT min(product_id) FROM sales
  UNION ALL
  SELECT (SELECT min(product_id) FROM sales WHERE product_id > products.p)
  FROM products WHERE products.p IS NOT NULL),
pairs(p, s) AS (
  SELECT products.p, (SELECT min(store_id) FROM sales WHERE product_id = products.p)
  FROM products WHERE products.p IS NOT NULL
  UNION ALL
  SELECT pairs.p, (SELECT min(store_id) FROM sales
                   WHERE product_id = pairs.p AND store_id > pairs.s)
  FROM pairs WHERE pairs.s IS NOT NULL)
SELECT count(s) FROM pairs
"""


@dataclass(frozen=True)
class UploadResult:
    """What one ingest did, as the CLI and the API report it."""

    upload_id: str
    filename: str
    rows_read: int
    inserted: int
    updated: int
    skipped: int
    total_rows: int
    series: int
    ignored_columns: list[str]
    skipped_problems: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sanitise_filename(name: str | None) -> str:
    """A display-only filename (files are stored under UUIDs): the last path part only,
    made safe by werkzeug's ``secure_filename``, bounded, never empty."""
    base = os.path.basename((name or "").replace("\\", "/"))
    return secure_filename(base)[:120] or "upload.csv"


def as_list(value: Filter) -> list[str] | None:
    """A filter as the list of values it matches; None (no filter) stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def make_engine(url: str) -> sa.Engine:
    """The store's engine for ``url``: on SQLite, WAL, a 60 s busy timeout, and writes that
    take the write lock when they begin (migrations rely on that too)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # autocommit at the driver level; SQLAlchemy's begin event issues BEGIN IMMEDIATE
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # 64 MiB page cache (allocated as used; default 2 MiB): a bulk upsert touches the
            # table and three indexes at once, and thrashes a small cache (2-3x slower)
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            # writers take the write lock up front so they queue instead of failing to
            # upgrade a read snapshot; readers (the ``reader`` engine) never wait for it
            if conn.get_execution_options().get("read_only"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


_DATA_VERSION_SQL = (f"SELECT max(seq) FROM {tables.uploads.name} "
                     "WHERE status = 'applied'")
_ITEMS_VERSION_SQL = f"SELECT max(seq) FROM {tables.item_uploads.name}"
#: product ids per ``IN`` list when looking up which series an item upload names
_IDS_PER_QUERY = 500


class SalesStore:
    """The sales history, its uploads, and (through ``engine``) the job records."""

    def __init__(self, url: str, uploads_dir: Path, *, limits: Limits = Limits(),
                 orphan_grace_seconds: float = ORPHAN_GRACE_SECONDS) -> None:
        """``limits``: what uploads may hold (dates, magnitudes); ``from_settings`` takes
        them from ``RESTOCK_*``. Opening the store also sets aside upload files that no
        applied upload owns (``sweep_orphans``)."""
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = make_engine(url)
        #: for reads only: on SQLite a deferred transaction, so reads never queue behind
        #: an upload holding the write lock (WAL lets them see the last commit meanwhile)
        self.reader = self.engine.execution_options(read_only=True)
        self.uploads_dir = Path(uploads_dir)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.limits = limits
        #: called with each applied upload's ``seq`` after it commits (live accuracy
        #: scoring); a listener's error is logged and never fails the upload
        self.after_upload: list[Callable[[int], None]] = []
        # create or upgrade the schema (alembic, under a lock: safe when processes start
        # together; adopts a database made before migrations existed)
        migrations.upgrade(self.engine)
        self.sweep_orphans(orphan_grace_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> "SalesStore":
        """The store ``settings`` describe, with their upload limits."""
        return cls(settings.db_url, settings.uploads_dir, limits=Limits(
            min_date=date.fromisoformat(settings.min_date),
            max_future_days=settings.max_future_days, max_value=settings.max_quantity))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # -- writing -------------------------------------------------------------------------

    def ingest_bytes(
        self,
        raw: bytes,
        filename: str | None = None,
        *,
        on_error: OnError = "reject",
        on_duplicate: OnDuplicate = "error",
    ) -> UploadResult:
        """Validate ``raw`` and merge it into the history; all rows or none.

        The file is kept as received under ``uploads/<uuid>.csv`` before the transaction
        commits, so an applied upload always has its original bytes on disk.
        """
        parsed = parse_sales_csv(raw, on_error=on_error, on_duplicate=on_duplicate,
                                 limits=self.limits)
        upload_id, path = _keep_as_sent(raw, self.uploads_dir)
        try:
            return self._apply(parsed, upload_id, sanitise_filename(filename),
                               hashlib.sha256(raw).hexdigest())
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def ingest_file(self, path: Path, **options: Any) -> UploadResult:
        return self.ingest_bytes(Path(path).read_bytes(), Path(path).name, **options)

    def replace_items(self, raw: bytes, filename: str | None = None) -> dict[str, Any]:
        """Validate an item settings CSV (:mod:`.items`) and make its rows the settings in
        force, replacing the previous ones as a whole in one transaction: all or nothing.

        The file is kept as received under ``uploads/items/<uuid>.csv``, like a sales
        upload's; returns the upload's summary (``items_summary``)."""
        parsed = parse_items_csv(raw, self.known_series)
        upload_id, path = _keep_as_sent(raw, self.uploads_dir / "items")
        try:
            with self.engine.begin() as conn:
                self._serialise_uploads(conn)
                seq = conn.execute(tables.item_uploads.insert().values(
                    upload_id=upload_id, filename=sanitise_filename(filename),
                    sha256=hashlib.sha256(raw).hexdigest(),
                    received_at=datetime.now(timezone.utc), rows=len(parsed.frame),
                ).returning(tables.item_uploads.c.seq)).scalar_one()
                conn.execute(tables.item_settings.delete())
                conn.execute(tables.item_settings.insert(), _item_rows(parsed, seq))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return {**self.items_summary(), "rows_read": parsed.rows_read,
                "ignored_columns": parsed.ignored_columns}

    def known_series(self, products: Sequence[str]) -> set[tuple[str, str]]:
        """The (product_id, store_id) pairs of ``products`` that the sales history holds
        (one primary-key range per product)."""
        s = tables.sales.c
        found: set[tuple[str, str]] = set()
        with self.reader.connect() as conn:
            for start in range(0, len(products), _IDS_PER_QUERY):
                chosen = list(products[start:start + _IDS_PER_QUERY])
                found.update(tuple(row) for row in conn.execute(
                    sa.select(s.product_id, s.store_id).where(s.product_id.in_(chosen))
                    .distinct()))
        return found

    def _apply(self, parsed: ParsedUpload, upload_id: str, filename: str,
               sha256: str) -> UploadResult:
        frame = parsed.frame
        with self.engine.begin() as conn:
            self._serialise_uploads(conn)
            check_matches_history(parsed.frequency, self._history_frequency(conn))
            seq = conn.execute(
                tables.uploads.insert().values(
                    upload_id=upload_id, filename=filename, sha256=sha256,
                    received_at=datetime.now(timezone.utc), rows_read=parsed.rows_read,
                    inserted=0, updated=0, skipped=parsed.skipped_total, status="applying",
                ).returning(tables.uploads.c.seq)
            ).scalar_one()
            staging = self._stage(conn, frame, seq)
            key = ["product_id", "store_id", "date"]
            existing = conn.execute(
                sa.select(sa.func.count()).select_from(
                    staging.join(tables.sales, sa.and_(
                        *[staging.c[k] == tables.sales.c[k] for k in key])))
            ).scalar_one()
            self._merge(conn, staging)
            conn.execute(staging.delete())
            inserted, updated = len(frame) - existing, existing
            conn.execute(tables.uploads.update().where(tables.uploads.c.seq == seq).values(
                inserted=inserted, updated=updated, status="applied"))
            total = conn.execute(sa.select(sa.func.count()).select_from(tables.sales)).scalar_one()
            series = self._count_series(conn)
        self._notify(seq)
        return UploadResult(
            upload_id=upload_id, filename=filename, rows_read=parsed.rows_read,
            inserted=int(inserted), updated=int(updated), skipped=parsed.skipped_total,
            total_rows=int(total), series=int(series), ignored_columns=parsed.ignored_columns,
            skipped_problems=[p.to_dict() for p in parsed.skipped],
        )

    def _notify(self, seq: int) -> None:
        """Run the ``after_upload`` listeners: the upload has committed and stands whatever
        they do, so their errors are logged, not raised."""
        for listener in self.after_upload:
            try:
                listener(seq)
            except Exception:  # noqa: BLE001 - an upload never fails for a listener
                log.exception("after-upload step %r failed for upload %d; the upload stands",
                              getattr(listener, "__qualname__", listener), seq)

    def _serialise_uploads(self, conn: sa.Connection) -> None:
        """One upload at a time per database (per schema on PostgreSQL), as SQLite's BEGIN
        IMMEDIATE already does. Without it, on PostgreSQL's READ COMMITTED two uploads of
        the same keys both count them as new before either commits (inserted/updated
        wrong), and ``seq`` order could differ from the order the merges landed in. A
        transaction-level advisory lock: released by the commit or the rollback."""
        if self.dialect == "postgresql":
            conn.exec_driver_sql(
                f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_SPACE}, "
                "hashtext('uploads:' || current_schema()))")

    def _history_frequency(self, conn: sa.Connection) -> str:
        """The frequency the newest distinct dates of the history show, or "": one index
        seek per date (a recursive query), so its cost does not grow with the history."""
        days = conn.execute(sa.text(_SQL_RECENT_DATES), {"limit": _HISTORY_DATES}
                            ).scalars().all()
        if not days:
            return ""
        return str(classify(pd.Series(pd.to_datetime(days)), min_dates=MIN_DATASET_DATES)[0])

    def sweep_orphans(self, grace_seconds: float = ORPHAN_GRACE_SECONDS) -> list[Path]:
        """Move upload files that no applied upload owns to ``uploads/orphans/``.

        A process killed between writing an upload's file and committing its row leaves
        such a file (the rollback removed the row). Moving, not deleting: nothing a user
        sent is lost. Only files older than ``grace_seconds`` move, as a younger one may
        belong to an upload another process is committing right now. Returns the new paths.
        """
        found = {}
        for path in self.uploads_dir.iterdir():
            match = _UPLOAD_FILE.match(path.name)
            if match and path.is_file():
                found[path] = match.group(1)
        if not found:
            return []
        with self.reader.connect() as conn:
            owned = set(conn.execute(sa.select(tables.uploads.c.upload_id)).scalars())
        cutoff = time.time() - grace_seconds
        moved = []
        for path, upload_id in sorted(found.items()):
            try:
                if upload_id in owned or path.stat().st_mtime > cutoff:
                    continue
                target = self.uploads_dir / "orphans" / path.name
                target.parent.mkdir(exist_ok=True)
                os.replace(path, target)
            except FileNotFoundError:  # another process opening the store moved it first
                continue
            moved.append(target)
        if moved:
            log.warning("moved %d upload file(s) that no applied upload owns to %s",
                        len(moved), self.uploads_dir / "orphans")
        return moved

    def _count_series(self, conn: sa.Connection) -> int:
        """Distinct (product_id, store_id) pairs. On SQLite a skip-scan of the primary key
        (one index seek per product and per store) so that an upload's cost does not grow
        with the history; a DISTINCT reads every row (0.3 s at 2M rows). The query is
        plain SQL and PostgreSQL runs it the same way (0.07 s against a DISTINCT's 0.31 s
        at 2M rows)."""
        if self.dialect in ("sqlite", "postgresql"):
            return int(conn.exec_driver_sql(_SQLITE_COUNT_SERIES).scalar_one())
        return int(conn.execute(sa.select(sa.func.count()).select_from(
            sa.select(tables.sales.c.product_id, tables.sales.c.store_id).distinct()
            .subquery())).scalar_one())

    def _stage(self, conn: sa.Connection, frame: pd.DataFrame, seq: int) -> sa.Table:
        """Bulk-load the upload into a per-connection temporary table."""
        staging = sa.Table(
            "sales_staging", sa.MetaData(),
            *[sa.Column(c.name, c.type) for c in tables.sales.columns],
            prefixes=["TEMPORARY"],
        )
        staging.create(conn, checkfirst=True)
        if self.dialect == "sqlite":
            # plain tuples straight to the DB-API's executemany: SQLAlchemy's per-row
            # parameter processing cost more than SQLite's own inserts
            columns = [c.name for c in staging.columns]
            sql = (f"INSERT INTO sales_staging ({', '.join(columns)}) "
                   f"VALUES ({', '.join('?' * len(columns))})")
            for start in range(0, len(frame), _CHUNK_ROWS):
                conn.exec_driver_sql(sql, _sqlite_rows(frame.iloc[start:start + _CHUNK_ROWS], seq))
            return staging
        if self.dialect == "postgresql" and _is_psycopg(conn):
            _copy_into_staging(conn, frame, seq)
            return staging
        columns = [c.name for c in staging.columns]
        for start in range(0, len(frame), _CHUNK_ROWS):
            rows = _date_rows(frame.iloc[start:start + _CHUNK_ROWS], seq)
            conn.execute(staging.insert(), [dict(zip(columns, row)) for row in rows])
        return staging

    def _merge(self, conn: sa.Connection, staging: sa.Table) -> None:
        insert = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)
        columns = [c.name for c in tables.sales.columns]
        stmt = insert(tables.sales).from_select(
            columns, sa.select(*[staging.c[c] for c in columns]).where(sa.true()))
        stmt = stmt.on_conflict_do_update(
            index_elements=["product_id", "store_id", "date"],
            set_={c: stmt.excluded[c] for c in columns
                  if c not in ("product_id", "store_id", "date")},
        )
        conn.execute(stmt)

    # -- reading -------------------------------------------------------------------------

    def _where(self, product_id: Filter = None, store_id: Filter = None,
               category: Filter = None, start: date | None = None,
               end: date | None = None) -> list[sa.ColumnElement[bool]]:
        s = tables.sales.c
        clauses: list[sa.ColumnElement[bool]] = []
        for column, value in ((s.product_id, product_id), (s.store_id, store_id),
                              (s.category, category)):
            values = as_list(value)
            if values is not None:
                clauses.append(column.in_(values))
        if start is not None:
            clauses.append(s.date >= start)
        if end is not None:
            clauses.append(s.date <= end)
        return clauses

    def query(self, product_id: Filter = None, store_id: Filter = None, category: Filter = None,
              start: date | None = None, end: date | None = None) -> pd.DataFrame:
        """Canonical rows matching the filters, sorted by product, store and date."""
        s = tables.sales.c
        stmt = (sa.select(*[s[c] for c in CANONICAL])
                .where(*self._where(product_id, store_id, category, start, end))
                .order_by(s.product_id, s.store_id, s.date))
        with self.reader.connect() as conn:
            frame = pd.read_sql(stmt, conn)
        frame["date"] = pd.to_datetime(frame["date"])
        for column in ("quantity", "price", "on_hand", "on_order"):
            frame[column] = frame[column].astype(float)
        return frame

    def series(self, product_id: Filter = None, store_id: Filter = None,
               category: Filter = None) -> pd.DataFrame:
        """One row per (product_id, store_id) with rows, first/last date, mean, zero share."""
        s = tables.sales.c
        stmt = (sa.select(
            s.product_id, s.store_id, sa.func.max(s.category).label("category"),
            sa.func.count().label("rows"), sa.func.min(s.date).label("first_date"),
            sa.func.max(s.date).label("last_date"), sa.func.avg(s.quantity).label("mean"),
            (sa.func.sum(sa.case((s.quantity == 0, 1), else_=0)) * 1.0
             / sa.func.count()).label("zero_share"),
        ).where(*self._where(product_id, store_id, category))
            .group_by(s.product_id, s.store_id).order_by(s.product_id, s.store_id))
        with self.reader.connect() as conn:
            frame = pd.read_sql(stmt, conn)
        for column in ("first_date", "last_date"):
            frame[column] = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%d")
        frame["mean"] = frame["mean"].astype(float).round(4)
        frame["zero_share"] = frame["zero_share"].astype(float).round(4)
        return frame

    def data_version(self) -> int | None:
        """The newest applied upload's ``seq``: the history changes only through uploads,
        so this one indexed ``max`` tells a reader whether anything changed since.

        Every forecast request asks, so it runs as one constant statement on a pooled
        DB-API connection: SQLAlchemy's statement compilation and transaction events cost
        ~15x the query itself (SQLite: autocommit, a snapshot read; PostgreSQL: the pool
        rolls the read back on return)."""
        return self._scalar(_DATA_VERSION_SQL)

    def stock_snapshot(self, column: str = "on_hand") -> pd.DataFrame:
        """Each (product, store, category)'s most recent recorded ``column`` (``on_hand``
        or ``on_order``) and its date.

        Stock on order is read from the latest row that records any stock figure: a blank
        ``on_order`` there is 0. An order recorded weeks before the latest on-hand count
        has arrived since (or the count would say otherwise), so it must not keep
        inflating the inventory position.

        The category is part of the key so that a reader can apply any filter to the
        snapshot and still take, per (product, store), the latest matching row.
        """
        s = tables.sales.c
        recorded = (s.on_hand.is_not(None) | s.on_order.is_not(None) if column == "on_order"
                    else s[column].is_not(None))
        figure = (sa.func.coalesce(s.on_order, 0.0) if column == "on_order"
                  else s[column]).label(column)
        latest = (sa.select(s.product_id, s.store_id, s.category,
                            sa.func.max(s.date).label("date"))
                  .where(recorded)
                  .group_by(s.product_id, s.store_id, s.category).subquery())
        stmt = sa.select(s.product_id, s.store_id, s.category, s.date, figure).select_from(
            tables.sales.join(latest, sa.and_(s.product_id == latest.c.product_id,
                                              s.store_id == latest.c.store_id,
                                              s.date == latest.c.date)))
        with self.reader.connect() as conn:
            rows = conn.execute(stmt).all()
        frame = pd.DataFrame(rows, columns=["product_id", "store_id", "category", "date",
                                            column])
        return frame.astype({"product_id": object, "store_id": object, "category": object,
                             column: float})

    def items_version(self) -> int | None:
        """The newest item settings upload's ``seq`` (None: none yet): what a reader keys
        its copy of the settings by, one indexed ``max`` as ``data_version``."""
        return self._scalar(_ITEMS_VERSION_SQL)

    def _scalar(self, sql: str) -> Any:
        """One constant statement's single value, on a pooled DB-API connection (see
        :meth:`data_version` for why not through SQLAlchemy)."""
        connection = self.reader.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql)
                return cursor.fetchone()[0]
            finally:
                cursor.close()
        finally:
            connection.close()

    def item_settings(self) -> pd.DataFrame:
        """The settings in force: ``product_id``, ``store_id`` ("": every store) and
        ``ITEM_COLUMNS`` (NaN: not set), sorted by product and store."""
        c = tables.item_settings.c
        columns = ["product_id", "store_id", *ITEM_COLUMNS]
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(*[c[k] for k in columns])
                                .order_by(c.product_id, c.store_id)).all()
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype({"product_id": object, "store_id": object,
                             **{k: float for k in ITEM_COLUMNS}})

    def items_summary(self) -> dict[str, Any]:
        """The item settings upload in force (``upload`` None: none yet)."""
        u = tables.item_uploads.c
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(u.upload_id, u.filename, u.received_at, u.rows)
                               .order_by(u.seq.desc()).limit(1)).first()
        if row is None:
            return {"upload": None}
        received = tables.aware(row.received_at)  # naive from SQLite
        return {"upload": {"upload_id": row.upload_id, "filename": row.filename,
                           "received_at": received.isoformat() if received else None,
                           "rows": row.rows}}

    def items_in_force(self, frame: pd.DataFrame | None = None) -> dict[str, Any]:
        """``{upload, items}``: what ``GET /items`` and ``restock items --format json``
        answer (``frame``: ``item_settings()`` when the caller already read it)."""
        frame = self.item_settings() if frame is None else frame
        return {**self.items_summary(), "items": settings_records(frame)}

    def stats(self) -> dict[str, Any]:
        """Row and series counts and the newest upload: what a model was trained on."""
        s = tables.sales.c
        with self.reader.connect() as conn:
            rows, last_date = conn.execute(
                sa.select(sa.func.count(), sa.func.max(s.date))).one()
            series = conn.execute(sa.select(sa.func.count()).select_from(
                sa.select(s.product_id, s.store_id).distinct().subquery())).scalar_one()
            last_upload = conn.execute(sa.select(sa.func.max(tables.uploads.c.seq)).where(
                tables.uploads.c.status == "applied")).scalar()
        return {"rows": int(rows), "series": int(series),
                "last_date": last_date.isoformat() if last_date else None,
                "last_upload_seq": last_upload}

    def uploads(self) -> pd.DataFrame:
        with self.reader.connect() as conn:
            return pd.read_sql(sa.select(tables.uploads).order_by(tables.uploads.c.seq), conn)

    def export_rows(self, chunk_rows: int = 50_000) -> Iterator[pd.DataFrame]:
        """The whole history in canonical order, chunk by chunk, formula-safe text cells
        (``schema.neutralise_formulas``: ingesting the export gives back the same rows)."""
        s = tables.sales.c
        stmt = (sa.select(*[s[c] for c in CANONICAL])
                .order_by(s.product_id, s.store_id, s.date))
        with self.reader.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
            for part in result.partitions(chunk_rows):
                frame = pd.DataFrame(part, columns=CANONICAL)
                for column in ("product_id", "store_id", "category"):
                    frame[column] = neutralise_formulas(frame[column].astype(str))
                yield frame

    def export_csv(self) -> Iterator[str]:
        """CSV text chunks (header first) for streaming to a file or an HTTP response."""
        yield ",".join(CANONICAL) + "\n"
        for frame in self.export_rows():
            yield frame.to_csv(index=False, header=False, date_format="%Y-%m-%d",
                               float_format="%.12g", lineterminator="\n")


def _keep_as_sent(raw: bytes, folder: Path) -> tuple[str, Path]:
    """Write an upload's bytes as received to ``folder/<new uuid>.csv`` (whole or not at
    all: written aside, then renamed); returns the upload id and the path."""
    upload_id = str(uuid.uuid4())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{upload_id}.csv"
    tmp = path.with_suffix(".partial")
    tmp.write_bytes(raw)
    os.replace(tmp, path)
    return upload_id, path


def _item_rows(parsed: ParsedItems, seq: int) -> list[dict[str, Any]]:
    """An item upload's rows for ``tables.item_settings``: plain values, None for unset."""
    frame = parsed.frame.astype(object).where(parsed.frame.notna(), None)
    return [{**row, "upload_seq": seq} for row in frame.to_dict("records")]


def _row_tuples(frame: pd.DataFrame, seq: int,
                dates: Callable[[pd.DatetimeIndex], list[Any]]) -> list[tuple[Any, ...]]:
    """Rows as tuples in ``tables.sales`` column order: plain Python values, missing
    price/on_hand/on_order as None, each distinct day converted once by ``dates``."""
    codes, days = pd.factorize(frame["date"])
    converted = np.asarray(dates(days), dtype=object)[codes]

    def optional(column: str) -> list[Any]:
        values = frame[column].astype(float)
        return values.astype(object).where(values.notna(), None).tolist()

    return list(zip(
        frame["product_id"].astype(str).tolist(),
        frame["store_id"].fillna("").astype(str).tolist(),
        converted.tolist(),
        frame["category"].fillna("").astype(str).tolist(),
        frame["quantity"].astype(float).tolist(),
        optional("price"),
        optional("on_hand"),
        itertools.repeat(seq, len(frame)),
        optional("on_order"),
    ))


def _sqlite_rows(frame: pd.DataFrame, seq: int) -> list[tuple[Any, ...]]:
    """Dates as YYYY-MM-DD text, as SQLAlchemy's Date type stores them on SQLite."""
    return _row_tuples(frame, seq, lambda days: list(days.strftime("%Y-%m-%d")))


def _date_rows(frame: pd.DataFrame, seq: int) -> list[tuple[Any, ...]]:
    """Dates as ``datetime.date``, as the PostgreSQL drivers (and binary COPY) take them."""
    return _row_tuples(frame, seq, lambda days: [day.date() for day in days])


# binary COPY needs each column's wire type: tables.sales in column order
_COPY_TYPES = ("varchar", "varchar", "date", "varchar", "float8", "float8", "float8", "int4",
               "float8")


def _is_psycopg(conn: sa.Connection) -> bool:
    return conn.dialect.driver == "psycopg"


def _copy_into_staging(conn: sa.Connection, frame: pd.DataFrame, seq: int) -> None:
    """``COPY sales_staging FROM STDIN (FORMAT BINARY)`` on the raw psycopg 3 connection.

    The raw connection is the one under ``conn`` and is already inside its transaction (the
    upload row was inserted through it), so the COPY commits or rolls back with the rest.
    Binary format: no text escaping to get wrong (tabs, quotes, newlines or backslashes in
    ids), floats travel exactly, NULL is NULL and an empty string stays an empty string. Rows
    go over in chunks so that only one chunk's Python tuples exist at a time.
    """
    columns = [c.name for c in tables.sales.columns]
    assert len(columns) == len(_COPY_TYPES), "keep _COPY_TYPES in step with tables.sales"
    raw = conn.connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY sales_staging ({', '.join(columns)}) "
                         "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(_COPY_TYPES))
            for start in range(0, len(frame), _CHUNK_ROWS):
                for row in _date_rows(frame.iloc[start:start + _CHUNK_ROWS], seq):
                    copy.write_row(row)



