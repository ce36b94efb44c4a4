"""The item settings in force, per series, and the policy each series is planned with.

An item settings upload (:mod:`restock.data.items`) replaces the settings as a whole and
bumps the store's ``items_version``; each version's rows are read once (one query) and a
selection's values are then numpy lookups, as :mod:`.stock` does for on hand.

Precedence, per series and per field: a value the request gave wins, then the series' own
row (product and store), then its product's row (no store), then the declared default of
:class:`restock.query.InventoryPolicy`. The order constraints and ``unit_cost`` come from
the item rows only (NaN: not set).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from restock.data.store import SalesStore
from restock.query import ITEM_COLUMNS, ITEM_POLICY_FIELDS, InventoryPolicy
from restock.snapshot import Key


@dataclass(frozen=True)
class ItemTable:
    """One items version's rows: per (product, store) and per product (every store)."""

    specific: pd.DataFrame  # rows with a store, indexed by (product_id, store_id)
    general: pd.DataFrame  # rows without one, indexed by product_id

    @classmethod
    def of(cls, frame: pd.DataFrame) -> "ItemTable":
        mine = frame["store_id"] != ""
        return cls(frame[mine].set_index(["product_id", "store_id"])[list(ITEM_COLUMNS)],
                   frame[~mine].set_index("product_id")[list(ITEM_COLUMNS)])

    def values(self, products: np.ndarray, stores: np.ndarray) -> dict[str, np.ndarray]:
        """``ITEM_COLUMNS`` -> [N] values of the series (``products[i]``, ``stores[i]``):
        the series' row where it sets the column, else its product's, else NaN."""
        count = len(products)
        at = self.specific.index.get_indexer(pd.MultiIndex.from_arrays([products, stores])) \
            if len(self.specific) else np.full(count, -1)
        of_product = self.general.index.get_indexer(products) if len(self.general) \
            else np.full(count, -1)
        out = {}
        for column in ITEM_COLUMNS:
            own = _take(self.specific[column].to_numpy(float), at)
            out[column] = np.where(np.isnan(own),
                                   _take(self.general[column].to_numpy(float), of_product), own)
        return out


def _take(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values[at]``, NaN where ``at`` is -1 (no row)."""
    return np.where(at >= 0, values[np.maximum(at, 0)] if len(values) else np.nan, np.nan)


class ItemSettingsInForce:
    """The item settings of the store's newest items version, read once per version."""

    def __init__(self, store: SalesStore) -> None:
        self.store = store
        self._table: tuple[Any, ItemTable] | None = None  # (items version, table)

    def table(self) -> ItemTable:
        version = self.store.items_version()
        current = self._table
        if current is None or current[0] != version:
            current = (version, ItemTable.of(self.store.item_settings()))
            self._table = current
        return current[1]

    def per_series(self, keys: Mapping[str, Key], positions: np.ndarray
                   ) -> dict[str, np.ndarray]:
        """The item values of the snapshot's series at table ``positions``."""
        products, stores = (np.asarray(keys[k].values, dtype=object)[
            np.asarray(keys[k].codes[positions])] for k in ("product_id", "store_id"))
        return self.table().values(products, stores)


def effective_policy(policy: InventoryPolicy, items: dict[str, np.ndarray]
                     ) -> dict[str, np.ndarray]:
    """``ITEM_POLICY_FIELDS`` -> [N] values each series is planned with: the request's
    where it gave the field, else the item's, else the declared default."""
    return {name: np.full(len(items[name]), getattr(policy, name))
            if name in policy.model_fields_set
            else np.where(np.isnan(items[name]), getattr(policy, name), items[name])
            for name in ITEM_POLICY_FIELDS}
