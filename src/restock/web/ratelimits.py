"""A ``limits`` storage in one SQLite file, so every gunicorn worker counts against one limit.

flask-limiter's ``memory://`` keeps a counter per process: with ``--workers 2`` a limit of
3 per minute let 4 to 6 requests through. Redis would share the counters but is one more
service to run; the embedded set-up already has ``$RESTOCK_HOME`` on local disk, so the
default storage is ``sqlite:///$RESTOCK_HOME/ratelimits.db`` (any ``limits`` URI, e.g.
``redis://``, still replaces it through ``RESTOCK_RATELIMIT_STORAGE_URI``).

Only the fixed-window strategy restock uses is supported. Every counter update is one
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement: atomic under SQLite's write
lock, so concurrent workers and threads never lose an increment. WAL lets readers run
beside the writer, ``synchronous=NORMAL`` skips the fsync per commit (a counter lost in a
power cut is harmless), and a busy timeout makes writers queue instead of failing.
Connections are per thread (and per process, in case of a fork).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from limits.storage import Storage

from restock.sqlite_locks import retry_while_locked

SCHEME = "sqlite"
#: expired counters are deleted on every this many-th increment of a process
SWEEP_EVERY = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID
"""
_INCR = """
INSERT INTO counters (key, count, expires_at) VALUES (:key, :amount, :expires_at)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN expires_at <= :now THEN :amount ELSE count + :amount END,
    expires_at = CASE WHEN expires_at <= :now THEN :expires_at ELSE expires_at END
RETURNING count
"""


def storage_uri(path: Path) -> str:
    """The URI of the storage in ``path`` (absolute, so every worker opens the same file)."""
    return f"{SCHEME}://{path.resolve()}"


class SQLiteStorage(Storage):
    """Fixed-window counters in a SQLite file; ``sqlite:///absolute/path.db``."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str, wrap_exceptions: bool = False, busy_timeout: float = 5.0,
                 **options: float | str | bool) -> None:
        self.path = uri.removeprefix(f"{SCHEME}://")  # not urlsplit: a path may hold '#'
        if not self.path.startswith("/"):
            raise ValueError(f"{uri!r}: give a file, e.g. sqlite:///var/lib/restock/limits.db")
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._increments = 0
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._create()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def _create(self) -> None:
        """WAL mode and the table, tried again while SQLite refuses the new file "database
        is locked" (web workers booting at once: one died of it at boot in CI and took the
        server down); both steps are idempotent."""

        def create() -> None:
            conn = self._connect()
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(_SCHEMA)
            finally:
                conn.close()

        retry_while_locked(create)

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit: each statement is its own transaction)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn, local.pid = self._connect(), os.getpid()
        return local.conn

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        self._increments += 1
        if self._increments % SWEEP_EVERY == 0:
            self._conn.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
        # fetchall: the statement (and its write lock) ends only when stepped to the end
        rows = self._conn.execute(_INCR, {"key": key, "amount": amount, "now": now,
                                          "expires_at": now + expiry}).fetchall()
        return int(rows[0][0])

    def get(self, key: str) -> int:
        rows = self._conn.execute("SELECT count FROM counters WHERE key = ? AND expires_at > ?",
                                  (key, time.time())).fetchall()
        return int(rows[0][0]) if rows else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        rows = self._conn.execute(
            "SELECT expires_at FROM counters WHERE key = ? AND expires_at > ?",
            (key, now)).fetchall()
        return float(rows[0][0]) if rows else now

    def check(self) -> bool:
        try:
            self._conn.execute("SELECT 1").fetchall()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        return self._conn.execute("DELETE FROM counters").rowcount

    def clear(self, key: str) -> None:
        self._conn.execute("DELETE FROM counters WHERE key = ?", (key,))
