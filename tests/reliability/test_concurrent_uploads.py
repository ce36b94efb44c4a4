"""20 clients upload overlapping CSVs at once through ``POST /retrain`` (real HTTP, two
app instances with their own database pools, as two web workers) while 4 readers ask for
forecasts and series, on SQLite and on PostgreSQL.

Every upload is either applied whole or refused with a 422 listing its bad rows; the final
table equals the starting table with the applied uploads replayed in ``uploads.seq`` order
(last writer wins): no lost and no phantom rows. Readers see no error at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from werkzeug.serving import make_server

from reltools import demo_frame, to_csv
from restock.config import Settings
from restock.data.store import SalesStore
from restock.web import create_app
from test_security_audit import no_retrain

pytestmark = pytest.mark.timeout(300)

CLIENTS = 20
KEY = ["date", "product_id", "store_id"]


class Served:
    """A Flask app on a real threaded socket server (werkzeug), in this process."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings, task=no_retrain)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.app.extensions["restock"].close()


def client_upload(i: int) -> tuple[pd.DataFrame, bool]:
    """Client ``i``: 30 days that overlap every other client's (dates shift by 2 days per
    client), quantities marked with the client's number, a product of its own; every
    fifth client's file has one impossible date and must be refused whole."""
    base = demo_frame()
    start = base["date"].min() + pd.Timedelta(days=2 * i)
    frame = base[(base["date"] >= start) & (base["date"] < start + pd.Timedelta(days=30))]
    frame = frame.copy()
    frame["quantity"] = 1000.0 * (i + 1) + frame["quantity"]
    own = frame[frame["product_id"] == "P0001"].copy()
    own["product_id"] = f"C{i:02d}"
    frame = pd.concat([frame, own], ignore_index=True)
    return frame, i % 5 == 4


def as_bytes(frame: pd.DataFrame, bad: bool) -> bytes:
    raw = to_csv(frame)
    if bad:
        lines = raw.decode().splitlines()
        head = lines[1].split(",")
        head[0] = "2024-02-30"
        lines.insert(len(lines) // 2, ",".join(head))
        raw = ("\n".join(lines) + "\n").encode()
    return raw


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["date"] = pd.to_datetime(out["date"])
    out["store_id"] = out["store_id"].fillna("")
    out["category"] = out["category"].fillna("")
    for column in ("quantity", "price", "on_hand"):
        out[column] = out[column].astype(float)
    columns = ["date", "product_id", "store_id", "category", "quantity", "price", "on_hand"]
    return out[columns].sort_values(KEY).reset_index(drop=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def homes(request: pytest.FixtureRequest, trained_copy: tuple[Path, str]) -> Iterator[
        list[Served]]:
    home, _ = trained_copy
    overrides: dict[str, Any] = {"home": home, "ratelimit_default": "100000 per minute",
                                 "ratelimit_retrain": "100000 per minute"}
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        overrides["database_url"] = url
        store = SalesStore(url, home / "uploads")
        store.ingest_bytes(to_csv(demo_frame()), "base.csv")
        store.close()
    settings = Settings.from_env(overrides, environ={})
    served = [Served(settings), Served(settings)]
    yield served
    for one in served:
        one.close()


def test_twenty_concurrent_overlapping_uploads_last_writer_wins(homes: list[Served]) -> None:
    store = homes[0].app.extensions["restock"].store
    before = canonical(store.query())
    uploads = [client_upload(i) for i in range(CLIENTS)]
    stop = threading.Event()
    read_errors: list[str] = []
    reads = [0]

    def reader(n: int) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                url = homes[n % 2].url
                try:
                    if n % 2:
                        r = session.post(url + "/forecast", timeout=30,
                                         json={"product_id": "P0001", "days": 14})
                    else:
                        r = session.get(url + "/series", timeout=30)
                    if r.status_code != 200:
                        read_errors.append(f"{r.status_code} {r.text[:200]}")
                except requests.RequestException as error:
                    read_errors.append(repr(error))
                reads[0] += 1

    barrier = threading.Barrier(CLIENTS)

    def send(i: int) -> requests.Response:
        frame, bad = uploads[i]
        raw = as_bytes(frame, bad)
        barrier.wait()
        return requests.post(homes[i % 2].url + "/retrain", timeout=120,
                             files={"file": (f"client-{i}.csv", raw, "text/csv")})

    readers = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    for thread in readers:
        thread.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(send, range(CLIENTS)))
        elapsed = time.monotonic() - started
        time.sleep(0.3)  # a few reads after the last commit too
    finally:
        stop.set()
        for thread in readers:
            thread.join(30)

    applied: dict[str, int] = {}
    for i, answer in enumerate(answers):
        _, bad = uploads[i]
        if bad:
            assert answer.status_code == 422, answer.text
            error = answer.json()["error"]
            assert error["code"] == "invalid_data" and error["details"], error
            assert "2024-02-30" in answer.text
        else:
            assert answer.status_code == 202, answer.text
            body = answer.json()["upload"]
            assert body["rows_read"] == len(uploads[i][0])
            assert body["inserted"] + body["updated"] == len(uploads[i][0])
            applied[body["upload_id"]] = i
    assert read_errors == [] and reads[0] > 0, read_errors[:5]

    log = store.uploads()
    mine = log[log["upload_id"].isin(applied)]
    assert len(mine) == len(applied) and set(mine["status"]) == {"applied"}
    assert len(log) == len(mine) + 1  # the base data's upload, then exactly these
    expected = before.set_index(KEY)
    for upload_id in mine.sort_values("seq")["upload_id"]:
        rows = canonical(uploads[applied[upload_id]][0]).set_index(KEY)
        expected = pd.concat([expected[~expected.index.isin(rows.index)], rows])
    expected = expected.reset_index().sort_values(KEY).reset_index(drop=True)
    after = canonical(store.query())
    pd.testing.assert_frame_equal(after, expected, check_dtype=False)
    # refused files left nothing: no row carries a refused client's mark
    for i, (frame, bad) in enumerate(uploads):
        if bad:
            assert not (after["product_id"] == f"C{i:02d}").any()
    print(f"\n{store.dialect}: {CLIENTS} uploads in {elapsed:.2f}s, {reads[0]} reads, "
          f"{len(applied)} applied, {CLIENTS - len(applied)} refused")
