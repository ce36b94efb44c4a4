"""SalesStore on SQLite and on the real PostgreSQL: upserts, atomicity, queries, export."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pandas as pd
import pytest

from restock.data.store import SalesStore, sanitise_filename
from restock.errors import DataValidationError, RestockError, UnsupportedFileError

FIRST = b"date,product_id,store_id,category,quantity,on_hand\n" \
        b"2024-01-01,A,S1,food,3,10\n2024-01-02,A,S1,food,4,6\n2024-01-01,B,,toys,0,\n"


def snapshot(store: SalesStore) -> tuple[list[list[object]], int, list[str]]:
    rows = store.query().astype(str).values.tolist()
    return rows, len(store.uploads()), sorted(p.name for p in store.uploads_dir.iterdir())


def test_first_upload_counts_and_keeps_the_file(store: SalesStore) -> None:
    result = store.ingest_bytes(FIRST, "../../etc/sales.csv")
    assert (result.rows_read, result.inserted, result.updated) == (3, 3, 0)
    assert (result.total_rows, result.series) == (3, 2)
    kept = store.uploads_dir / f"{result.upload_id}.csv"
    assert kept.read_bytes() == FIRST
    upload = store.uploads().iloc[0]
    assert upload["filename"] == "sales.csv" and upload["status"] == "applied"
    assert len(upload["sha256"]) == 64


def test_overlapping_upload_later_wins(store: SalesStore) -> None:
    store.ingest_bytes(FIRST, "first.csv")
    second = b"date,product_id,store_id,quantity\n2024-01-02,A,S1,9\n2024-01-03,A,S1,5\n"
    result = store.ingest_bytes(second, "second.csv")
    assert (result.inserted, result.updated, result.total_rows) == (1, 1, 4)
    a = store.query(product_id="A").set_index("date")["quantity"]
    assert a.to_dict() == {pd.Timestamp("2024-01-01"): 3.0, pd.Timestamp("2024-01-02"): 9.0,
                           pd.Timestamp("2024-01-03"): 5.0}
    assert store.uploads()["seq"].tolist() == [1, 2]


BAD_FILES = {
    "empty": b"",
    "header_only": b"date,product_id,quantity\n",
    "missing_quantity": b"date,product_id\n2024-01-01,A\n",
    "non_utf8": b"date,product_id,quantity\n2024-01-01,\xff\xfe,1\n",
    "impossible_date": b"date,product_id,quantity\n2024-02-30,A,1\n",
    "negative": b"date,product_id,quantity\n2024-01-01,A,1\n2024-01-02,A,-1\n",
    "duplicate_key": b"date,product_id,quantity\n2024-01-01,A,1\n2024-01-01,A,1\n",
    "huge_field": b"date,product_id,quantity\n2024-01-01," + b"x" * 1_048_576 + b",1\n",
    "gzip": gzip.compress(b"date,product_id,quantity\n2024-01-01,A,1\n"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_upload_changes_nothing(store: SalesStore, name: str) -> None:
    store.ingest_bytes(FIRST, "first.csv")
    before = snapshot(store)
    with pytest.raises((DataValidationError, UnsupportedFileError)):
        store.ingest_bytes(BAD_FILES[name], f"{name}.csv")
    assert snapshot(store) == before


def test_failure_inside_the_transaction_rolls_back(store: SalesStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store.ingest_bytes(FIRST, "first.csv")
    before = snapshot(store)

    def explode(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_merge", explode)
    with pytest.raises(RuntimeError):
        store.ingest_bytes(b"date,product_id,quantity\n2024-02-01,C,1\n", "c.csv")
    assert snapshot(store) == before


def test_skip_mode_stores_good_rows(store: SalesStore) -> None:
    result = store.ingest_bytes(b"date,product_id,quantity\n2024-01-01,A,1\n2024-01-02,A,x\n",
                                on_error="skip")
    assert (result.inserted, result.skipped) == (1, 1)
    assert result.skipped_problems[0]["row"] == 3
    assert store.uploads().iloc[0]["skipped"] == 1


def test_query_filters_and_series_stats(store: SalesStore) -> None:
    store.ingest_bytes(FIRST)
    assert store.query(category="toys")["product_id"].tolist() == ["B"]
    assert len(store.query(product_id=["A", "B"])) == 3
    assert store.query(store_id="S1", start=pd.Timestamp("2024-01-02").date())[
        "quantity"].tolist() == [4.0]
    series = store.series().set_index("product_id")
    assert series.loc["A", "rows"] == 2 and series.loc["A", "first_date"] == "2024-01-01"
    assert series.loc["A", "mean"] == 3.5 and series.loc["B", "zero_share"] == 1.0
    snapshot = store.stock_snapshot()
    assert snapshot[["product_id", "store_id", "on_hand"]].values.tolist() == [["A", "S1", 6.0]]
    assert str(snapshot["date"].iloc[0]) == "2024-01-02"
    assert store.data_version() == 1
    assert store.stats()["rows"] == 3 and store.stats()["last_upload_seq"] == 1


def test_export_is_sorted_and_formula_safe(store: SalesStore) -> None:
    store.ingest_bytes(b'date,product_id,quantity,category\n2024-01-02,B,2,"=1+2"\n'
                       b'2024-01-01,B,1,@SUM(A1)\n2024-01-01,=HYPERLINK("x"),1.5,-x\n')
    text = "".join(store.export_csv())
    lines = text.splitlines()
    assert lines[0] == "date,product_id,store_id,category,quantity,price,on_hand,on_order"
    # sorted by product_id: "=" sorts before "B"
    assert lines[1] == "2024-01-01,\"'=HYPERLINK(\"\"x\"\")\",,'-x,1.5,,,"
    assert lines[2] == "2024-01-01,B,,'@SUM(A1),1,,,"
    assert lines[3] == "2024-01-02,B,,'=1+2,2,,,"


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "passwd"), ("a\x00b.csv", "ab.csv"), ("C:\\x\\y.csv", "y.csv"),
    ("", "upload.csv"), ("..", "upload.csv"), ("my sales (1).csv", "my_sales_1.csv"),
])
def test_sanitise_filename(name: str, expected: str) -> None:
    assert sanitise_filename(name) == expected


def test_error_is_a_restock_error() -> None:
    assert issubclass(DataValidationError, RestockError)


def test_store_creates_its_folders(tmp_path: Path) -> None:
    store = SalesStore(f"sqlite:///{tmp_path / 'a' / 'b.db'}", tmp_path / "up")
    assert (tmp_path / "a" / "b.db").exists() and (tmp_path / "up").is_dir()
    store.close()


# -- PostgreSQL COPY staging and exact counts (issue 7) ------------------------------------

TRICKY = ('date,product_id,store_id,category,quantity,price,on_hand\n'
          '2024-01-01,"a\tb","s ""1""","x\ny",0.1,,\n'
          '2024-01-01,"c\\\\d",,"\u00e9\u20ac",3.0000000000000004,1e-300,5\n'
          '2024-01-01,\\N,NULL,,2,,0\n').encode()


def test_text_and_numbers_round_trip_exactly(store: SalesStore) -> None:
    """Tabs, newlines, quotes, backslashes, COPY's NULL markers and non-ASCII text in ids,
    empty strings against NULLs, and floats to the last bit, as staged by COPY on
    PostgreSQL and by executemany on SQLite."""
    result = store.ingest_bytes(TRICKY, "tricky.csv")
    assert (result.inserted, result.updated, result.series) == (3, 0, 3)
    rows = {r["product_id"]: r for r in store.query().to_dict("records")}
    assert set(rows) == {"a\tb", "c\\\\d", "\\N"}
    assert (rows["a\tb"]["store_id"], rows["a\tb"]["category"]) == ('s "1"', "x\ny")
    assert rows["a\tb"]["quantity"] == 0.1
    assert pd.isna(rows["a\tb"]["price"]) and pd.isna(rows["a\tb"]["on_hand"])
    assert (rows["c\\\\d"]["store_id"], rows["c\\\\d"]["category"]) == ("", "\u00e9\u20ac")
    assert rows["c\\\\d"]["quantity"] == 3.0000000000000004
    assert (rows["c\\\\d"]["price"], rows["c\\\\d"]["on_hand"]) == (1e-300, 5.0)
    assert (rows["\\N"]["store_id"], rows["\\N"]["category"]) == ("NULL", "")
    assert rows["\\N"]["on_hand"] == 0.0
    exported = "".join(store.export_csv())
    assert exported.count("\n") == 5  # header, 3 rows, one newline inside a quoted category


@pytest.mark.postgres
def test_postgres_stages_with_copy(postgres_url: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import restock.data.store as store_module

    calls: list[int] = []
    real = store_module._copy_into_staging

    def spy(conn, frame, seq):  # noqa: ANN001, ANN202
        calls.append(len(frame))
        return real(conn, frame, seq)

    monkeypatch.setattr(store_module, "_copy_into_staging", spy)
    store = SalesStore(postgres_url, tmp_path / "uploads")
    try:
        result = store.ingest_bytes(FIRST, "first.csv")
        assert calls == [3] and (result.inserted, result.total_rows) == (3, 3)
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_copy_spans_chunks_and_updates(postgres_url: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Several COPY chunks in one upload, then an overlapping upload: exact counts."""
    import restock.data.store as store_module

    monkeypatch.setattr(store_module, "_CHUNK_ROWS", 7)
    days = pd.date_range("2024-01-01", periods=30).strftime("%Y-%m-%d")
    first = "date,product_id,quantity,price\n" + "".join(
        f"{d},P{p},{i},{'' if i % 3 else i / 10}\n"
        for p in range(2) for i, d in enumerate(days))
    second = "date,product_id,quantity\n" + "".join(
        f"{d},P1,100\n" for d in pd.date_range("2024-01-21", periods=20).strftime("%Y-%m-%d"))
    store = SalesStore(postgres_url, tmp_path / "uploads")
    try:
        assert store.ingest_bytes(first.encode()).inserted == 60
        result = store.ingest_bytes(second.encode())
        assert (result.inserted, result.updated, result.total_rows) == (10, 10, 70)
        p0 = store.query(product_id="P0")
        assert p0["quantity"].tolist() == list(range(30))
        assert p0["price"].isna().tolist() == [i % 3 != 0 for i in range(30)]
        assert store.query(product_id="P1")["quantity"].tolist() == \
            list(map(float, range(20))) + [100.0] * 20
    finally:
        store.close()


def test_failure_during_staging_rolls_back_and_store_recovers(
        store: SalesStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure in the middle of staging (mid-COPY on PostgreSQL) leaves nothing behind,
    and the pooled connection is usable for the next upload."""
    import restock.data.store as store_module

    store.ingest_bytes(FIRST, "first.csv")
    before = snapshot(store)
    real_copy_rows, real_sqlite_rows = store_module._date_rows, store_module._sqlite_rows

    def second_chunk_fails(real):  # noqa: ANN001, ANN202
        calls: list[int] = []

        def rows(frame, seq):  # noqa: ANN001, ANN202
            calls.append(len(frame))
            if len(calls) > 1:
                raise RuntimeError("connection lost")
            return real(frame, seq)
        return rows

    monkeypatch.setattr(store_module, "_CHUNK_ROWS", 1)
    monkeypatch.setattr(store_module, "_date_rows", second_chunk_fails(real_copy_rows))
    monkeypatch.setattr(store_module, "_sqlite_rows", second_chunk_fails(real_sqlite_rows))
    with pytest.raises(RuntimeError, match="connection lost"):
        store.ingest_bytes(b"date,product_id,quantity\n2024-02-01,C,1\n2024-02-02,C,2\n")
    assert snapshot(store) == before
    monkeypatch.undo()
    result = store.ingest_bytes(b"date,product_id,store_id,quantity\n2024-02-01,C,,1\n"
                                b"2024-01-01,A,S1,7\n")
    assert (result.inserted, result.updated, result.total_rows) == (1, 1, 4)


def test_concurrent_overlapping_uploads_count_exactly(store: SalesStore) -> None:
    """Uploads of the same keys at once: each key is inserted by exactly one of them and
    updated by the others, and the last upload by seq is the one whose values are kept."""
    from concurrent.futures import ThreadPoolExecutor

    days = pd.date_range("2024-01-01", periods=200).strftime("%Y-%m-%d")
    files = [("date,product_id,quantity\n" + "".join(f"{d},A,{n}\n" for d in days)).encode()
             for n in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(store.ingest_bytes, files))
    assert sorted(r.inserted for r in results) == [0, 0, 0, 200]
    assert sorted(r.updated for r in results) == [0, 200, 200, 200]
    uploads = store.uploads().sort_values("seq")
    assert uploads["inserted"].tolist() == [200, 0, 0, 0]
    value_of = {r.upload_id: float(n) for n, r in enumerate(results)}
    assert set(store.query()["quantity"]) == {value_of[uploads["upload_id"].iloc[-1]]}


def test_reads_do_not_wait_for_an_open_upload(store: SalesStore) -> None:
    """A forecast-time read must not queue behind a long upload's write transaction."""
    import threading


    from restock.data import tables

    store.ingest_bytes(FIRST)
    with store.engine.begin() as writer:
        writer.execute(tables.uploads.update().values(status="applied"))  # holds the lock
        answer: list[int] = []
        reader = threading.Thread(target=lambda: answer.append(store.stats()["rows"]))
        reader.start()
        reader.join(timeout=10)
        assert answer == [3], "the read waited for the writer"


# -- hostile input (issue 11) ----------------------------------------------------------------

def test_export_then_ingest_reproduces_the_store_exactly(store: SalesStore,
                                                         tmp_path: Path) -> None:
    """Ids a spreadsheet would run as formulas are exported with a leading ' and come back
    without it; ids that really start with ' (even before a formula character) survive."""
    # (text in the upload, id stored): one ' before a formula character is the
    # spreadsheets' text marker and comes off; a ' before anything else is kept
    sent = [("=x", "=x"), ("''=x", "'=x"), ("'''=x", "''=x"), ("+1", "+1"), ("'-2", "-2"),
            ("@SUM(A1)", "@SUM(A1)"), ("'abc", "'abc"), ("'", "'"), ("''", "''"),
            ("plain", "plain"), ("a=b", "a=b"), ("''+", "'+"), ("=", "="), ("''-'", "'-'")]
    lines = "".join(f'2024-01-0{1 + i % 3},"{text}","{"-s" if i % 2 else "S"}",'
                    f'{"@c" if i % 3 else "c"},{i},1.5,\n' for i, (text, _) in enumerate(sent))
    store.ingest_bytes(("date,product_id,store_id,category,quantity,price,on_hand\n"
                        + lines).encode())
    before = store.query()
    assert sorted(before["product_id"]) == sorted(stored for _, stored in sent)
    assert set(before["store_id"]) == {"S", "-s"} and set(before["category"]) == {"c", "@c"}
    exported = "".join(store.export_csv())
    cells = pd.read_csv(io.StringIO(exported), dtype=str, keep_default_na=False)
    for column in ("product_id", "store_id", "category"):  # still formula-safe
        assert not cells[column].str.match(r"[=+\-@\t\r]").any(), column
    assert {"'=x", "''=x", "'''=x", "'abc", "'"} <= set(cells["product_id"])
    again = SalesStore(f"sqlite:///{tmp_path / 'again.db'}", tmp_path / "again-uploads")
    try:
        again.ingest_bytes(exported.encode(), "export.csv")
        pd.testing.assert_frame_equal(again.query(), before)
        assert "".join(again.export_csv()) == exported
    finally:
        again.close()


def test_limits_from_settings_reach_the_parser(tmp_path: Path) -> None:
    from datetime import date, datetime, timedelta, timezone

    from restock.config import Settings

    settings = Settings.from_env({"home": tmp_path / "home"}, environ={
        "RESTOCK_MIN_DATE": "2020-01-01", "RESTOCK_MAX_FUTURE_DAYS": "0",
        "RESTOCK_MAX_QUANTITY": "100"})
    store = SalesStore.from_settings(settings)
    tomorrow = datetime.now(timezone.utc).date() + timedelta(days=1)
    try:
        with pytest.raises(DataValidationError) as info:
            store.ingest_bytes(f"date,product_id,quantity\n2019-12-31,A,1\n{tomorrow},A,1\n"
                               f"2024-01-01,A,101\n".encode())
        assert [(p.row, p.column) for p in info.value.problems] == [
            (2, "date"), (3, "date"), (4, "quantity")]
        assert "earliest allowed date 2020-01-01" in info.value.problems[0].problem
        assert f"latest allowed date {tomorrow - timedelta(days=1)}" in \
            info.value.problems[1].problem
        assert store.stats()["rows"] == 0
    finally:
        store.close()
    assert SalesStore(f"sqlite:///{tmp_path / 'd.db'}", tmp_path / "u").limits.min_date == \
        date(1900, 1, 1)


def test_an_upload_of_another_frequency_than_the_history_is_refused(store: SalesStore) -> None:
    daily = "".join(f"{d:%Y-%m-%d},A,1\n" for d in pd.date_range("2024-01-01", periods=30))
    store.ingest_bytes(("date,product_id,quantity\n" + daily).encode())
    before = snapshot(store)
    weekly = "".join(f"{d:%Y-%m-%d},B,7\n"
                     for d in pd.date_range("2024-01-05", periods=4, freq="W-FRI"))
    with pytest.raises(DataValidationError) as info:
        store.ingest_bytes(("date,product_id,quantity\n" + weekly).encode())
    assert info.value.message.startswith(
        "the file is weekly (Fridays) but the stored history is daily")
    assert snapshot(store) == before
    more_daily = "".join(f"{d:%Y-%m-%d},C,2\n" for d in pd.date_range("2024-02-01", periods=9))
    assert store.ingest_bytes(("date,product_id,quantity\n" + more_daily).encode()).inserted == 9
    one_day = store.ingest_bytes(b"date,product_id,quantity\n2024-03-01,B,7\n")
    assert one_day.inserted == 1  # one date shows no frequency: nothing to compare


def test_orphaned_upload_files_are_set_aside_not_deleted(tmp_path: Path) -> None:
    """A kill -9 between writing an upload's file and committing its row leaves a file no
    row owns. Opening the store moves such files to uploads/orphans/ once they are older
    than the grace period; a young one may be an upload still committing elsewhere."""
    import os
    import time
    import uuid

    url, uploads = f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "uploads"
    store = SalesStore(url, uploads)
    kept = store.ingest_bytes(FIRST, "first.csv")
    store.close()
    old, young, partial = (uploads / f"{uuid.uuid4()}{suffix}"
                           for suffix in (".csv", ".csv", ".partial"))
    for path in (old, young, partial):
        path.write_bytes(b"date,product_id,quantity\n2024-01-01,Z,1\n")
    hour_ago = time.time() - 3700
    for path in (old, partial, uploads / f"{kept.upload_id}.csv"):
        os.utime(path, (hour_ago, hour_ago))
    (uploads / "notes.txt").write_text("not an upload")

    store = SalesStore(url, uploads)
    try:
        assert sorted(p.name for p in uploads.iterdir()) == sorted(
            [f"{kept.upload_id}.csv", young.name, "notes.txt", "orphans"])
        assert sorted(p.name for p in (uploads / "orphans").iterdir()) == sorted(
            [old.name, partial.name])
        assert (uploads / "orphans" / old.name).read_bytes().endswith(b"Z,1\n")
        assert store.sweep_orphans(grace_seconds=0) == [uploads / "orphans" / young.name]
        assert store.stats()["rows"] == 3
    finally:
        store.close()


@pytest.mark.parametrize("name, value", [("RESTOCK_MIN_DATE", "01/01/1900"),
                                         ("RESTOCK_MAX_FUTURE_DAYS", "-1"),
                                         ("RESTOCK_MAX_QUANTITY", "0"),
                                         ("RESTOCK_MAX_QUANTITY", "inf")])
def test_bad_upload_limit_settings_are_refused(name: str, value: str) -> None:
    from restock.config import Settings
    from restock.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=name):
        Settings.from_env(environ={name: value})


def test_stock_on_order_is_read_from_the_latest_stock_record(store: SalesStore) -> None:
    """An order recorded before the latest on-hand count has arrived since: the position
    takes on_order from the latest row with any stock figure, a blank there being 0."""
    store.ingest_bytes(b"date,product_id,store_id,quantity,on_hand,on_order\n"
                       b"2024-01-01,A,S1,1,37,500\n"  # 500 on order then
                       b"2024-01-05,A,S1,2,3,\n"  # counted later, nothing on order
                       b"2024-01-01,B,S1,1,10,\n"
                       b"2024-01-04,B,S1,1,,40\n")  # an order after the last count counts
    on_order = store.stock_snapshot("on_order").set_index("product_id")
    assert on_order.loc["A", "on_order"] == 0.0
    assert str(on_order.loc["A", "date"]) == "2024-01-05"
    assert on_order.loc["B", "on_order"] == 40.0
    on_hand = store.stock_snapshot().set_index("product_id")["on_hand"].to_dict()
    assert on_hand == {"A": 3.0, "B": 10.0}
