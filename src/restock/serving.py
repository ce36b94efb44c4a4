"""ForecastService: answers from the active model version's precomputed forecasts.

The seed retrained on filtered data at request time (10-90 s per request). Here every
series' forecast, interval and backtest residuals were computed at retrain time, so a
request only selects rows and sums arrays: a group (a category, several products, the
whole shop) is exactly the sum of its series, and its interval comes from the summed
backtest residuals of those same series. The service holds the active version in memory
(the seed's GLOBAL_MODEL) and reloads it when the registry's ``current`` pointer moves,
which it checks with one ``stat`` per call, so every web worker follows a rollback.

Per request the only database work is one indexed ``max(seq)`` over the uploads table: the
store changes only through applied uploads, so that number names the data's version. It
drives the ``stale_model`` warning and keys a snapshot of every series' latest ``on_hand``
(one query per data version, shared by all selections), so a new upload shows on the very
next request, in this process or any other. The rest is numpy on arrays prepared at load.
"""

from __future__ import annotations

import difflib
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from restock import inventory
from restock.config import Settings
from restock.calendar import frequency_of, horizon_steps
from restock.data.panel import TOTAL_ID
from restock.data.store import Filter, SalesStore
from restock.errors import (
    InvalidParameterError,
    ModelNotFoundError,
    NoModelError,
    PlotNotFoundError,
    UnknownSeriesError,
)
from restock.models.intervals import interval_half_widths, residual_sigma
from restock.plotting import render_forecast_png
from restock.registry import ModelRegistry

MEMBER_COLUMNS = ("prophet", "lstm")
SHORT_HISTORY_SEASONS = 2
INTERMITTENT_ZERO_SHARE = 0.5
GAP_SHARE_WARNING = 0.05
HIGH_UNCERTAINTY_RATIO = 1.0
#: how long a rendered plot stays downloadable
PLOT_TTL_SECONDS = 3600


@dataclass
class LoadedModel:
    """One version's forecasts, residuals and history as dense per-series arrays."""

    version: str
    meta: dict[str, Any]
    freq: str
    series: pd.DataFrame  # indexed by unique_id, with product_id/store_id/category/stats
    row: dict[str, int]  # unique_id -> row in the arrays below
    dates: pd.DatetimeIndex  # forecast dates, step 1..H
    values: dict[str, np.ndarray]  # column -> [series, H]
    backtest_steps: np.ndarray  # [B] step of each backtest column
    backtest_y: np.ndarray  # [series, B] actuals (NaN where a series was not backtested)
    backtest_yhat: np.ndarray  # [series, B] ensemble predictions
    history_dates: pd.DatetimeIndex
    history: np.ndarray  # [series, T] (NaN before a series starts)
    # derived once at load, so a request only indexes arrays
    table: pd.DataFrame = field(init=False, repr=False)  # ``series`` without the total
    table_rows: np.ndarray = field(init=False, repr=False)  # row of each ``table`` series
    positions: dict[str, dict[str, np.ndarray]] = field(init=False, repr=False)
    n_obs: np.ndarray = field(init=False, repr=False)  # by row
    gap_share: np.ndarray = field(init=False, repr=False)  # by row
    discontinued: np.ndarray = field(init=False, repr=False)  # by row (older versions: False)
    dates_iso: list[str] = field(init=False, repr=False)
    history_iso: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.table = self.series.drop(index=TOTAL_ID, errors="ignore")
        self.table_rows = np.array([self.row[u] for u in self.table.index], dtype=np.intp)
        self.positions = {}
        for column in ("product_id", "store_id", "category"):
            codes, uniques = pd.factorize(self.table[column], sort=False)
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
            self.positions[column] = {value: order[bounds[i]:bounds[i + 1]]
                                      for i, value in enumerate(uniques)}
        self.n_obs = self.series["n_obs"].to_numpy()
        self.gap_share = self.series["gap_share"].to_numpy()
        self.discontinued = (self.series["discontinued"].to_numpy(bool)
                             if "discontinued" in self.series else np.zeros(len(self.series), bool))
        self.dates_iso = [d.date().isoformat() for d in self.dates]
        self.history_iso = np.array([d.date().isoformat() for d in self.history_dates],
                                    dtype=object)

    @classmethod
    def read(cls, registry: ModelRegistry, version: str) -> "LoadedModel":
        meta = registry.verify(version)
        root = registry.path(version)
        series = pd.read_parquet(root / "series.parquet").set_index("unique_id")
        row = {uid: i for i, uid in enumerate(series.index)}
        forecasts = pd.read_parquet(root / "forecasts.parquet")
        horizon = int(forecasts["step"].max())
        dates = pd.DatetimeIndex(sorted(forecasts["ds"].unique()))[:horizon]
        columns = ["yhat", "yhat_lower", "yhat_upper",
                   *[c for c in MEMBER_COLUMNS if c in forecasts]]
        values = {c: _dense(forecasts, "step", c, row, horizon) for c in columns}

        backtest = pd.read_parquet(root / "backtest.parquet")
        backtest["column"] = backtest.groupby(["cutoff", "step"]).ngroup()
        n_cols = int(backtest["column"].max()) + 1 if len(backtest) else 0
        steps = (backtest.drop_duplicates("column").sort_values("column")["step"]
                 .to_numpy(int) if n_cols else np.zeros(0, int))
        history = pd.read_parquet(root / "history.parquet")
        history_dates = pd.DatetimeIndex(sorted(history["ds"].unique()))
        history["position"] = history_dates.get_indexer(history["ds"])
        return cls(
            version=version, meta=meta, freq=meta["frequency"], series=series, row=row,
            dates=dates, values=values, backtest_steps=steps,
            backtest_y=_dense(backtest, "column", "y", row, n_cols, base=0),
            backtest_yhat=_dense(backtest, "column", "yhat", row, n_cols, base=0),
            history_dates=history_dates,
            history=_dense(history, "position", "y", row, len(history_dates), base=0),
        )


def _dense(frame: pd.DataFrame, position: str, column: str, row: dict[str, int],
           width: int, base: int = 1) -> np.ndarray:
    """Scatter a long frame into a [series, width] array, NaN where a cell is absent."""
    out = np.full((len(row), width), np.nan)
    rows = frame["unique_id"].map(row).to_numpy()
    known = ~pd.isna(rows)
    out[rows[known].astype(int), frame[position].to_numpy(int)[known] - base] = \
        frame[column].to_numpy(float)[known]
    return out


def _as_list(value: Filter) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


class ForecastService:
    """Forecasts and inventory plans for any selection of series, from the active model."""

    def __init__(self, settings: Settings, store: SalesStore, registry: ModelRegistry) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self._model: LoadedModel | None = None
        self._stamp: int | None = None
        self._lock = threading.Lock()
        self._last_sweep = 0.0
        self._snapshot: tuple[Any, pd.DataFrame] | None = None  # (data version, on_hand)
        self._on_hand: dict[Any, float | None] = {}  # (data version, filters) -> on_hand

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

    # -- selection -------------------------------------------------------------------------

    def _select(self, model: LoadedModel,
                filters: dict[str, list[str]]) -> tuple[list[str], list[int]]:
        """Series matching every non-empty filter: their ids and rows in the arrays.

        An unknown value is an error naming it, with close matches as suggestions."""
        table = model.table
        mask = np.ones(len(table), dtype=bool)
        for column, wanted in filters.items():
            if not wanted:
                continue
            positions = model.positions[column]
            unknown = [w for w in wanted if w not in positions]
            if unknown:
                known = set(table[column])
                suggestions = {u: difflib.get_close_matches(u, sorted(known), n=3)
                               for u in unknown[:5]}
                hints = sorted({s for found in suggestions.values() for s in found})
                raise UnknownSeriesError(
                    f"unknown {column}: {', '.join(map(repr, unknown[:5]))}"
                    + (f" (did you mean {', '.join(map(repr, hints[:5]))}?)" if hints else ""),
                    {"column": column, "unknown": unknown[:20], "suggestions": suggestions})
            hit = np.zeros(len(table), dtype=bool)
            for value in wanted:
                hit[positions[value]] = True
            mask &= hit
        where = np.flatnonzero(mask)
        if not where.size:
            raise UnknownSeriesError("no series matches all of the given filters together",
                                     {k: v for k, v in filters.items() if v})
        return table.index[where].tolist(), model.table_rows[where].tolist()

    # -- the forecast --------------------------------------------------------------------

    def forecast(
        self,
        days: int | None = None,
        periods: int | None = None,
        product_id: Filter = None,
        store_id: Filter = None,
        category: Filter = None,
        *,
        service_level: float = 0.95,
        lead_time_days: float = 7.0,
        lead_time_std_days: float = 0.0,
        review_period_days: float = 0.0,
        on_hand: float | None = None,
        ordering_cost: float | None = None,
        holding_cost: float | None = None,
        cover_days: float = 30.0,
        history: int = 28,
        plot: bool = False,
    ) -> dict[str, Any]:
        """The forecast, inventory plan and warnings for one selection, as the API returns it."""
        model = self.model()
        steps = self._steps(model, days, periods)
        filters = {"product_id": _as_list(product_id), "store_id": _as_list(store_id),
                   "category": _as_list(category)}
        if any(filters.values()):
            uids, rows = self._select(model, filters)
        else:
            uids, rows = [TOTAL_ID], [model.row[TOTAL_ID]]
        point = {c: np.nansum(v[rows, :steps], axis=0) if len(rows) > 1 else v[rows[0], :steps]
                 for c, v in model.values.items()}
        residuals = self._residuals(model, rows)  # the same for the interval, sigma and MASE
        if len(rows) > 1:
            for member in MEMBER_COLUMNS:
                if member in model.values and np.isnan(model.values[member][rows, :steps]).any():
                    point[member] = np.full(steps, np.nan)  # a partial sum would mislead
            width = interval_half_widths(residuals, steps, self.settings.interval_level)
            point["yhat_lower"] = np.maximum(point["yhat"] - width, 0.0)
            point["yhat_upper"] = point["yhat"] + width
        dates = model.dates[:steps]
        frame = pd.DataFrame({"date": dates, **point})

        period_days = frequency_of(model.freq).days_per_period
        sigma_period = self._sigma(model, rows, lead_time_days / period_days, residuals)
        data_version = self._data_version()
        if on_hand is None:
            on_hand = self._latest_on_hand(data_version, product_id, store_id, category)
        plan = inventory.plan_inventory(
            frame[["date", "yhat"]], inventory.sigma_daily_from_period(sigma_period, period_days),
            service_level=service_level, lead_time_days=lead_time_days,
            lead_time_std_days=lead_time_std_days, review_period_days=review_period_days,
            on_hand=on_hand, ordering_cost=ordering_cost, holding_cost=holding_cost,
            cover_days=cover_days, freq=model.freq)
        # warnings and the chart judge the same recent window whatever history is asked for
        recent_at, recent = self._history(model, rows,
                                             frequency_of(model.freq).history_periods)
        shown = min(max(history, 0), len(recent_at))
        history_at, history_values = recent_at[len(recent_at) - shown:], recent[len(recent) - shown:]
        warnings = self._warnings(model, uids, rows, frame, recent, residuals,
                                  data_version) + inventory.inventory_warnings(plan)
        columns = {c: _nums(point[c]) if c in point else [None] * steps
                   for c in ("yhat", "yhat_lower", "yhat_upper", *MEMBER_COLUMNS)}
        result: dict[str, Any] = {
            "model_version": model.version,
            "selection": {"product_id": filters["product_id"],
                          "store_id": filters["store_id"], "category": filters["category"],
                          "series": len(uids) if uids != [TOTAL_ID] else int(model.meta["series"])},
            "frequency": model.freq,
            "horizon": {"periods": steps, "days": round(steps * period_days, 2)},
            "history": [{"date": d, "quantity": q} for d, q in
                        zip(model.history_iso[history_at].tolist(), _nums(history_values))],
            "forecast": [dict(zip(_FORECAST_KEYS, values))
                         for values in zip(model.dates_iso[:steps], *columns.values())],
            "inventory": plan.to_dict(),
            "warnings": warnings,
        }
        if plot:
            history = pd.DataFrame({"date": model.history_dates[recent_at],
                                    "quantity": recent})
            result["plot_id"] = self._plot(model, uids, frame, history, plan)
        return result

    # -- what the store knows now ----------------------------------------------------------

    def _data_version(self) -> Any:
        return self.store.data_version()

    def _latest_on_hand(self, data_version: Any, product_id: Filter, store_id: Filter,
                        category: Filter) -> float | None:
        """Sum over the selected series of each one's latest stock, from a per-data-version
        snapshot of the store (read once per upload, not per request)."""
        key = (data_version, _filter_key(product_id), _filter_key(store_id),
               _filter_key(category))
        cached = self._on_hand.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
        current = self._snapshot
        if current is None or current[0] != data_version:
            current = (data_version, self.store.on_hand_snapshot())
            self._snapshot = current
            self._on_hand = {}  # entries of older versions are never asked for again
        value = _on_hand_of(current[1], product_id, store_id, category)
        if len(self._on_hand) >= _ON_HAND_CACHED:
            self._on_hand = {}
        self._on_hand[key] = value
        return value

    def all_series(self, days: int | None = None, periods: int | None = None) -> pd.DataFrame:
        """Every series' forecast in long form (the total excluded), for bulk export."""
        model = self.model()
        steps = self._steps(model, days, periods)
        table = model.series.drop(index=TOTAL_ID, errors="ignore")
        rows = [model.row[u] for u in table.index]
        out = pd.DataFrame({
            "product_id": np.repeat(table["product_id"].to_numpy(), steps),
            "store_id": np.repeat(table["store_id"].to_numpy(), steps),
            "date": np.tile(model.dates[:steps].strftime("%Y-%m-%d"), len(rows)),
        })
        for column in ("yhat", "yhat_lower", "yhat_upper", *MEMBER_COLUMNS):
            values = model.values.get(column)
            out[column] = (values[rows, :steps].ravel() if values is not None
                           else np.nan)
        return out

    def _steps(self, model: LoadedModel, days: int | None, periods: int | None) -> int:
        available = model.values["yhat"].shape[1]
        if days is not None and periods is not None:
            raise InvalidParameterError("give either days or periods, not both")
        if periods is None:
            periods = horizon_steps(30 if days is None else days, model.freq)
            asked = f"{days if days is not None else 30} days"
        else:
            asked = f"{periods} periods"
        if periods < 1 or (days is not None and days < 1):
            raise InvalidParameterError("days and periods must be at least 1")
        if periods > available:
            raise InvalidParameterError(
                f"{asked} is beyond the model's horizon of {available} periods; "
                "set RESTOCK_MAX_HORIZON_DAYS higher and retrain",
                {"max_periods": available})
        return periods

    def _residuals(self, model: LoadedModel, rows: list[int]) -> pd.DataFrame:
        """Backtest residuals of the selection's sum, per backtest (cutoff, step) column."""
        y = model.backtest_y[rows]
        yhat = model.backtest_yhat[rows]
        present = ~np.isnan(y).all(axis=1)
        residual = np.nansum(y[present] - yhat[present], axis=0) if present.any() else \
            np.full(len(model.backtest_steps), np.nan)
        return pd.DataFrame({"step": model.backtest_steps, "residual": residual})

    def _sigma(self, model: LoadedModel, rows: list[int], lead_periods: float,
               residuals: pd.DataFrame) -> float:
        """Forecast-error sigma per period over the lead time, from backtest residuals.

        Series never backtested (too short) fall back to the spread of their history,
        the seed's estimate, which is all there is to go on.
        """
        if residuals["residual"].notna().any():
            steps = max(1, math.ceil(lead_periods))
            return float(np.mean(residual_sigma(residuals, steps)))
        history = np.nansum(model.history[rows], axis=0)
        return float(np.nanstd(history)) if history.size > 1 else 0.0

    def _history(self, model: LoadedModel, rows: list[int],
                 periods: int) -> tuple[np.ndarray, np.ndarray]:
        """The selection's last ``periods`` of history: positions in ``history_dates`` and
        quantities (all the version holds when it holds fewer)."""
        values = model.history[rows]
        started = ~np.isnan(values).all(axis=0)
        total = np.nansum(values, axis=0)[started]
        return np.flatnonzero(started)[-periods:], total[-periods:]

    def _warnings(self, model: LoadedModel, uids: list[str], rows: list[int],
                  frame: pd.DataFrame, history: np.ndarray, residuals: pd.DataFrame,
                  data_version: Any) -> list[dict[str, str]]:
        warn = inventory.make_warning
        found = []
        season = frequency_of(model.freq).season_length
        short = int((model.n_obs[rows] < SHORT_HISTORY_SEASONS * season).sum())
        if short:
            found.append(warn("short_history", "warning",
                              f"{short} of {len(uids)} selected series have less than "
                              f"{SHORT_HISTORY_SEASONS * season} periods of history; their "
                              "forecasts lean on simple fallbacks"))
        if len(history) and float((history == 0).mean()) > INTERMITTENT_ZERO_SHARE:
            found.append(warn("intermittent_demand", "info",
                              "demand is zero in most periods; expect lumpy sales around a "
                              "flat average forecast"))
        mase = self._mase(model, residuals, history)
        if mase is not None and mase >= 1:
            found.append(warn("worse_than_naive", "warning",
                              f"on the backtest this forecast was no better than repeating "
                              f"last season (MASE {mase:.2f})"))
        gone = int(model.discontinued[rows].sum())
        if gone:
            found.append(warn("discontinued", "info",
                              f"{gone} of {len(uids)} selected series have not sold for over a "
                              "year; their forecasts are near zero"))
        trained_seq = model.meta.get("last_upload_seq")
        if data_version is not None and trained_seq is not None and data_version > trained_seq:
            found.append(warn("stale_model", "info",
                              "sales data newer than this model has been uploaded; retrain "
                              "to use it"))
        gappy = int((model.gap_share[rows] > GAP_SHARE_WARNING).sum())
        if gappy:
            found.append(warn("data_gaps", "info",
                              f"{gappy} selected series have missing periods, counted as "
                              "zero sales"))
        clipped = model.meta.get("clipped", {})
        if any(clipped.get(u, 0) for u in uids):
            found.append(warn("negative_forecast_clipped", "info",
                              "some member forecasts went below zero and were clipped at 0"))
        mean = float(frame["yhat"].mean())
        spread = float((frame["yhat_upper"] - frame["yhat_lower"]).mean()) / 2
        if mean > 0 and spread / mean > HIGH_UNCERTAINTY_RATIO:
            found.append(warn("high_uncertainty", "warning",
                              f"the {self.settings.interval_level:.0%} interval is wider than "
                              "the forecast itself; plan with the upper bound in mind"))
        return found

    def _mase(self, model: LoadedModel, residual_frame: pd.DataFrame,
              history: np.ndarray) -> float | None:
        residuals = residual_frame["residual"].to_numpy()
        values = history.astype(float)
        lag = frequency_of(model.freq).season_length
        if not np.isfinite(residuals).any() or len(values) <= lag:
            return None
        scale = float(np.mean(np.abs(values[lag:] - values[:-lag])))
        return float(np.nanmean(np.abs(residuals)) / scale) if scale > 0 else None

    # -- plots ---------------------------------------------------------------------------

    def _plot(self, model: LoadedModel, uids: list[str], frame: pd.DataFrame,
              history: pd.DataFrame, plan: inventory.InventoryPlan) -> str:
        if uids == [TOTAL_ID]:
            title = "All products"
        else:
            info = model.series.loc[uids]
            names = sorted(set(info["product_id"]))
            title = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3
                                            else "")
            stores = sorted(set(info["store_id"]) - {""})
            if stores:
                title += " @ " + ", ".join(stores[:3]) + ("..." if len(stores) > 3 else "")
        png = render_forecast_png(history, frame, title=f"Demand forecast: {title}",
                                  reorder_point=plan.reorder_point,
                                  safety_stock=plan.safety_stock)
        plot_id = uuid.uuid4().hex
        folder = self.settings.plots_dir
        folder.mkdir(parents=True, exist_ok=True)
        self._sweep_plots(folder)
        (folder / f"{plot_id}.png").write_bytes(png)
        latest = folder / f".forecast_plot.{plot_id}.tmp"
        latest.write_bytes(png)
        latest.replace(folder / "forecast_plot.png")  # the seed's "latest plot" file
        return plot_id

    def _sweep_plots(self, folder: Path) -> None:
        """Delete plots older than ``PLOT_TTL_SECONDS`` (at most one sweep a minute): every
        ``plot: true`` request writes a PNG, and a busy server must not fill its disk."""
        now = time.time()
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        for path in folder.glob("*.png"):
            try:
                expired = path.stat().st_mtime < now - PLOT_TTL_SECONDS
                if expired and path.name != "forecast_plot.png":
                    path.unlink()
            except FileNotFoundError:
                continue  # another worker swept it first

    def plot_path(self, plot_id: str) -> Path:
        """The PNG of an earlier request; ids are server-made hex, anything else is unknown."""
        if len(plot_id) != 32 or any(c not in "0123456789abcdef" for c in plot_id):
            raise PlotNotFoundError(f"no plot {plot_id!r}")
        path = self.settings.plots_dir / f"{plot_id}.png"
        if not path.exists():
            raise PlotNotFoundError(f"no plot {plot_id!r}")
        return path


def _nums(values: np.ndarray) -> list[float | None]:
    """JSON numbers rounded to 4 places, None for NaN/inf (``tolist`` is the fast path)."""
    isfinite = math.isfinite
    return [round(v, 4) if isfinite(v) else None for v in np.asarray(values, float).tolist()]


_FORECAST_KEYS = ("date", "yhat", "yhat_lower", "yhat_upper", *MEMBER_COLUMNS)
_MISSING = object()
#: cached (data version, filters) -> on_hand entries before the cache starts over
_ON_HAND_CACHED = 10_000
def _filter_key(value: Filter) -> tuple[str, ...] | None:
    """A hashable filter, as the store reads it: None is no filter, [] matches nothing."""
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def _on_hand_of(snapshot: pd.DataFrame, product_id: Filter, store_id: Filter,
                category: Filter) -> float | None:
    """Per (product, store) among the snapshot rows the filters match, the latest stock."""
    mask = np.ones(len(snapshot), dtype=bool)
    for column, value in (("product_id", product_id), ("store_id", store_id),
                          ("category", category)):
        wanted = _filter_key(value)
        if wanted is not None:
            mask &= snapshot[column].isin(wanted).to_numpy()
    matched = snapshot[mask]
    if matched.empty:
        return None
    latest = matched.sort_values("date", kind="stable").drop_duplicates(
        ["product_id", "store_id"], keep="last")
    return float(latest["on_hand"].sum())
