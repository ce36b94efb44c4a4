"""ForecastService: answers from the active model version's precomputed forecasts.

Every series' forecast, interval and backtest residuals were computed at retrain time and
written as a memory-mapped snapshot (:mod:`restock.snapshot`), so a request selects rows
(:mod:`.selection`), sums arrays (:mod:`.aggregation`), plans inventory on a daily path
(:mod:`restock.inventory`) and adds warnings (:mod:`.warnings`): numpy only, no pandas
unless a plot is asked for (:mod:`.plots`). The service follows the registry's ``current``
pointer with one ``stat`` per call, so every web worker follows a rollback.

Per request the database work is one indexed ``max(seq)`` over the uploads table
(:mod:`.stock`), which drives the ``stale_model`` warning and keys the stock levels, and
one over the item settings uploads (:mod:`.items`), which keys the item settings.

Item settings apply to one series at a time: a ``/forecast`` of one (product, store)
series is planned with its settings and constraints, exactly as its ``/plan`` row; a
forecast of several series summed (a store, a category, the total) has no one lead time
or case pack, so it is planned with the request's policy and the declared defaults only.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from restock import inventory, orders, snapshot
from restock.config import Settings
from restock.calendar import frequency_of, horizon_steps
from restock.data.store import SalesStore
from restock.errors import InvalidParameterError, ModelNotFoundError, NoModelError
from restock.query import ITEM_COLUMNS, STOCK_FIELDS, ForecastQuery, InventoryPolicy
from restock.registry import ModelRegistry
from restock.serving import aggregation, plans, selection, warnings
from restock.serving.items import ItemSettingsInForce, effective_policy
from restock.serving.plots import PlotStore, title_of
from restock.serving.stock import StockOnHand
from restock.snapshot import MEMBER_COLUMNS, Snapshot

_FORECAST_KEYS = ("date", "yhat", "yhat_lower", "yhat_upper", *MEMBER_COLUMNS)


class LoadedModel:
    """The active version: its id, ``meta.json`` and memory-mapped snapshot."""

    def __init__(self, version: str, meta: dict[str, Any], arrays: Snapshot) -> None:
        self.version = version
        self.meta = meta
        self.snapshot = arrays
        self.freq = arrays.freq

    @classmethod
    def read(cls, registry: ModelRegistry, version: str) -> "LoadedModel":
        """Check the version's files (see ``ModelRegistry.check``) and map its snapshot."""
        meta = registry.check(version)
        return cls(version, meta, snapshot.load(registry.path(version), meta))


class ForecastService:
    """Forecasts and inventory plans for any selection of series, from the active model."""

    def __init__(self, settings: Settings, store: SalesStore, registry: ModelRegistry) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.stock = StockOnHand(store)
        self.items = ItemSettingsInForce(store)
        self.plots = PlotStore(settings.plots_dir)
        self._model: LoadedModel | None = None
        self._stamp: int | None = None
        self._lock = threading.Lock()

    # -- the active model ----------------------------------------------------------------

    def model(self) -> LoadedModel:
        """The active version, reloaded when ``current`` has moved since the last call."""
        stamp = self.registry.pointer_stamp()
        if stamp is None:
            raise NoModelError("no model has been trained yet: upload sales data to /retrain")
        if self._model is None or stamp != self._stamp:
            with self._lock:
                if self._model is None or stamp != self._stamp:
                    version = self.registry.current()
                    if version is None:
                        raise NoModelError("no model has been trained yet")
                    if self._model is None or self._model.version != version:
                        self._model = LoadedModel.read(self.registry, version)
                    self._stamp = stamp
        return self._model

    def health(self) -> dict[str, Any]:
        """What ``GET /`` reports: the active version and what it was trained on."""
        try:
            model = self.model()
        except (NoModelError, ModelNotFoundError):
            # a damaged ``current`` still gets a health answer (and the log has the cause)
            return {"model_version": None, "trained_at": None, "rows": None, "series": None}
        meta = model.meta
        return {"model_version": model.version, "trained_at": meta.get("trained_at"),
                "rows": meta.get("rows"), "series": meta.get("series")}

    # -- the forecast --------------------------------------------------------------------

    def forecast(self, query: ForecastQuery = ForecastQuery(),
                 policy: InventoryPolicy = InventoryPolicy()) -> dict[str, Any]:
        """The forecast, inventory plan and warnings for one selection, as the API returns it.

        Both arguments are validated declarations (:mod:`restock.query`), so their bounds
        hold here. ``query.history`` is how many of the latest periods of history the answer
        carries (at most the frequency's recent window, ``Frequency.history_periods``, which
        the warnings and the plot judge whatever is asked).
        """
        product_id, store_id, category = query.product_id, query.store_id, query.category
        model = self.model()
        arrays = model.snapshot
        steps = self._steps(arrays, query.days, query.periods)
        chosen = selection.select(arrays, product_id, store_id, category)
        level = self.settings.interval_level
        result = aggregation.aggregate(arrays, chosen.rows, chosen.group, steps, level)
        period_days = frequency_of(model.freq).days_per_period
        items = self._one_series_items(arrays, chosen)
        policy = policy.model_copy(update={
            name: float(values[0]) for name, values in effective_policy(policy, items).items()})
        sigma_period = aggregation.error_sigma(result, arrays.backtest_steps,
                                               policy.lead_time_days / period_days)
        data_version = self.stock.data_version()
        stock = {name: getattr(policy, name) for name in STOCK_FIELDS}
        for name in STOCK_FIELDS:
            if stock[name] is None:
                stock[name] = self.stock.latest(data_version, product_id, store_id, category,
                                                name)
        daily = inventory.spread_over_days(result.point["yhat"], np.diff(arrays.days[:steps + 1]))
        judged_at, judged = warnings.judged_history(arrays, result)
        # one series is judged on its demand, as its plan row is (a stockout's zero is not
        # a period without demand); a group on its sales, its stored sums
        demand = arrays.demand(chosen.rows)[0][judged_at] if len(chosen.rows) == 1 else judged
        plan = inventory.plan_for_daily_demand(
            date.fromisoformat(arrays.dates[0]), daily,
            inventory.sigma_daily_from_period(sigma_period, period_days),
            **policy.model_dump(exclude=STOCK_FIELDS), **stock,
            history=demand, days_per_period=period_days)
        plan, order, constrained = _constrained(plan, items, policy)
        found = warnings.selection_warnings(arrays, model.meta, chosen.rows, result, demand,
                                            data_version, level)
        shown = len(judged) - min(query.history, len(judged))  # the answer's part of that window
        columns = [_nums(result.point[c]) if c in result.point else [None] * steps
                   for c in _FORECAST_KEYS[1:]]
        answer: dict[str, Any] = {
            "model_version": model.version,
            "selection": {**chosen.filters,
                          "series": chosen.series_count(int(model.meta["series"]))},
            "frequency": model.freq,
            "horizon": {"periods": steps, "days": round(steps * period_days, 2)},
            "history": [{"date": arrays.history_dates[i], "quantity": q}
                        for i, q in zip(judged_at[shown:].tolist(), _nums(judged[shown:]))],
            "forecast": [dict(zip(_FORECAST_KEYS, values))
                         for values in zip(arrays.dates[:steps], *columns)],
            "inventory": {**plan.to_dict(), **order},
            "warnings": found + inventory.inventory_warnings(plan)
            + orders.constraint_warnings(constrained),
        }
        if query.plot:
            answer["plot_id"] = self.plots.render(
                title_of(arrays, chosen),
                pd.DataFrame({"date": pd.to_datetime([arrays.history_dates[i]
                                                      for i in judged_at]),
                              "quantity": judged}),
                pd.DataFrame({"date": pd.to_datetime(arrays.dates[:steps]), **result.point}),
                plan)
        return answer

    def plan(self, query: ForecastQuery = ForecastQuery(),
             policy: InventoryPolicy = InventoryPolicy()) -> plans.Plan:
        """The replenishment plan (:mod:`.plan`) of every series the query's filters select
        (every series without filters, never the total), over its horizon. Each series'
        stock is its latest stored on hand and on order, so the policy must not give one."""
        for name in sorted(STOCK_FIELDS):
            if getattr(policy, name) is not None:
                raise InvalidParameterError(
                    f"a plan takes each series' latest stored {name.replace('_', ' ')}; "
                    f"{name} is not a plan parameter", {"parameter": name})
        model = self.model()
        arrays = model.snapshot
        steps = self._steps(arrays, query.days, query.periods)
        if any((query.product_id, query.store_id, query.category)):
            positions = selection.select(arrays, query.product_id, query.store_id,
                                         query.category).positions
        else:
            positions = np.arange(len(arrays.table_rows))
        data_version = self.stock.data_version()
        on_hand, on_order = (self.stock.levels(data_version, name).per_series(arrays.keys,
                                                                               positions)
                             for name in ("on_hand", "on_order"))
        return plans.build(model.version, arrays, positions, steps, policy, on_hand, on_order,
                           self.items.per_series(arrays.keys, positions))

    def _one_series_items(self, arrays: Snapshot, chosen: selection.Selection
                          ) -> dict[str, np.ndarray]:
        """The item settings of a selection of one series ([1] arrays), all NaN for a
        selection of several (see the module docstring)."""
        if len(chosen.rows) == 1 and not chosen.is_total:
            return self.items.per_series(arrays.keys, chosen.positions)
        return {name: np.full(1, np.nan) for name in ITEM_COLUMNS}

    def plot_path(self, plot_id: str) -> Path:
        """The PNG of an earlier ``plot: true`` request."""
        return self.plots.path(plot_id)

    def all_series(self, query: ForecastQuery = ForecastQuery()) -> pd.DataFrame:
        """Every series' forecast in long form (the total excluded), for bulk export; of the
        query only the horizon counts."""
        arrays = self.model().snapshot
        steps = self._steps(arrays, query.days, query.periods)
        rows = np.asarray(arrays.table_rows)
        products, stores = (arrays.keys[k] for k in ("product_id", "store_id"))
        out = pd.DataFrame({
            "product_id": np.repeat(products.values[products.codes], steps).astype(object),
            "store_id": np.repeat(stores.values[stores.codes], steps).astype(object),
            "date": np.tile(np.array(arrays.dates[:steps], dtype=object), len(rows)),
        })
        for column in _FORECAST_KEYS[1:]:
            values = arrays.forecast.get(column)
            out[column] = values[rows, :steps].ravel() if values is not None else np.nan
        return out

    def _steps(self, arrays: Snapshot, days: int | None, periods: int | None) -> int:
        """Periods to answer: ``periods``, or ``days`` (default 30) in the data's periods;
        within the declared bounds, but no further than the version forecast."""
        available = arrays.horizon
        if periods is None:
            periods = horizon_steps(30 if days is None else days, arrays.freq)
            asked = f"{days if days is not None else 30} days"
        else:
            asked = f"{periods} periods"
        if periods > available:
            raise InvalidParameterError(
                f"{asked} is beyond the model's horizon of {available} periods; "
                "set RESTOCK_MAX_HORIZON_DAYS higher and retrain",
                {"max_periods": available})
        return periods


def _constrained(plan: inventory.InventoryPlan, items: dict[str, np.ndarray],
                 policy: InventoryPolicy
                 ) -> tuple[inventory.InventoryPlan, dict[str, Any], orders.ConstrainedOrders]:
    """A forecast's plan with its order through the item's constraints (as its plan row:
    :func:`restock.orders.constrain`), what the answer's inventory adds (the order before
    them and the explanation), and the constrained order (for the warnings)."""
    if plan.on_hand is None:
        raw = np.zeros(1)
        position = np.full(1, np.nan)
    else:
        raw, position = np.array([plan.suggested_order_qty]), np.array([plan.inventory_position])
    order = orders.constrain(raw, position, moq=items["moq"],
                             order_multiple=items["order_multiple"],
                             max_order_qty=items["max_order_qty"], max_stock=items["max_stock"])
    levels = {name: np.array([np.nan if value is None else float(value)]) for name, value in (
        ("demand_over_protection_interval", plan.demand_over_protection_interval),
        ("safety_stock", plan.safety_stock), ("reorder_point", plan.reorder_point),
        ("order_quantity", plan.order_quantity), ("eoq", plan.eoq),
        ("max_level", plan.max_level), ("inventory_position", plan.inventory_position),
        ("order_now", bool(plan.order_now)))}
    steps = orders.explanations(
        {**levels, "safety_stock_method": np.array([plan.safety_stock_method])}, order,
        {"lead_time_days": plan.lead_time_days, "review_period_days": plan.review_period_days,
         "service_level": plan.service_level, "cover_days": policy.cover_days,
         "target_fill_rate": policy.target_fill_rate},
        np.array([np.nan if plan.on_hand is None else plan.on_hand]),
        np.array([plan.on_order or 0.0]))[0]
    if plan.on_hand is not None:
        plan = replace(plan, suggested_order_qty=float(order.quantity[0]))
    return plan, {"order_qty_before_constraints": None if plan.on_hand is None
                  else round(float(raw[0]), 6),
                  "explanation": steps}, order


def _nums(values: np.ndarray) -> list[float | None]:
    """JSON numbers rounded to 4 places, None for NaN/inf (``tolist`` is the fast path)."""
    isfinite = math.isfinite
    return [round(v, 4) if isfinite(v) else None for v in np.asarray(values, float).tolist()]
