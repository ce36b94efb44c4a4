"""SalesStore on SQLite and on the real PostgreSQL: upserts, atomicity, queries, export."""

from __future__ import annotations

import gzip
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
    assert store.latest_on_hand() == 6.0
    assert store.latest_on_hand(product_id="B") is None
    assert store.stats()["rows"] == 3 and store.stats()["last_upload_seq"] == 1


def test_export_is_sorted_and_formula_safe(store: SalesStore) -> None:
    store.ingest_bytes(b'date,product_id,quantity,category\n2024-01-02,B,2,"=1+2"\n'
                       b'2024-01-01,B,1,@SUM(A1)\n2024-01-01,=HYPERLINK("x"),1.5,-x\n')
    text = "".join(store.export_csv())
    lines = text.splitlines()
    assert lines[0] == "date,product_id,store_id,category,quantity,price,on_hand"
    # sorted by product_id: "=" sorts before "B"
    assert lines[1] == "2024-01-01,\"'=HYPERLINK(\"\"x\"\")\",,'-x,1.5,,"
    assert lines[2] == "2024-01-01,B,,'@SUM(A1),1,,"
    assert lines[3] == "2024-01-02,B,,'=1+2,2,,"


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "passwd"), ("a\x00b.csv", "ab.csv"), ("C:\\x\\y.csv", "y.csv"),
    ("", "upload.csv"), ("..", "upload.csv"), ("my sales (1).csv", "my_sales_1_.csv"),
])
def test_sanitise_filename(name: str, expected: str) -> None:
    assert sanitise_filename(name) == expected


def test_error_is_a_restock_error() -> None:
    assert issubclass(DataValidationError, RestockError)


def test_store_creates_its_folders(tmp_path: Path) -> None:
    store = SalesStore(f"sqlite:///{tmp_path / 'a' / 'b.db'}", tmp_path / "up")
    assert (tmp_path / "a" / "b.db").exists() and (tmp_path / "up").is_dir()
    store.close()
