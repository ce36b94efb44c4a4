"""Alembic migrations for restock's schema, run programmatically (no alembic.ini).

``tables.py`` stays the one Python definition of the tables that queries use; the
revisions in ``versions/`` are the history of how a database gets there, and a test checks
that ``upgrade head`` yields exactly ``tables.metadata`` on SQLite and PostgreSQL.

``upgrade(engine)`` is what ``SalesStore`` runs on start and ``restock db upgrade`` runs on
demand. It is safe when several processes start at once: the upgrade runs in one
transaction holding a lock (PostgreSQL: a transaction-level advisory lock per schema;
SQLite: the store engine's ``BEGIN IMMEDIATE``, the database's write lock), and the
current revision is read again under the lock, so the first process migrates and the
others find the database at head. A database made by restock before migrations existed
(tables created by ``metadata.create_all``, no ``alembic_version``) is adopted: revision
0001 creates only the tables that are missing and the database is stamped.

New revision, from the repository root (``--autogenerate`` diffs against a scratch
database at ``$URL``)::

    python -c "from restock.migrations import config; from alembic import command; \\
        command.revision(config(url='$URL'), message='...', autogenerate=True)"
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from restock.sqlite_locks import retry_while_locked

HERE = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version"
log = logging.getLogger(__name__)


def config(connection: sa.Connection | None = None, url: str | None = None) -> Config:
    """An alembic ``Config`` for the migrations in this package: run on ``connection`` (in
    its transaction), or on a fresh engine for ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


@functools.lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    """The newest revision in ``versions/`` (read once per process)."""
    heads = _scripts().get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"restock migrations must have one head, found {heads}")
    return heads[0]


def current(connection: sa.Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def _lock(connection: sa.Connection) -> None:
    """Serialise upgrades of one database; held until the transaction ends."""
    if connection.dialect.name == "postgresql":
        from restock.data.store import ADVISORY_LOCK_SPACE

        connection.exec_driver_sql(
            f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_SPACE}, "
            "hashtext('migrations:' || current_schema()))")
    # SQLite: the store's engine (store.make_engine) opens every transaction with BEGIN
    # IMMEDIATE, which takes the database's write lock. Other dialects: no lock (restock
    # runs on SQLite and PostgreSQL).


def upgrade(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the database to ``revision`` (default: head); (revision before, after).

    Cheap when there is nothing to do (one read of the version table, no lock). When
    several processes open a new SQLite file at once, SQLite can refuse one of them with
    "database is locked" without waiting out the busy timeout (turning the file to WAL
    needs it to itself); the upgrade reads the version again under its lock, so it is
    simply tried again."""
    if engine.dialect.name != "sqlite":
        return _upgrade(engine, revision)
    return retry_while_locked(lambda: _upgrade(engine, revision))


def _upgrade(engine: sa.Engine, revision: str) -> tuple[str | None, str | None]:
    target = head() if revision == "head" else revision
    # read_only: on the store's SQLite engine a deferred transaction (no write lock)
    with engine.execution_options(read_only=True).connect() as conn:
        before = current(conn)
    if before == target:
        return before, before
    with engine.begin() as conn:
        _lock(conn)
        before = current(conn)  # another process may have migrated while we waited
        if before == target:
            return before, before
        if before is not None and before not in _known_revisions():
            raise RuntimeError(
                f"the database schema is at revision {before!r}, which this restock does not "
                f"know (its newest is {head()!r}): it was upgraded by a newer restock")
        if before is None:
            existing = sorted(set(sa.inspect(conn).get_table_names()) & _known_tables())
            if existing:
                log.warning("adopting a database created before migrations "
                            "(tables %s present, no %s)", ", ".join(existing), VERSION_TABLE)
        command.upgrade(config(conn), revision)
        after = current(conn)
    return before, after


def _known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def _known_tables() -> set[str]:
    from restock.data import tables

    return set(tables.metadata.tables)


def _sqlite_default(text: str | None) -> str | None:
    if text is None:
        return None
    text = re.sub(r"^\((.*)\)$", r"\1", text.strip())
    return re.sub(r"^'(.*)'$", r"\1", text)


def compare_server_default(context: MigrationContext, inspected_column: Any,
                           metadata_column: Any, inspected_default: str | None,
                           metadata_default: Any, rendered_metadata_default: str | None,
                           ) -> bool | None:
    """alembic's comparison, except that SQLite's reflected ``('')`` equals ``''``
    (alembic's SQLite normaliser only unquotes non-empty strings and reports a change)."""
    if context.dialect.name != "sqlite":
        return None
    return _sqlite_default(inspected_default) != _sqlite_default(rendered_metadata_default)


def schema_diffs(engine: sa.Engine) -> list[Any]:
    """Differences between the database and ``tables.metadata`` (empty: they match), with
    types and server defaults compared."""
    from restock.data import tables

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "compare_server_default": compare_server_default})
        return list(compare_metadata(context, tables.metadata))
