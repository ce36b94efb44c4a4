"""Item and supplier settings uploads: per product (and optionally per store) lead times,
service level and the order constraints a supplier sets (issue 15 item 2).

The file is read like a sales upload (:func:`restock.data.schema.read_table`: encoding,
delimiter, header aliases, line numbers) and validated the same way: every bad cell is a
(line, column, problem), and one bad row rejects the whole file. Each row is checked
against the one declaration of these columns, :data:`restock.query.ItemSettings`, whose
shared fields (lead time, service level, ...) carry the bounds a request has, so a
value the API refuses in a request is refused in the file too. A product the sales
history does not know, or a product and store that never sold together, is a row error:
a setting for a typo would silently never apply.

A row without ``store_id`` applies to every store of its product; a row with one
overrides it, column by column (an empty cell falls back to the product's row, then to
the request's or the declared default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pydantic

from restock.data.schema import ALIASES, neutralise_formulas, parse_ids, read_table
from restock.errors import DataValidationError, Problem
from restock.query import ITEM_COLUMNS, ItemSettings

ID_COLUMNS = ("product_id", "store_id")
#: the CSV of the settings in force: the upload's own header, so it can be sent back
HEADER = (*ID_COLUMNS, *ITEM_COLUMNS)
#: the header names an item upload accepts: the sales upload's for the ids, the canonical
#: name (and a few ERP spellings) for each setting
ITEM_ALIASES: dict[str, str] = {
    **{name: canonical for name, canonical in ALIASES.items() if canonical in ID_COLUMNS},
    **{name: name for name in ITEM_COLUMNS},
    "min_order_qty": "moq", "minimum_order_quantity": "moq", "case_pack": "order_multiple",
    "pack_size": "order_multiple", "max_order": "max_order_qty",
}
#: a cross-field rule of the declaration (moq or order_multiple above max_order_qty) is
#: reported on this column
_CROSS_FIELD_COLUMN = "max_order_qty"
_ROWS = pydantic.TypeAdapter(list[ItemSettings])

#: (product_id, store_id) pairs the sales history holds, for the given product ids
KnownSeries = Callable[[list[str]], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class ParsedItems:
    """The settings rows of an upload: ``product_id``, ``store_id`` ("" for every store)
    and ``ITEM_COLUMNS`` (NaN: not set)."""

    frame: pd.DataFrame
    rows_read: int
    ignored_columns: list[str]


def parse_items_csv(raw: bytes, known_series: KnownSeries) -> ParsedItems:
    """Parse and validate an item settings CSV; all rows or ``DataValidationError``
    listing every (line, column, problem)."""
    read = read_table(raw, ITEM_ALIASES, ["product_id"])
    table, lines = read.table, read.lines.to_numpy()
    found: list[Problem] = []
    ids = {}
    for column in ID_COLUMNS:
        if column in table:
            ids[column], problems = parse_ids(table[column], column, column == "product_id")
            found += [Problem(int(lines[i]), column, text)
                      for i, text in enumerate(problems.tolist()) if text]
        else:
            ids[column] = pd.Series("", index=table.index)
    present = [c for c in ITEM_COLUMNS if c in table]
    cells = {c: table[c].str.strip() for c in present}
    records = [{c: v or None for c, v in zip(present, row)}
               for row in zip(*(cells[c].tolist() for c in present))] if present \
        else [{} for _ in range(len(table))]
    try:
        settings = _ROWS.validate_python(records)
    except pydantic.ValidationError as error:
        settings = None
        for e in error.errors(include_url=False, include_input=False):
            index, column = e["loc"][0], (e["loc"][1] if len(e["loc"]) > 1
                                          else _CROSS_FIELD_COLUMN)
            got = records[int(index)].get(str(column))
            # a cell is quoted at most 40 characters, as the sales upload's problems are:
            # a 30 MB cell must not come back in the error
            found.append(Problem(int(lines[int(index)]), str(column),
                                 e["msg"].removeprefix("Value error, ")
                                 + (f" (got {got[:40]!r})" if got is not None else "")))
    frame = pd.DataFrame({"product_id": ids["product_id"].to_numpy(object),
                          "store_id": ids["store_id"].to_numpy(object)})
    found += _duplicates(frame, lines) + _unknown(frame, lines, known_series)
    if found:
        found.sort(key=lambda p: (p.row or 0, p.column or ""))
        raise DataValidationError(f"{len(found)} problem(s) in the item settings; nothing "
                                  "was stored", found)
    assert settings is not None
    values = pd.DataFrame([s.model_dump(include=set(ITEM_COLUMNS)) for s in settings],
                          columns=list(ITEM_COLUMNS), dtype=float)
    return ParsedItems(pd.concat([frame, values], axis=1), int(len(table)), read.ignored)


def _duplicates(frame: pd.DataFrame, lines: np.ndarray) -> list[Problem]:
    """A (product, store) given twice: which of the two rows should win is not for us to
    guess."""
    repeated = frame.duplicated(list(ID_COLUMNS), keep="first").to_numpy()
    first = frame.groupby(list(ID_COLUMNS), sort=False).ngroup().to_numpy()
    first_line = {group: int(lines[i]) for i, group in reversed(list(enumerate(first)))}
    return [Problem(int(lines[i]), "product_id,store_id",
                    f"duplicate: line {first_line[first[i]]} has the same product_id and "
                    "store_id") for i in np.flatnonzero(repeated)]


def _unknown(frame: pd.DataFrame, lines: np.ndarray,
             known_series: KnownSeries) -> list[Problem]:
    """Rows naming a product (or a product and store) the sales history does not hold."""
    products = sorted({p for p in frame["product_id"].tolist() if p})
    known = set(known_series(products))
    known_products = {p for p, _ in known}
    found = []
    for i, (product, store) in enumerate(zip(frame["product_id"].tolist(),
                                             frame["store_id"].tolist())):
        if not product:
            continue  # already reported as missing
        if product not in known_products:
            found.append(Problem(int(lines[i]), "product_id",
                                 f"unknown product {product[:40]!r}: not in the sales history"))
        elif store and (product, store) not in known:
            found.append(Problem(int(lines[i]), "store_id",
                                 f"product {product[:40]!r} has no sales in store "
                                 f"{store[:40]!r}"))
    return found


def settings_records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """The settings in force (``SalesStore.item_settings``) as JSON rows: ``store_id``
    None for a row of every store, None for a setting not set. ``GET /items`` and
    ``restock items --format json`` both answer this."""
    rows = frame[list(HEADER)].astype(object).where(frame.notna(), None).to_dict("records")
    for row in rows:
        row["store_id"] = row["store_id"] or None
    return rows


def settings_csv(frame: pd.DataFrame) -> str:
    """The settings in force as an item upload, ready to edit in a spreadsheet and send
    back: ids formula-safe (``neutralise_formulas``, which the parser undoes, as the sales
    export's), numbers in the shortest text that reads back as the same float, empty for
    not set. ``GET /items`` (``Accept: text/csv``) and ``restock items --format csv``."""
    out = frame[list(HEADER)].copy()
    for column in ID_COLUMNS:
        out[column] = neutralise_formulas(out[column].astype(str))
    return out.to_csv(index=False, lineterminator="\n",
                      float_format=lambda v: repr(float(v)).removesuffix(".0"))
