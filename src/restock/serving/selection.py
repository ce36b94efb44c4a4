"""Which series a request's filters select: rows of the snapshot, or a named error.

Filters are product ids, store ids and categories; a series is selected when it matches
every non-empty filter (any of a filter's values). No filter at all selects the total, a
series fitted on its own. An unknown value is an error naming it, with close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from restock.data.store import Filter
from restock.data.store import as_list as store_as_list
from restock.errors import UnknownSeriesError
from restock.snapshot import KEYS, Snapshot


@dataclass(frozen=True)
class Selection:
    """The selected rows (ascending) and, when the filters name exactly one value of one
    column, that (column, value code): the snapshot may hold its sums ready."""

    filters: dict[str, list[str]]  # KEYS -> the values asked for ([] = no filter)
    rows: np.ndarray
    group: tuple[str, int] | None
    is_total: bool
    positions: np.ndarray  # the rows' table positions (``Snapshot.table_rows``); total: none

    def series_count(self, total_series: int) -> int:
        return total_series if self.is_total else len(self.rows)


def as_list(value: Filter) -> list[str]:
    """A filter as a list of strings: None (no filter) is an empty list."""
    return store_as_list(value) or []


def select(snapshot: Snapshot, product_id: Filter = None, store_id: Filter = None,
           category: Filter = None) -> Selection:
    """The series matching every non-empty filter; the total when there is none."""
    filters = dict(zip(KEYS, (as_list(product_id), as_list(store_id), as_list(category))))
    asked = {column: wanted for column, wanted in filters.items() if wanted}
    if not asked:
        if snapshot.total_row < 0:
            raise UnknownSeriesError("this model version holds no total: filter by product, "
                                     "store or category", {})
        return Selection(filters, np.array([snapshot.total_row]), None, True,
                         np.zeros(0, np.int64))
    codes = {column: _codes(snapshot, column, wanted) for column, wanted in asked.items()}
    if len(asked) == 1:  # one column: its values' positions, no mask over every series
        (column, found), = codes.items()
        distinct = sorted(set(found))
        key = snapshot.keys[column]
        if len(distinct) == 1:  # a value's positions are stored ascending
            positions, group = key.positions(distinct[0]), (column, distinct[0])
        else:
            positions = np.sort(np.concatenate([key.positions(c) for c in distinct]))
            group = None
    else:  # the fewest candidates (a product's series, say), kept where the rest match
        def candidates(column: str) -> int:
            key = snapshot.keys[column]
            return sum(int(key.bounds[c + 1] - key.bounds[c]) for c in set(codes[column]))

        narrowest = min(codes, key=candidates)
        key = snapshot.keys[narrowest]
        positions = np.sort(np.concatenate([key.positions(c) for c in set(codes[narrowest])]))
        for column, found in codes.items():
            if column != narrowest:
                positions = positions[np.isin(snapshot.keys[column].codes[positions], found)]
        group = None
    if not positions.size:
        raise UnknownSeriesError("no series matches all of the given filters together", asked)
    return Selection(filters, np.asarray(snapshot.table_rows[positions]), group, False,
                     np.asarray(positions))


def _codes(snapshot: Snapshot, column: str, wanted: list[str]) -> list[int]:
    """The value codes of ``wanted``; any unknown value raises, with suggestions."""
    lookup = snapshot.keys[column].lookup
    unknown = [w for w in wanted if w not in lookup]
    if unknown:
        raise unknown_values(column, unknown, lookup)
    return [lookup[w] for w in wanted]


def unknown_values(column: str, unknown: list[str], known: Iterable[str]) -> UnknownSeriesError:
    """The error for filter values nobody has sold under: names them, suggests close ones."""
    choices = sorted(known)
    suggestions = {u: difflib.get_close_matches(u, choices, n=3) for u in unknown[:5]}
    hints = sorted({s for found in suggestions.values() for s in found})
    return UnknownSeriesError(
        f"unknown {column}: {', '.join(map(repr, unknown[:5]))}"
        + (f" (did you mean {', '.join(map(repr, hints[:5]))}?)" if hints else ""),
        {"column": column, "unknown": unknown[:20], "suggestions": suggestions})
