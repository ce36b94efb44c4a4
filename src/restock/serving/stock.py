"""A selection's stock now: the latest recorded ``on_hand`` (and ``on_order``, stock ordered
and not yet received) per (product, store).

The store changes only through applied uploads, so its ``data_version`` (one indexed
``max``) names what it holds. Each data version's latest stock per (product, store,
category) is read once (one query) into arrays; a selection's sum is then numpy on them,
memoised per (data version, filters), so a new upload shows on the very next request in
any process and no request runs pandas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from restock.data.store import Filter, SalesStore, as_list
from restock.snapshot import KEYS, Key

#: cached (data version, filters) -> on_hand entries before the cache starts over
_CACHED = 10_000
_MISSING = object()


@dataclass(frozen=True)
class StockLevels:
    """One data version's latest stock rows of one column (``on_hand`` or ``on_order``),
    sorted by date (stable), as arrays."""

    codes: dict[str, np.ndarray]  # KEYS -> code of each row
    lookup: dict[str, dict[str, int]]  # KEYS -> value -> code
    pair: np.ndarray  # (product, store) code of each row
    figures: np.ndarray  # the column's figures

    @classmethod
    def of(cls, frame: pd.DataFrame, figure: str = "on_hand") -> "StockLevels":
        frame = frame.sort_values("date", kind="stable")
        codes, lookup = {}, {}
        for column in KEYS:
            codes[column], values = pd.factorize(frame[column], sort=False)
            lookup[column] = {str(v): i for i, v in enumerate(values)}
        pair = codes["product_id"].astype(np.int64) * (len(lookup["store_id"]) + 1) \
            + codes["store_id"]
        return cls(codes, lookup, pair, frame[figure].to_numpy(float))

    def total(self, filters: dict[str, tuple[str, ...] | None]) -> float | None:
        """Sum over the (product, store)s whose rows match the filters of each one's latest
        matching stock; None when no row matches."""
        mask = np.ones(len(self.figures), dtype=bool)
        for column, wanted in filters.items():
            if wanted is not None:
                known = [self.lookup[column][w] for w in wanted if w in self.lookup[column]]
                mask &= np.isin(self.codes[column], known)
        matched = np.flatnonzero(mask)
        if not matched.size:
            return None
        # the last row of each (product, store) in date order, kept in that order
        _, last_reversed = np.unique(self.pair[matched][::-1], return_index=True)
        latest = np.sort(matched[len(matched) - 1 - last_reversed])
        return float(self.figures[latest].sum())


    def per_series(self, keys: Mapping[str, Key], positions: np.ndarray) -> np.ndarray:
        """The latest stock of the snapshot's series at table ``positions``, NaN where none
        is recorded: per (product, store) the figure :meth:`total` gives when asked for
        that one product and store (a plan's on hand)."""
        if not len(self.pair):
            return np.full(len(positions), np.nan)
        _, last_reversed = np.unique(self.pair[::-1], return_index=True)
        latest = len(self.pair) - 1 - last_reversed
        known = self.pair[latest]  # ascending, as np.unique returns it

        def codes(column: str) -> np.ndarray:  # snapshot value code -> stock value code
            lookup = self.lookup[column]
            here = np.array([lookup.get(v, -1) for v in keys[column].values.tolist()] + [-1])
            return here[np.asarray(keys[column].codes[positions])]  # -1 (missing) -> -1

        product, store = codes("product_id"), codes("store_id")
        wanted = product.astype(np.int64) * (len(self.lookup["store_id"]) + 1) + store
        at = np.minimum(np.searchsorted(known, wanted), len(known) - 1)
        found = (product >= 0) & (store >= 0) & (known[at] == wanted)
        return np.where(found, self.figures[latest[at]], np.nan)


def filter_key(value: Filter) -> tuple[str, ...] | None:
    """A hashable filter, as the store reads it: None is no filter, [] matches nothing."""
    values = as_list(value)
    return None if values is None else tuple(values)


class StockOnHand:
    """Latest stock per selection, following the store's data version."""

    def __init__(self, store: SalesStore) -> None:
        self.store = store
        # column -> (data version, levels)
        self._levels: dict[str, tuple[Any, StockLevels]] = {}
        self._memo: dict[Any, float | None] = {}

    def data_version(self) -> Any:
        return self.store.data_version()

    def levels(self, data_version: Any, column: str = "on_hand") -> StockLevels:
        """The latest ``column`` rows of ``data_version``, read once per version."""
        current = self._levels.get(column)
        if current is None or current[0] != data_version:
            current = (data_version, StockLevels.of(self.store.stock_snapshot(column), column))
            if any(held[0] != data_version for held in self._levels.values()):
                self._levels = {}
                self._memo = {}  # entries of older versions are never asked for again
            self._levels[column] = current
        return current[1]

    def latest(self, data_version: Any, product_id: Filter, store_id: Filter,
               category: Filter, column: str = "on_hand") -> float | None:
        """The selection's ``column`` now, from the snapshot of ``data_version``."""
        filters = dict(zip(KEYS, map(filter_key, (product_id, store_id, category))))
        key = (data_version, column, *filters.values())
        cached = self._memo.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
        value = self.levels(data_version, column).total(filters)
        if len(self._memo) >= _CACHED:
            self._memo = {}
        self._memo[key] = value
        return value
