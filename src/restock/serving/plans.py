"""The replenishment plan: what to order today, one row per (product, store) series.

A planner's morning question covers everything at once, so the plan runs the inventory
maths of a single forecast (:func:`restock.inventory.replenishment_levels`, the same
function) on every selected series of the active version in one pass of numpy over the
memory-mapped snapshot: each row is exactly what ``POST /forecast`` answers for that one
product and store with the same policy.

- **Inventory position** is on hand + on order, each the latest stored (:mod:`.stock`);
  a series with no on order recorded has 0 on order.
- **Item settings** (:mod:`.items`): each series is planned with its own lead time,
  review period and service level where the request does not give them, and its order
  passes the supplier's constraints (:mod:`restock.orders`: moq, order multiple, caps),
  each change a warning code and a step of the row's ``explanation``.
- **ABC** ranks the selected series by value sold over the recent history window (the
  frequency's ``history_periods``): A up to 80 % of the cumulative value, B up to 95 %,
  C the rest. The value is volume x ``unit_cost`` ("revenue", ``abc_basis``) when every
  selected series has a unit cost in the item settings, else volume.
- **XYZ** classes the variability of each series' demand over the same window by its
  coefficient of variation (population standard deviation over mean): X <= 0.5 < Y <= 1.0
  < Z; a series that sold nothing is Z.
- **Warnings** are codes per row: the inventory ones of a forecast
  (``stockout_before_lead_time``, ``below_reorder_point``) and the per-series data ones
  (``short_history``, ``intermittent_demand``, ``discontinued``, ``data_gaps``,
  ``negative_forecast_clipped``, ``stockouts_in_history``); the selection-level ones of
  ``/forecast`` (``worse_than_naive``, ``high_uncertainty``, ``stale_model``) are not judged
  per row.
- **Urgency**: rows to order now first, then by the earliest projected stockout (no
  stock figure or no demand last), then product and store.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from restock import inventory, orders
from restock.calendar import frequency_of
from restock.query import STOCK_FIELDS, InventoryPolicy
from restock.serving import aggregation
from restock.serving.items import effective_policy
from restock.serving.warnings import series_flags
from restock.snapshot import Snapshot

#: cumulative volume share up to which a series is A, then B; the rest is C
ABC_CUTOFFS = (0.80, 0.95)
#: coefficient of variation up to which a series is X, then Y; the rest is Z
XYZ_CUTOFFS = (0.5, 1.0)

#: the plan's columns, in order: stable names for an ERP import (the CSV header)
COLUMNS = (
    "product_id", "store_id", "category", "order_now", "suggested_order_qty", "on_hand",
    "on_order", "inventory_position", "avg_daily_demand", "protection_interval_days",
    "demand_over_protection_interval", "safety_stock", "safety_stock_method", "reorder_point",
    "order_up_to_level",
    "days_of_cover", "stockout_date", "abc_class", "xyz_class", "demand_cv", "warnings",
    "order_qty_before_constraints", "lead_time_days", "service_level", "explanation",
)
#: what each column means (the JSON answer carries it; README and OpenAPI repeat it)
NOTES = {
    "suggested_order_qty": "order-up-to level - inventory position, then the item's "
                           "constraints (moq, order multiple, max order, max stock)",
    "on_order": "ordered, not yet received, as of the latest row with a stock figure (a "
                "blank there, or none recorded: 0)",
    "inventory_position": "on hand + on order",
    "order_up_to_level": "reorder point + order quantity (EOQ, or cover_days of demand)",
    "safety_stock_method": "normal (forecast error sigma) or empirical (intermittent demand: "
                           "quantile of the history's protection-interval sums)",
    "abc_class": f"by value over the recent history (volume x unit_cost when every series "
                 f"has one, else volume: abc_basis), cumulative share <= {ABC_CUTOFFS[0]:g} A, "
                 f"<= {ABC_CUTOFFS[1]:g} B, else C",
    "xyz_class": f"coefficient of variation of demand <= {XYZ_CUTOFFS[0]:g} X, "
                 f"<= {XYZ_CUTOFFS[1]:g} Y, else Z",
    "warnings": "warning codes (a list in JSON, separated by ';' in CSV)",
    "lead_time_days": "the series' lead time: the request's, else its item setting's, else "
                      "the default (so are review period and service level)",
    "explanation": "the order step by step (a list of {step, quantity, text} in JSON, the "
                   "texts separated by '; ' in CSV)",
}


@dataclass(frozen=True)
class Plan:
    """The plan's rows as columns (``COLUMNS`` -> [N] arrays), already in urgency order."""

    model_version: str
    frequency: str
    start: str  # ISO date of the first forecast day (day 0 of days_of_cover)
    abc_basis: str
    policy: InventoryPolicy
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["product_id"])

    def records(self) -> list[dict[str, Any]]:
        """The rows as JSON-safe dicts: floats rounded to 6 places, None for unknowns."""
        values = [_plain(name, self.columns[name]) for name in COLUMNS]
        return [dict(zip(COLUMNS, row)) for row in zip(*values)]

    def to_dict(self) -> dict[str, Any]:
        """``GET /plan``'s JSON answer."""
        return {"model_version": self.model_version, "frequency": self.frequency,
                "start": self.start, "series": len(self), "abc_basis": self.abc_basis,
                "policy": self.policy.model_dump(exclude=STOCK_FIELDS), "notes": NOTES,
                "rows": self.records()}

    def csv(self) -> str:
        """The rows as CSV with the ``COLUMNS`` header (empty cells for unknowns)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in self.records():
            writer.writerow(_cell(name, v) for name, v in row.items())
        return out.getvalue()


def _cell(name: str, value: Any) -> Any:
    """A CSV cell: empty for unknown, yes/no for order_now, ';'-joined warning codes, the
    explanation's texts."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "explanation":
        return orders.explanation_text(value)
    return ";".join(value) if isinstance(value, list) else value


def _plain(name: str, values: np.ndarray) -> list[Any]:
    """One column as JSON values (``tolist`` is the fast path)."""
    if values.dtype.kind == "f":
        isfinite = math.isfinite
        return [round(v, 6) if isfinite(v) else None for v in values.tolist()]
    if name == "order_now":  # None where the stock is unknown
        return [None if v < 0 else bool(v) for v in values.tolist()]
    if name == "warnings":
        return [v.split(";") if v else [] for v in values.tolist()]
    if name == "explanation":
        return values.tolist()
    return [v or None for v in values.tolist()] if name == "stockout_date" else values.tolist()


def build(model_version: str, snapshot: Snapshot, positions: np.ndarray, steps: int,
          policy: InventoryPolicy, on_hand: np.ndarray, on_order: np.ndarray,
          items: dict[str, np.ndarray]) -> Plan:
    """The plan of the series at table ``positions`` over the first ``steps`` forecast
    periods, with their stock ``on_hand`` (NaN: unknown) and ``on_order`` (NaN: none
    recorded) and their item settings ``items`` (``ITEM_COLUMNS`` -> [N], NaN: not set)."""
    rows = np.asarray(snapshot.table_rows[positions])
    frequency = frequency_of(snapshot.freq)
    period_days = frequency.days_per_period
    paths = inventory.spread_over_days(snapshot.forecast["yhat"][rows, :steps],
                                       np.diff(snapshot.days[:steps + 1]))
    history = np.asarray(snapshot.history[rows])
    # what ABC, XYZ, the warnings and the empirical method judge: demand, not a stockout's
    # zero (the error sigma's fallback keeps the sales, as a forecast's does)
    recent = snapshot.demand(rows)[:, -frequency.history_periods:]
    settings = effective_policy(policy, items)
    sigma_period = aggregation.error_sigmas(
        aggregation.series_residuals(snapshot, rows), history, snapshot.backtest_steps,
        settings["lead_time_days"] / period_days)
    ordered = np.nan_to_num(on_order, nan=0.0)
    levels = inventory.replenishment_levels(
        paths, sigma_period / math.sqrt(period_days), on_hand,
        **{**policy.model_dump(exclude=STOCK_FIELDS), **settings}, on_order=ordered,
        history=recent, days_per_period=period_days)
    constrained = orders.constrain(
        levels["suggested_order_qty"], levels["inventory_position"], moq=items["moq"],
        order_multiple=items["order_multiple"], max_order_qty=items["max_order_qty"],
        max_stock=items["max_stock"])
    known = ~np.isnan(on_hand)
    cover = levels["days_of_cover"]
    stockout = np.where(known & (cover <= inventory.MAX_COVER_DAYS),
                        np.datetime64(snapshot.dates[0], "D")
                        + np.floor(np.clip(np.nan_to_num(cover, nan=0.0), 0,
                                           inventory.MAX_COVER_DAYS)).astype("timedelta64[D]"),
                        np.datetime64("NaT"))
    cv = variation(recent)
    volume = np.nansum(recent, axis=1)
    unit_cost = items["unit_cost"]
    by_value = bool(len(rows)) and bool(np.isfinite(unit_cost).all())
    explained = np.empty(len(rows), dtype=object)
    for i, steps_of_row in enumerate(orders.explanations(
            levels, constrained, {**settings, "cover_days": policy.cover_days,
                                  "target_fill_rate": policy.target_fill_rate}, on_hand,
            ordered)):
        explained[i] = steps_of_row
    columns: dict[str, np.ndarray] = {
        **{key: snapshot.keys[key].values[np.asarray(snapshot.keys[key].codes[positions])]
           for key in ("product_id", "store_id", "category")},
        # -1: unknown stock, then no decision (None in the answer)
        "order_now": np.where(known, levels["order_now"].astype(np.int8), -1),
        "suggested_order_qty": np.where(known, constrained.quantity, np.nan),
        "on_hand": on_hand, "on_order": ordered,
        "inventory_position": levels["inventory_position"],
        "avg_daily_demand": levels["avg_daily_demand"],
        "protection_interval_days": settings["lead_time_days"] + settings["review_period_days"],
        "demand_over_protection_interval": levels["demand_over_protection_interval"],
        "safety_stock": levels["safety_stock"],
        "safety_stock_method": levels["safety_stock_method"],
        "reorder_point": levels["reorder_point"],
        "order_up_to_level": levels["max_level"], "days_of_cover": cover,
        "stockout_date": np.where(np.isnat(stockout), "", stockout.astype(str)),
        "abc_class": abc_classes(volume * unit_cost if by_value else volume),
        "xyz_class": xyz_classes(cv), "demand_cv": cv,
        "warnings": _warnings(snapshot, rows, recent, levels, constrained, settings),
        "order_qty_before_constraints": np.where(known, constrained.raw, np.nan),
        "lead_time_days": settings["lead_time_days"], "service_level": settings["service_level"],
        "explanation": explained,
    }
    urgency = np.lexsort((columns["store_id"], columns["product_id"],
                          np.where(np.isnan(cover) | ~known, np.inf, cover),
                          columns["order_now"] != 1))
    return Plan(model_version, snapshot.freq, snapshot.dates[0],
                "revenue" if by_value else "volume", policy,
                {name: np.asarray(values)[urgency] for name, values in columns.items()})


def abc_classes(value: np.ndarray) -> np.ndarray:
    """A/B/C by each item's share of the total ``value`` (``ABC_CUTOFFS``): the items that
    make up the first 80 % are A (the item crossing 80 % included), then B to 95 %."""
    order = np.argsort(-value, kind="stable")
    total = float(value.sum())
    before = np.empty(len(value))
    before[order] = (np.cumsum(value[order]) - value[order]) / total if total > 0 else 1.0
    classes = np.where(before < ABC_CUTOFFS[0], "A", np.where(before < ABC_CUTOFFS[1], "B", "C"))
    return np.where(value > 0, classes, "C")


def xyz_classes(cv: np.ndarray) -> np.ndarray:
    """X/Y/Z by coefficient of variation (``XYZ_CUTOFFS``); unknown (no sales) is Z."""
    return np.where(cv <= XYZ_CUTOFFS[0], "X", np.where(cv <= XYZ_CUTOFFS[1], "Y", "Z"))


def variation(history: np.ndarray) -> np.ndarray:
    """Each row's standard deviation over its mean, ignoring periods before it started;
    NaN when it never sold."""
    observed = (~np.isnan(history)).sum(axis=1)
    with np.errstate(all="ignore"):  # rows without sales: NaN, classed Z
        mean = np.nansum(history, axis=1) / observed
        spread = np.sqrt(np.nansum((history - mean[:, None]) ** 2, axis=1) / observed)
        return np.where(mean > 0, spread / mean, np.nan)


def _warnings(snapshot: Snapshot, rows: np.ndarray, recent: np.ndarray,
              levels: dict[str, np.ndarray], constrained: orders.ConstrainedOrders,
              settings: dict[str, np.ndarray]) -> np.ndarray:
    """Each row's warning codes, joined by ';' (the same rules as a forecast's)."""
    data = series_flags(snapshot, rows)
    flags = {
        "stockout_before_lead_time": levels["days_of_cover"] < settings["lead_time_days"],
        "below_reorder_point": levels["inventory_position"] < levels["reorder_point"],
        "short_history": data.pop("short_history"),
        "intermittent_demand": inventory.intermittent(recent),
        **data,
        **constrained.changed,
    }
    codes = np.full(len(rows), "", dtype=object)
    for code, flagged in flags.items():
        codes[flagged] = codes[flagged] + (code + ";")
    return np.array([c[:-1] for c in codes.tolist()], dtype=object)
