"""Hypothesis-generated upload files into ingest: random bytes, and CSV-shaped files with
random encodings, delimiters, quoting, line ends, headers (aliases, duplicates, unknown
columns), dates and numbers. Ingest either applies the file or raises DataValidationError
or UnsupportedFileError (-> 422 / 415, exit 2); after a refusal the store is unchanged:
same rows, same uploads log, no kept file."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restock.data.store import SalesStore
from restock.errors import DataValidationError, UnsupportedFileError

pytestmark = pytest.mark.timeout(600)

COLUMNS = ["date", "ds", "day", "product_id", "sku", "item", "unique_id", "quantity", "qty",
           "sales", "y", "store_id", "store", "category", "price", "on_hand", "stock",
           "DATE", " Quantity ", "notes", "", "date"]
DATES = st.one_of(
    st.dates(min_value=pd.Timestamp("1900-01-01").date(),
             max_value=pd.Timestamp("2200-12-31").date()).flatmap(lambda d: st.sampled_from([
                 d.isoformat(), d.strftime("%Y/%m/%d"), d.strftime("%d.%m.%Y"),
                 d.strftime("%m/%d/%Y"), d.strftime("%d/%m/%Y"), d.strftime("%Y%m%d"),
                 d.isoformat() + "T00:00:00Z", d.isoformat() + " 13:45"])),
    st.sampled_from(["2024-02-30", "2023-13-01", "0000-00-00", "", "NaT", "yesterday",
                     "2024-1-1", "99999999", "2024-01-01\n", "1e10"]),
    st.text(max_size=12))
NUMBERS = st.one_of(
    st.integers(-10, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "1e309", "-0", "1,5", "1.000,5",
                     "0x10", " 7 ", "7-", "١٢", "½", "None", "null", "TRUE", "1_000"]),
    st.text(max_size=8))
IDS = st.one_of(st.sampled_from(["P1", "P2", "p1", " P1", "P1 ", "=1+2", "", "\u00e9t\u00e9",
                                 "a\nb", 'q"uote', "x" * 250, "\u202e", "S1"]),
                st.text(max_size=20))


@st.composite
def csv_files(draw: Any) -> bytes:
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=8))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|", ":", " "]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC,
                                    csv.QUOTE_NONE]))
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        row = []
        for name in header:
            key = name.strip().lower()
            if key in ("date", "ds", "day"):
                row.append(draw(DATES))
            elif key in ("quantity", "qty", "sales", "y", "price", "on_hand", "stock"):
                row.append(draw(NUMBERS))
            else:
                row.append(draw(IDS))
        if draw(st.integers(0, 9)) == 0:  # ragged rows
            row = row[: draw(st.integers(0, len(row)))] + draw(st.lists(IDS, max_size=2))
        rows.append(row)
    out = io.StringIO()
    try:
        writer = csv.writer(out, delimiter=delimiter, quoting=quoting, escapechar="\\",
                            lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
        writer.writerow(header)
        writer.writerows(rows)
    except csv.Error:
        return draw(st.binary(max_size=200))
    text = out.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]))
    raw = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 14)) == 0:  # a damaged byte somewhere
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    return raw


@st.composite
def nearly_valid_files(draw: Any) -> bytes:
    """Valid content in random form (aliases, delimiter, quoting, encoding, line ends),
    sometimes with one cell spoilt: both the applied and the refused path are exercised."""
    names = [draw(st.sampled_from(["date", "ds", "Day"])),
             draw(st.sampled_from(["product_id", "sku", "unique_id"])),
             draw(st.sampled_from(["quantity", "qty", "y"])), "store"]
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    rows = []
    for _ in range(draw(st.integers(1, 15))):
        day = draw(st.dates(min_value=pd.Timestamp("2020-01-01").date(),
                            max_value=pd.Timestamp("2026-01-01").date()))
        rows.append([day.isoformat(), draw(st.sampled_from(["P1", "P2", "P3", "é,\"x\"",
                                                            "multi\nline"])),
                     draw(st.one_of(st.integers(0, 500).map(str),
                                    st.floats(0, 1e6, allow_nan=False).map(repr))),
                     draw(st.sampled_from(["S1", "S2", ""]))])
    if draw(st.booleans()):
        row, column = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, 3))
        rows[row][column] = draw(st.one_of(DATES, NUMBERS, IDS))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting,
                        lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(names)
    writer.writerows(rows)
    return out.getvalue().encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])))


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesStore]:
    root = tmp_path_factory.mktemp("fuzz-csv")
    store = SalesStore(f"sqlite:///{root / 'restock.db'}", root / "uploads")
    store.ingest_bytes(b"date,product_id,store_id,quantity\n2024-01-01,P1,S1,3\n"
                       b"2024-01-02,P1,S1,4\n", "seed.csv")
    yield store
    store.close()


def snapshot(store: SalesStore) -> tuple[pd.DataFrame, int, set[str]]:
    return (store.query(), len(store.uploads()),
            {p.name for p in Path(store.uploads_dir).iterdir()})


OUTCOMES: dict[str, int] = {}


def ingest_or_refuse(store: SalesStore, raw: bytes, options: dict[str, str]) -> None:
    before = snapshot(store)
    try:
        result = store.ingest_bytes(raw, "fuzz.csv", **options)
    except (DataValidationError, UnsupportedFileError) as error:
        OUTCOMES[type(error).__name__] = OUTCOMES.get(type(error).__name__, 0) + 1
        assert error.message and error.code
        if isinstance(error, DataValidationError) and error.details:
            assert isinstance(error.details, dict)
        rows, uploads, files = snapshot(store)
        pd.testing.assert_frame_equal(rows, before[0])
        assert uploads == before[1] and files == before[2]
        return
    OUTCOMES["applied"] = OUTCOMES.get("applied", 0) + 1
    assert result.rows_read >= result.inserted + result.updated
    assert len(store.query()) == len(before[0]) + result.inserted


OPTIONS = st.fixed_dictionaries({"on_error": st.sampled_from(["reject", "skip"]),
                                 "on_duplicate": st.sampled_from(["error", "last"])})
FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@FUZZ
@given(raw=csv_files(), options=OPTIONS)
def test_csv_shaped_files(fuzz_store: SalesStore, raw: bytes, options: dict[str, str]) -> None:
    ingest_or_refuse(fuzz_store, raw, options)


@FUZZ
@given(raw=nearly_valid_files(), options=OPTIONS)
def test_nearly_valid_files(fuzz_store: SalesStore, raw: bytes, options: dict[str, str]
                            ) -> None:
    ingest_or_refuse(fuzz_store, raw, options)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=400),
                     st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
                     st.binary(max_size=50).map(lambda b: b"date,product_id,quantity\n" + b)),
       options=OPTIONS)
def test_random_bytes(fuzz_store: SalesStore, raw: bytes, options: dict[str, str]) -> None:
    ingest_or_refuse(fuzz_store, raw, options)


def test_zz_outcomes_cover_both_paths() -> None:
    print(f"\ncsv fuzz outcomes: {OUTCOMES}")
    assert OUTCOMES.get("applied", 0) >= 50 and OUTCOMES.get("DataValidationError", 0) > 0
    assert OUTCOMES.get("UnsupportedFileError", 0) > 0
