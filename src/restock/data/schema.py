"""The canonical sales table and the parsing of uploaded CSV files into it.

Uploads come from spreadsheets, ERPs and notebooks, so the parser is forgiving about form
(column aliases, BOM, CRLF, semicolons, quoted newlines) and strict about content: every
bad cell is reported as (line, column, problem) and, by default, one bad row rejects the
whole file so that a planner never forecasts from half an upload.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Literal

import numpy as np
import pandas as pd

from restock.data.frequency import upload_frequency
from restock.errors import DataValidationError, Problem, UnsupportedFileError

OnError = Literal["reject", "skip"]
OnDuplicate = Literal["error", "last"]

KEY = ["date", "product_id", "store_id"]
REQUIRED = ["date", "product_id", "quantity"]
OPTIONAL = ["store_id", "category", "price", "on_hand", "on_order"]
CANONICAL = ["date", "product_id", "store_id", "category", "quantity", "price", "on_hand",
             "on_order"]

ALIASES: dict[str, str] = {
    "date": "date", "ds": "date", "day": "date",
    "product_id": "product_id", "sku": "product_id", "item": "product_id",
    "item_id": "product_id", "product": "product_id", "unique_id": "product_id",
    "quantity": "quantity", "sales": "quantity", "units": "quantity",
    "units_sold": "quantity", "qty": "quantity", "demand": "quantity", "y": "quantity",
    "store_id": "store_id", "store": "store_id", "location": "store_id",
    "category": "category",
    "price": "price",
    "on_hand": "on_hand", "stock": "on_hand", "inventory": "on_hand", "stock_level": "on_hand",
    # stock ordered and not yet received: it enters the inventory position
    "on_order": "on_order", "open_orders": "on_order", "in_transit": "on_order",
}

MAX_ID_LENGTH = 200
DATE_FORMATS: list[tuple[str, str]] = [
    ("%Y-%m-%d", r"\d{4}-\d{1,2}-\d{1,2}"),
    ("%Y/%m/%d", r"\d{4}/\d{1,2}/\d{1,2}"),
    ("%d.%m.%Y", r"\d{1,2}\.\d{1,2}\.\d{4}"),
    ("%d/%m/%Y", r"\d{1,2}/\d{1,2}/\d{4}"),
    ("%m/%d/%Y", r"\d{1,2}/\d{1,2}/\d{4}"),
    ("%Y%m%d", r"\d{8}"),
]
_TIME_SUFFIX = re.compile(r"[T ]00:00(:00(\.0+)?)?(Z|[+-]00:?00)?$")

# CSV formula injection: a spreadsheet runs a cell starting with one of = + - @ tab CR. The
# export writes such text (and text that is quotes and then one of them) with one more
# leading ', the spreadsheets' text marker; the parser removes exactly that one ', so
# export -> ingest is exact: '=x <-> =x, ''=x <-> '=x, and 'abc stays 'abc both ways.
_NEEDS_TEXT_MARKER = r"^(?='*[=+\-@\t\r])"
_HAS_TEXT_MARKER = r"^'(?='*[=+\-@\t\r])"


def neutralise_formulas(values: pd.Series) -> pd.Series:
    """Text cells as the export writes them: never starting with a formula character."""
    return values.str.replace(_NEEDS_TEXT_MARKER, "'", regex=True)


@dataclass
class ParsedUpload:
    """The canonical rows of an upload plus what the parser noticed along the way."""

    frame: pd.DataFrame
    rows_read: int
    skipped: list[Problem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    skipped_total: int = 0
    frequency: str = ""  # what the rows' spacing shows (``frequency.classify``), or ""


@dataclass(frozen=True)
class Limits:
    """What the parser accepts beyond well-formed cells: a plausible calendar window and
    plausible magnitudes. One far-off date zero-fills every series up to it and moves every
    forecast's start; one 1e308 overflows training. The defaults are ``Settings``' ones
    (``RESTOCK_MIN_DATE``, ``RESTOCK_MAX_FUTURE_DAYS``, ``RESTOCK_MAX_QUANTITY``)."""

    min_date: date = date(1900, 1, 1)
    #: days after today (UTC) a date may lie: time zones ahead of UTC and week-ending
    #: labels of the current week. A month-end label of the current month is refused on
    #: purpose: an unfinished month's total would read as a drop in demand
    max_future_days: int = 7
    #: bound on quantity, on_hand, on_order and price
    max_value: float = 1e9

    def latest_date(self) -> date:
        return datetime.now(timezone.utc).date() + timedelta(days=self.max_future_days)


_WIDE_ENCODINGS = ((b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
                   (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
                   (b"\xff\xfe", "UTF-16 (little-endian)"),
                   (b"\xfe\xff", "UTF-16 (big-endian)"))


def _wide_encoding(raw: bytes) -> str | None:
    """The UTF-16/32 flavour ``raw`` looks like (by its BOM, or else by where its NULs
    fall: ASCII text in UTF-16-LE has a NUL in every odd byte), or None."""
    for bom, name in _WIDE_ENCODINGS:
        if raw.startswith(bom):
            return name
    size = min(len(raw), 4096) // 4 * 4
    if size < 8:
        return None
    head = np.frombuffer(raw[:size], dtype=np.uint8)
    by_position = (head.reshape(-1, 4) == 0).mean(axis=0)
    zero = by_position > 0.9
    if zero.tolist() == [False, True, True, True]:
        return "UTF-32 (little-endian)"
    if zero.tolist() == [True, True, True, False]:
        return "UTF-32 (big-endian)"
    if zero.tolist() == [False, True, False, True]:
        return "UTF-16 (little-endian)"
    if zero.tolist() == [True, False, True, False]:
        return "UTF-16 (big-endian)"
    return None


def _decode(raw: bytes) -> str:
    """Bytes to text, refusing what is not UTF-8 CSV with the line of the first bad byte."""
    if raw[:2] == b"\x1f\x8b":
        raise UnsupportedFileError(
            "the file is gzip-compressed; decompress it and upload the .csv inside"
        )
    if raw[:4] == b"PK\x03\x04":
        raise UnsupportedFileError(
            "the file is a ZIP archive (an .xlsx workbook?); export the sheet as CSV"
        )
    wide = _wide_encoding(raw)
    if wide is not None:
        raise UnsupportedFileError(
            f"the file looks like {wide} text; save it as UTF-8 CSV (in Excel: "
            "'CSV UTF-8 (comma delimited)')")
    if b"\x00" in raw[:65536]:
        raise UnsupportedFileError("the file contains NUL bytes: it is binary, not a CSV text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataValidationError(
            "the file is not valid UTF-8",
            [Problem(line, None, f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; "
                     "save the file as UTF-8 CSV")],
        ) from None


def _sniff_delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _line_numbers(text: str, delimiter: str, n_records: int) -> np.ndarray:
    """Map each data record to the file line it starts on (header = line 1).

    Only quoted fields with embedded newlines, or blank lines, make the two differ, so the
    cheap arithmetic answer is used unless the text holds quotes.
    """
    if '"' not in text:
        return np.arange(2, n_records + 2)
    starts = []
    # newline="": the csv module's own line handling, so a bare CR (old Mac line ends, or
    # inside a field) is a line end or field text, never csv.Error
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        next(reader, None)
        line = reader.line_num + 1
        for _ in reader:
            starts.append(line)
            line = reader.line_num + 1
    except csv.Error:  # pandas read the file; the numbers are for messages only
        return np.arange(2, n_records + 2)
    return np.asarray(starts[:n_records] + [0] * (n_records - len(starts)))


def _first_records(text: str, delimiter: str) -> tuple[list[str], list[str], int]:
    """The header's names as written, the first data record's cells and its line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, [])
        line = reader.line_num + 1
        return header, next(reader, []), line
    except csv.Error:  # pandas read the file; these only refine its header checks
        return [], [], 2


def _map_columns(columns: list[str], aliases: dict[str, str] = ALIASES,
                 required_columns: list[str] = REQUIRED,
                 ) -> tuple[dict[str, str], list[str], list[Problem]]:
    mapping: dict[str, str] = {}
    ignored: list[str] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for name in columns:
        canonical = aliases.get(name.strip().lower())
        if canonical is None:
            ignored.append(name)
        elif canonical in seen:
            problems.append(Problem(1, name, f"columns {seen[canonical]!r} and {name!r} both "
                                    f"mean {canonical!r}; keep one"))
        else:
            seen[canonical] = name
            mapping[name] = canonical
    for required in required_columns:
        if required not in seen:
            accepted = sorted(k for k, v in aliases.items() if v == required)
            problems.append(Problem(1, required, f"missing required column {required!r} "
                                    f"(accepted names: {', '.join(accepted)})"))
    return mapping, ignored, problems


def _factorize(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """``values`` as (codes, distinct values): the parsers below are elementwise, so they run
    once per distinct text (a million-row file has about a thousand dates and products)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes, pd.Series(np.asarray(uniques, dtype=object), dtype=object)


def _expand(parsed: pd.Series, codes: np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series(parsed.to_numpy()[codes], index=index)


def _per_distinct(parse: Callable[..., tuple[pd.Series, pd.Series]], values: pd.Series,
                  *args: object) -> tuple[pd.Series, pd.Series]:
    codes, distinct = _factorize(values)
    parsed, problems = parse(distinct, *args)
    return _expand(parsed, codes, values.index), _expand(problems, codes, values.index)


def _parse_dates(values: pd.Series, limits: Limits) -> tuple[pd.Series, pd.Series]:
    """Parse with the one format that fits most rows; returns (dates, problem text or '')."""
    codes, distinct = _factorize(values)
    weights = np.bincount(codes, minlength=len(distinct))
    text = distinct.str.strip().str.replace(_TIME_SUFFIX, "", regex=True)
    best_fmt, best_parsed, best_ok = DATE_FORMATS[0][0], None, -1
    ties: list[str] = []
    for fmt, _ in DATE_FORMATS:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        ok = int(weights[parsed.notna().to_numpy()].sum())
        if ok > best_ok:
            best_fmt, best_parsed, best_ok, ties = fmt, parsed, ok, [fmt]
        elif ok == best_ok and ok > 0:
            ties.append(fmt)
        # every row parsed: no later format can win (only day/month order can still tie)
        if ok == len(values) and fmt != "%d/%m/%Y":
            break
    assert best_parsed is not None
    problems = pd.Series("", index=distinct.index, dtype=object)
    if best_fmt == "%d/%m/%Y" and "%m/%d/%Y" in ties:
        problems[:] = "ambiguous date: day/month order cannot be told apart; use YYYY-MM-DD"
        return _expand(best_parsed, codes, values.index), _expand(problems, codes, values.index)
    bad = best_parsed.isna()
    if bad.any():
        pattern = dict(DATE_FORMATS)[best_fmt]
        shaped = text[bad].str.fullmatch(pattern)
        readable = best_fmt.replace("%Y", "YYYY").replace("%m", "MM").replace("%d", "DD")
        empty = text[bad] == ""
        problems[bad] = np.where(
            empty, "missing date",
            np.where(shaped, "impossible date " + text[bad].str.slice(0, 40).map(repr),
                     "unparseable date " + text[bad].str.slice(0, 40).map(repr)
                     + f" (the file's dates are {readable})"))
        # a real calendar date pandas cannot hold (9999-12-31, 1066-10-14) is out of range
        for i in text[bad].index[shaped.to_numpy(dtype=bool)]:
            try:
                day = datetime.strptime(text[i], best_fmt).date()
            except ValueError:
                continue
            problems[i] = _date_out_of_range(text[i], day, limits)
    latest, earliest = pd.Timestamp(limits.latest_date()), pd.Timestamp(limits.min_date)
    for i in distinct.index[(best_parsed > latest) | (best_parsed < earliest)]:
        problems[i] = _date_out_of_range(text[i], best_parsed[i].date(), limits)
    return _expand(best_parsed, codes, values.index), _expand(problems, codes, values.index)


def _date_out_of_range(text: str, day: date, limits: Limits) -> str:
    if day > limits.latest_date():
        return (f"date {text[:40]!r} is after the latest allowed date "
                f"{limits.latest_date().isoformat()} (today + {limits.max_future_days} days, "
                "RESTOCK_MAX_FUTURE_DAYS)")
    return (f"date {text[:40]!r} is before the earliest allowed date "
            f"{limits.min_date.isoformat()} (RESTOCK_MIN_DATE)")


def _parse_number(values: pd.Series, column: str, required: bool,
                  max_value: float) -> tuple[pd.Series, pd.Series]:
    text = values.str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    problems = pd.Series("", index=values.index, dtype=object)
    empty = text == ""
    unparsed = numbers.isna() & ~empty
    nan_text = text.str.lower().isin(["nan", "-nan", "+nan"])
    problems[unparsed & ~nan_text] = ("not a number: " + text[unparsed & ~nan_text]
                                      .str.slice(0, 40).map(repr))
    problems[nan_text] = f"NaN is not a valid {column}"
    infinite = np.isinf(numbers.to_numpy(dtype=float, na_value=np.nan))
    problems[infinite] = "infinite value"
    negative = (numbers < 0) & ~pd.Series(infinite, index=values.index)
    problems[negative] = "negative value " + text[negative] + f"; {column} must be >= 0"
    too_big = (numbers > max_value) & ~pd.Series(infinite, index=values.index)
    problems[too_big] = (f"{column} " + text[too_big].str.slice(0, 40) + f" is above the "
                         f"maximum {max_value:g} (RESTOCK_MAX_QUANTITY)")
    if required:
        problems[empty] = f"missing {column}"
    numbers = numbers.where(problems == "")
    return numbers, problems


def parse_ids(values: pd.Series, column: str, required: bool) -> tuple[pd.Series, pd.Series]:
    # the export's text marker comes off (see ``neutralise_formulas``); stripping again
    # keeps what is stored free of outer blanks, as a fresh upload of the same text would be
    text = values.str.strip().str.replace(_HAS_TEXT_MARKER, "", regex=True).str.strip()
    problems = pd.Series("", index=values.index, dtype=object)
    if required:
        problems[text == ""] = f"missing {column}"
    too_long = text.str.len() > MAX_ID_LENGTH
    problems[too_long] = (f"{column} is too long (" + text[too_long].str.len().astype(str)
                          + f" characters, at most {MAX_ID_LENGTH})")
    return text, problems


@dataclass
class RawTable:
    """An upload's data rows as text cells, under canonical column names."""

    table: pd.DataFrame  # one str column per mapped column, blank lines dropped
    lines: pd.Series  # the file line each row starts on (header = 1), for problems
    ignored: list[str]  # header names that map to no column


def read_table(raw: bytes, aliases: dict[str, str] = ALIASES,
               required: list[str] = REQUIRED) -> RawTable:
    """Decode ``raw`` and read it as CSV text cells under the canonical names ``aliases``
    gives; the file-level problems (encoding, malformed CSV, header, no rows) reject it.
    Sales and item settings uploads both start here."""
    if not raw.strip():
        raise DataValidationError("the file is empty", [Problem(None, None, "the file is empty")])
    text = _decode(raw)
    delimiter = _sniff_delimiter(text)
    try:
        table = pd.read_csv(
            io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
            skip_blank_lines=False, engine="c", quotechar='"',
            index_col=False,  # a trailing delimiter on every row must not shift the columns
        )
    except (pd.errors.ParserError, csv.Error) as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise DataValidationError(
            "the file is not a well-formed CSV",
            [Problem(line, None, f"malformed CSV: {str(exc).strip()[:200]}")],
        ) from None
    except pd.errors.EmptyDataError:
        raise DataValidationError("the file is empty",
                                  [Problem(None, None, "the file is empty")]) from None
    header, first, first_line = _first_records(text, delimiter)
    # pandas renames a repeated name ('moq', 'moq.1'): the header check must see it twice
    table.columns = header if len(header) == len(table.columns) else map(str, table.columns)
    if len(first) > len(header) and any(cell.strip() for cell in first[len(header):]):
        # pandas drops them silently on the first row only (index_col=False); later rows
        # with too many cells are malformed CSV above
        raise DataValidationError("a row has more cells than the header", [Problem(
            first_line, None, f"{len(first)} cells, but the header names {len(header)} "
                              "columns")])
    mapping, ignored, header_problems = _map_columns(list(table.columns), aliases,
                                                      required)
    if header_problems:
        raise DataValidationError("the header is missing required columns", header_problems)
    table = table[list(mapping)].rename(columns=mapping)
    blank = (table == "").all(axis=1)
    lines = pd.Series(_line_numbers(text, delimiter, len(table)), index=table.index)
    table, lines = table[~blank], lines[~blank]
    if table.empty:
        raise DataValidationError("the file has a header but no data rows",
                                  [Problem(2, None, "no data rows after the header")])
    return RawTable(table, lines, ignored)


def parse_sales_csv(
    raw: bytes, *, on_error: OnError = "reject", on_duplicate: OnDuplicate = "error",
    limits: Limits = Limits(),
) -> ParsedUpload:
    """Parse and validate an uploaded sales CSV into canonical rows.

    Raises ``DataValidationError`` listing (line, column, problem) for every bad cell unless
    ``on_error="skip"``, in which case bad rows are dropped and reported in ``skipped``;
    problems with the file as a whole (encoding, header, no rows, series of mixed
    frequencies) always reject it.
    """
    read = read_table(raw)
    table, lines, ignored = read.table, read.lines, read.ignored
    out = pd.DataFrame(index=table.index)
    problems: dict[str, pd.Series] = {}
    out["date"], problems["date"] = _parse_dates(table["date"], limits)
    out["product_id"], problems["product_id"] = _per_distinct(
        parse_ids, table["product_id"], "product_id", True)
    for column in ("store_id", "category"):
        if column in table:
            out[column], problems[column] = _per_distinct(parse_ids, table[column], column,
                                                          False)
        else:
            out[column] = ""
    out["quantity"], problems["quantity"] = _per_distinct(
        _parse_number, table["quantity"], "quantity", True, limits.max_value)
    for column in ("price", "on_hand", "on_order"):
        if column in table:
            out[column], problems[column] = _per_distinct(_parse_number, table[column], column,
                                                          False, limits.max_value)
        else:
            out[column] = np.nan

    found: list[Problem] = []
    bad_rows = pd.Series(False, index=table.index)
    for column, texts in problems.items():
        hit = texts != ""
        bad_rows |= hit
        found.extend(Problem(int(lines[i]), column, texts[i]) for i in texts.index[hit])

    good = out[~bad_rows]
    duplicated = good.duplicated(KEY, keep="last")
    if duplicated.any() and on_duplicate != "last":
        first_line = (lines[good.index].groupby([good[k] for k in KEY]).transform("max"))
        for i in good.index[duplicated]:
            found.append(Problem(int(lines[i]), "date,product_id,store_id",
                                 f"duplicate key: line {int(first_line[i])} has the same date, "
                                 "product_id and store_id (send on_duplicate=last to keep the last)"))
        bad_rows |= duplicated.reindex(bad_rows.index, fill_value=False)
    found.sort(key=lambda p: (p.row or 0, p.column or ""))
    if found and on_error != "skip":
        raise DataValidationError(
            f"{len(found)} problem(s) in the file; nothing was stored", found
        )
    # == out[~bad_rows].drop_duplicates(KEY, keep="last"): rejected duplicates are already in
    # bad_rows, kept ones (on_duplicate="last") drop here; one duplicate pass instead of two
    frame = good[~duplicated].reset_index(drop=True)
    if frame.empty:
        raise DataValidationError("no valid rows in the file; nothing was stored", found)
    frame["date"] = frame["date"].dt.normalize()
    return ParsedUpload(
        frame=frame[CANONICAL], rows_read=int(len(table)),
        skipped=found[: DataValidationError.MAX_LISTED], skipped_total=int(bad_rows.sum()),
        ignored_columns=ignored, frequency=upload_frequency(frame),
    )
