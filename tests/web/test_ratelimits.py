"""Rate limits hold for the server as a whole (issue 11): the default storage is a SQLite
file in $RESTOCK_HOME shared by every gunicorn worker, not a counter per process."""

from __future__ import annotations

import multiprocessing
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from flask import Flask
from limits.storage import storage_from_string

from restock.web.ratelimits import SQLiteStorage, storage_uri
from webtools import Server

pytestmark = pytest.mark.timeout(300)


def _hammer(uri: str, key: str, times: int) -> None:
    storage = storage_from_string(uri)
    for _ in range(times):
        storage.incr(key, 60)


def test_counts_are_exact_across_processes_and_threads(tmp_path: Path) -> None:
    uri = storage_uri(tmp_path / "limits.db")
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_hammer, args=(uri, "k", 200)) for _ in range(3)]
    for process in processes:
        process.start()
    storage = storage_from_string(uri)
    assert isinstance(storage, SQLiteStorage)
    threads = [threading.Thread(target=_hammer, args=(uri, "k", 200)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for worker in [*processes, *threads]:
        worker.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    assert storage.get("k") == 1200


def test_windows_expire_and_restart(tmp_path: Path) -> None:
    storage = storage_from_string(storage_uri(tmp_path / "limits.db"))
    assert [storage.incr("w", 1) for _ in range(3)] == [1, 2, 3]
    assert 0 < storage.get_expiry("w") - time.time() <= 1
    time.sleep(1.1)
    assert storage.get("w") == 0
    assert storage.incr("w", 1) == 1  # a new window, not 4
    storage.clear("w")
    assert storage.get("w") == 0 and storage.check()
    with pytest.raises(ValueError):
        SQLiteStorage("sqlite://relative.db")


def test_the_app_counts_in_the_home_by_default(make_app: Callable[..., Flask]) -> None:
    first = make_app(ratelimit_default="3 per minute")
    second = make_app(ratelimit_default="3 per minute")  # another worker of the same server
    codes = [app.test_client().get("/series").status_code for app in (first, second) * 3]
    assert codes == [200, 200, 200, 429, 429, 429]
    assert (first.extensions["restock"].settings.home / "ratelimits.db").is_file()
    separate = make_app(ratelimit_default="3 per minute", ratelimit_storage_uri="memory://")
    assert separate.test_client().get("/series").status_code == 200


def test_a_retrain_limit_holds_across_two_gunicorn_workers(tmp_path: Path) -> None:
    server = Server(tmp_path / "home", workers=2, access_log=True,
                    RESTOCK_RATELIMIT_RETRAIN="3 per hour",  # a fixed window rarely crossed
                    RESTOCK_RATELIMIT_DEFAULT="100000 per minute")
    try:
        def upload(_: int) -> int:
            # an invalid CSV: counted by the limit, answered 422, and no retrain is queued
            files = {"file": ("bad.csv", b"not,a,sales\nfile,,\n", "text/csv")}
            return requests.post(server.url + "/retrain", files=files, timeout=60,
                                 headers={"Connection": "close"}).status_code

        # which worker accepts a connection is the kernel's choice: send batches until
        # both have answered (each batch is counted by the same limit)
        codes: list[int] = []
        served_by: set[str] = set()
        with ThreadPoolExecutor(12) as pool:
            for _ in range(10):
                codes += pool.map(upload, range(24))
                served_by = set(re.findall(
                    r"\[(\d+)\] \[[^\]]+\] restock\.web\.access: POST /retrain",
                    server.log.read_text()))
                if len(served_by) == 2:
                    break
    finally:
        server.stop()
    assert sorted(codes) == [422] * 3 + [429] * (len(codes) - 3), codes
    assert len(served_by) == 2, "both workers must have answered uploads"


def test_a_new_file_locked_by_another_booting_worker_is_set_up_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers booting at once: SQLite may refuse the switch to WAL with "database is
    locked" at once; the set-up is tried again, and any other error is raised."""
    import sqlite3

    from restock.web import ratelimits

    real = ratelimits.SQLiteStorage._connect
    refusals = {"left": 2}

    class Locked:
        def __init__(self, conn: sqlite3.Connection, error: str) -> None:
            self.conn, self.error = conn, error

        def execute(self, sql: str, *args: object) -> object:
            if sql.startswith("PRAGMA journal_mode") and refusals["left"] > 0:
                refusals["left"] -= 1
                raise sqlite3.OperationalError(self.error)
            return self.conn.execute(sql, *args)

        def close(self) -> None:
            self.conn.close()

    monkeypatch.setattr(ratelimits.SQLiteStorage, "_connect",
                        lambda self: Locked(real(self), "database is locked"))
    storage = ratelimits.SQLiteStorage(f"sqlite://{tmp_path / 'limits.db'}")
    assert refusals["left"] == 0 and storage.check()
    refusals["left"] = 1
    monkeypatch.setattr(ratelimits.SQLiteStorage, "_connect",
                        lambda self: Locked(real(self), "disk I/O error"))
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        ratelimits.SQLiteStorage(f"sqlite://{tmp_path / 'other.db'}")
