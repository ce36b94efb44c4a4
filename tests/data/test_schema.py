"""Parsing and validation of uploaded CSV files."""

from __future__ import annotations

import gzip
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

from restock.data.frequency import infer_frequency
from restock.data.schema import Limits, parse_sales_csv
from restock.errors import DataValidationError, UnsupportedFileError

HEADER = "date,product_id,quantity\n"


def problems_of(raw: bytes, **options: object) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(DataValidationError) as info:
        parse_sales_csv(raw, **options)
    return [(p.row, p.column, p.problem) for p in info.value.problems]


def test_aliases_are_case_insensitive_and_unknown_columns_reported() -> None:
    parsed = parse_sales_csv(b"DS,Unique_ID,Y,Store,Colour\n2024-01-01,A,3,S1,red\n")
    assert parsed.ignored_columns == ["Colour"]
    row = parsed.frame.iloc[0]
    assert (row["product_id"], row["store_id"], row["quantity"]) == ("A", "S1", 3.0)
    assert row["date"] == pd.Timestamp("2024-01-01")


@pytest.mark.parametrize("raw", [
    "\ufeffdate,product_id,quantity\n2024-01-01,A,3\n".encode(),
    b"date,product_id,quantity\r\n2024-01-01,A,3\r\n",
    b"date;product_id;quantity\n2024-01-01;A;3\n",
    b"date\tproduct_id\tquantity\n2024-01-01\tA\t3\n",
], ids=["bom", "crlf", "semicolon", "tab"])
def test_form_variants_parse_the_same(raw: bytes) -> None:
    frame = parse_sales_csv(raw).frame
    assert frame[["product_id", "quantity"]].values.tolist() == [["A", 3.0]]


def test_empty_file() -> None:
    assert problems_of(b"") == [(None, None, "the file is empty")]
    assert problems_of(b"  \n\n") == [(None, None, "the file is empty")]


def test_header_only() -> None:
    assert problems_of(HEADER.encode()) == [(2, None, "no data rows after the header")]


@pytest.mark.parametrize("missing", ["date", "product_id", "quantity"])
def test_missing_required_column(missing: str) -> None:
    columns = [c for c in ("date", "product_id", "quantity") if c != missing]
    raw = (",".join(columns) + "\n" + ",".join(["2024-01-01", "A", "1"][: len(columns)])
           + "\n").encode()
    (row, column, problem), = problems_of(raw)
    assert (row, column) == (1, missing)
    assert f"missing required column '{missing}'" in problem


def test_two_columns_meaning_the_same() -> None:
    (row, column, problem), = problems_of(b"date,sku,item,qty\n2024-01-01,A,B,1\n")
    assert row == 1 and "both mean 'product_id'" in problem


def test_non_utf8_names_the_line() -> None:
    (row, column, problem), = problems_of(HEADER.encode() + b"2024-01-01,A,1\n2024-01-02,caf\xe9,1\n")
    assert row == 3 and "not valid UTF-8" in problem


def test_gzip_bytes_are_refused() -> None:
    with pytest.raises(UnsupportedFileError, match="gzip"):
        parse_sales_csv(gzip.compress(HEADER.encode() + b"2024-01-01,A,1\n"))


def test_quoted_newlines_keep_line_numbers() -> None:
    raw = (b'date,product_id,quantity,category\n'
           b'2024-01-01,A,1,"two\nlines"\n'
           b'2024-01-02,A,-1,x\n')
    assert problems_of(raw) == [(4, "quantity", "negative value -1; quantity must be >= 0")]
    parsed = parse_sales_csv(raw.replace(b"-1", b"2"))
    assert parsed.frame["category"].tolist() == ["two\nlines", "x"]


def test_dates_unparseable_impossible_and_mixed() -> None:
    raw = (HEADER + "2024-01-01,A,1\n2024-02-30,A,1\nyesterday,A,1\n01/03/2024,A,1\n,A,1\n").encode()
    found = problems_of(raw)
    assert found[0][:2] == (3, "date") and "impossible date '2024-02-30'" in found[0][2]
    assert found[1][:2] == (4, "date") and "unparseable date 'yesterday'" in found[1][2]
    assert found[2][:2] == (5, "date") and "YYYY-MM-DD" in found[2][2]
    assert found[3] == (6, "date", "missing date")


def test_other_date_formats_and_midnight_times() -> None:
    frame = parse_sales_csv((HEADER + "31/01/2024,A,1\n01/02/2024,A,1\n").encode()).frame
    assert frame["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-31", "2024-02-01"]
    frame = parse_sales_csv((HEADER + "2024-01-31 00:00:00,A,1\n").encode()).frame
    assert frame["date"].iloc[0] == pd.Timestamp("2024-01-31")


def test_ambiguous_day_month_order_is_refused() -> None:
    found = problems_of((HEADER + "01/02/2024,A,1\n").encode())
    assert "ambiguous" in found[0][2]


@pytest.mark.parametrize("value, message", [
    ("-3", "negative value -3"),
    ("NaN", "NaN is not a valid quantity"),
    ("inf", "infinite value"),
    ("", "missing quantity"),
    ("twelve", "not a number: 'twelve'"),
])
def test_bad_quantities(value: str, message: str) -> None:
    (row, column, problem), = problems_of((HEADER + f"2024-01-01,A,{value}\n").encode())
    assert (row, column) == (2, "quantity") and message in problem


def test_duplicate_keys_inside_a_file() -> None:
    raw = (HEADER + "2024-01-01,A,1\n2024-01-01,A,2\n").encode()
    (row, column, problem), = problems_of(raw)
    assert row == 2 and "line 3 has the same" in problem
    frame = parse_sales_csv(raw, on_duplicate="last").frame
    assert frame["quantity"].tolist() == [2.0]


def test_megabyte_field_is_reported_not_stored() -> None:
    raw = (HEADER + "2024-01-01," + "X" * 1_048_576 + ",1\n").encode()
    (row, column, problem), = problems_of(raw)
    assert (row, column) == (2, "product_id") and "too long" in problem


def test_formula_like_ids_are_kept_verbatim() -> None:
    frame = parse_sales_csv((HEADER + '2024-01-01,"=HYPERLINK(""http://x"")",1\n').encode()).frame
    assert frame["product_id"].iloc[0] == '=HYPERLINK("http://x")'


def test_skip_keeps_good_rows_and_reports_the_rest() -> None:
    parsed = parse_sales_csv((HEADER + "2024-01-01,A,1\n2024-01-02,A,x\n").encode(),
                             on_error="skip")
    assert parsed.frame["quantity"].tolist() == [1.0]
    assert parsed.skipped_total == 1 and parsed.skipped[0].row == 3


def test_problem_list_is_capped_with_a_total() -> None:
    raw = (HEADER + "2024-01-01,A,-1\n" * 250).encode()
    with pytest.raises(DataValidationError) as info:
        parse_sales_csv(raw, on_duplicate="last")
    assert len(info.value.problems) == 100 and info.value.total == 250


@pytest.mark.parametrize("dates, freq", [
    (pd.date_range("2024-01-01", periods=30, freq="D"), "D"),
    (pd.date_range("2024-01-05", periods=30, freq="W-FRI"), "W-FRI"),
    (pd.date_range("2020-01-01", periods=30, freq="MS"), "MS"),
    (pd.date_range("2020-01-31", periods=30, freq="ME"), "ME"),
])
def test_infer_frequency(dates: pd.DatetimeIndex, freq: str) -> None:
    assert infer_frequency(dates) == freq
    assert infer_frequency(dates.delete([3, 7])) == freq  # a few gaps change nothing


def test_a_trailing_delimiter_on_every_row_does_not_shift_columns() -> None:
    frame = parse_sales_csv(b"date,product_id,quantity,\n2024-01-01,P1,5,\n").frame
    assert frame[["product_id", "quantity"]].values.tolist() == [["P1", 5.0]]


def test_skipped_counts_rows_not_problems() -> None:
    parsed = parse_sales_csv((HEADER + "2024-01-01,A,1\n2024-02-30,A,x\n2024-01-03,,2\n")
                             .encode(), on_error="skip")
    assert parsed.skipped_total == 2 and len(parsed.skipped) == 3


# -- hostile input (issue 11) ----------------------------------------------------------------

def today() -> date:
    return datetime.now(timezone.utc).date()


def test_dates_far_in_the_future_or_past_are_refused_naming_the_limit() -> None:
    latest = today() + timedelta(days=7)
    raw = (HEADER + f"2024-01-01,A,1\n2200-01-01,A,1\n1700-01-01,A,1\n9999-12-31,A,1\n"
           f"{(latest + timedelta(days=1)).isoformat()},A,1\n{latest.isoformat()},B,1\n"
           "1900-01-01,B,1\n").encode()
    found = problems_of(raw)
    after = (f"is after the latest allowed date {latest.isoformat()} (today + 7 days, "
             "RESTOCK_MAX_FUTURE_DAYS)")
    assert found == [
        (3, "date", f"date '2200-01-01' {after}"),
        (4, "date", "date '1700-01-01' is before the earliest allowed date 1900-01-01 "
                    "(RESTOCK_MIN_DATE)"),
        (5, "date", f"date '9999-12-31' {after}"),
        (6, "date", f"date '{(latest + timedelta(days=1)).isoformat()}' {after}"),
    ]


def test_date_limits_are_configurable() -> None:
    raw = (HEADER + f"1950-06-01,A,1\n{(today() + timedelta(days=3)).isoformat()},A,1\n").encode()
    found = problems_of(raw, limits=Limits(min_date=date(1990, 1, 1), max_future_days=0))
    assert [(row, "before" in text or "after" in text) for row, _, text in found] == [
        (2, True), (3, True)]
    assert len(parse_sales_csv(raw).frame) == 2


@pytest.mark.parametrize("column", ["quantity", "price", "on_hand"])
def test_huge_and_non_finite_numbers_are_refused(column: str) -> None:
    raw = (f"date,product_id,{column}" + (",quantity" if column != "quantity" else "")
           + "\n" + "".join(f"2024-01-0{i},A,{v}" + (",1" if column != "quantity" else "")
                            + "\n" for i, v in enumerate(["1e308", "inf", "nan", "-inf",
                                                           "1000000001", "1e9"], 1))).encode()
    found = problems_of(raw)
    assert [(row, col) for row, col, _ in found] == [(r, column) for r in (2, 3, 4, 5, 6)]
    assert found[0][2] == f"{column} 1e308 is above the maximum 1e+09 (RESTOCK_MAX_QUANTITY)"
    assert found[1][2] == "infinite value" and found[2][2] == f"NaN is not a valid {column}"
    assert "above the maximum" in found[4][2]
    parsed = parse_sales_csv(raw, on_error="skip", limits=Limits(max_value=1e12))
    assert len(parsed.frame) == 2  # 1000000001 and 1e9 under a higher bound


@pytest.mark.parametrize("encoding, name", [
    ("utf-16", "UTF-16 (little-endian)"), ("utf-16-be", "UTF-16 (big-endian)"),
    ("utf-16-le", "UTF-16 (little-endian)"), ("utf-32", "UTF-32 (little-endian)"),
    ("utf-32-be", "UTF-32 (big-endian)"),
])
def test_utf16_and_utf32_files_are_named_not_called_binary(encoding: str, name: str) -> None:
    raw = (HEADER + "2024-01-01,Café,1\n").encode(encoding)
    with pytest.raises(UnsupportedFileError) as info:
        parse_sales_csv(raw)
    assert info.value.message.startswith(f"the file looks like {name} text; save it as UTF-8")


def test_real_binary_is_still_binary() -> None:
    with pytest.raises(UnsupportedFileError, match="binary"):
        parse_sales_csv(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))


def series_csv(*blocks: tuple[str, pd.DatetimeIndex]) -> bytes:
    lines = [f"{d:%Y-%m-%d},{product},1" for product, dates in blocks for d in dates]
    return (HEADER + "\n".join(lines) + "\n").encode()


def test_a_file_mixing_daily_weekly_and_monthly_series_is_refused() -> None:
    raw = series_csv(("DAILY", pd.date_range("2024-01-01", periods=60, freq="D")),
                     ("WEEKLY", pd.date_range("2024-01-05", periods=20, freq="W-FRI")),
                     ("MONTHLY", pd.date_range("2022-01-01", periods=24, freq="MS")))
    with pytest.raises(DataValidationError) as info:
        parse_sales_csv(raw, on_error="skip")  # a file-wide problem: skip cannot help
    error = info.value
    assert "mixes series of different frequencies (daily, monthly (1st of the month), " \
        "weekly (Fridays))" in error.message
    texts = [p.problem for p in error.problems]
    assert texts[:3] == ["product_id 'DAILY' is daily",
                         "product_id 'MONTHLY' is monthly (1st of the month)",
                         "product_id 'WEEKLY' is weekly (Fridays)"]


def test_one_frequency_per_file_is_recorded_and_slow_movers_do_not_conflict() -> None:
    days = pd.date_range("2024-01-01", periods=90, freq="D")
    raw = series_csv(("BUSY", days), ("SLOW", days[[0, 9, 23, 40, 41, 70, 88]]),
                     ("FEW", pd.DatetimeIndex(["2024-01-05", "2024-01-12", "2024-01-19"])))
    assert parse_sales_csv(raw).frequency == "D"
    weekly = series_csv(("A", pd.date_range("2024-01-07", periods=3, freq="W-SUN")))
    assert parse_sales_csv(weekly).frequency == "W-SUN"  # the whole file's dates
    assert parse_sales_csv(series_csv(("A", days[:1]))).frequency == ""


def test_a_column_named_twice_is_a_header_problem() -> None:
    (row, column, problem), = problems_of(b"date,product_id,quantity,quantity\n"
                                          b"2024-01-01,A,3,4\n")
    assert (row, column) == (1, "quantity") and "keep one" in problem


def test_extra_cells_on_the_first_row_are_refused_and_a_trailing_delimiter_is_not() -> None:
    (row, column, problem), = problems_of(HEADER.encode() + b"2024-01-01,A,3,99\n")
    assert (row, column) == (2, None) and "4 cells" in problem
    frame = parse_sales_csv(b"date,product_id,quantity,\n2024-01-01,A,3,\n").frame
    assert frame["quantity"].tolist() == [3.0]
