"""The data and model warnings of one selection's forecast (inventory ones are in
:func:`restock.inventory.inventory_warnings`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from restock.calendar import frequency_of
from restock.inventory import intermittent, make_warning
from restock.serving.aggregation import Aggregate
from restock.snapshot import Snapshot

SHORT_HISTORY_SEASONS = 2
GAP_SHARE_WARNING = 0.05
HIGH_UNCERTAINTY_RATIO = 1.0


def judged_history(snapshot: Snapshot, aggregate: Aggregate) -> tuple[np.ndarray, np.ndarray]:
    """The recent history the warnings judge (the frequency's ``history_periods`` since
    the selection started): positions in ``snapshot.history_dates`` and quantities."""
    started = np.flatnonzero(~np.isnan(aggregate.history))
    at = started[len(started) - min(frequency_of(snapshot.freq).history_periods,
                                    len(started)):]
    return at, np.asarray(aggregate.history[at], dtype=float)


def series_flags(snapshot: Snapshot, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The per-series data warnings of ``rows`` as flags [N], one rule each: a forecast
    counts them over its selection, a plan row lists the codes of its own."""
    stats = snapshot.stats
    season = frequency_of(snapshot.freq).season_length
    return {
        "short_history": stats["n_obs"][rows] < SHORT_HISTORY_SEASONS * season,
        "discontinued": np.asarray(stats["discontinued"][rows], bool),
        "data_gaps": stats["gap_share"][rows] > GAP_SHARE_WARNING,
        "negative_forecast_clipped": np.asarray(stats["clipped"][rows], bool),
        "stockouts_in_history": np.asarray(stats["stockouts"][rows]) > 0,
    }


def selection_warnings(snapshot: Snapshot, meta: Mapping[str, Any], rows: np.ndarray,
                       aggregate: Aggregate, history: np.ndarray, data_version: Any,
                       interval_level: float) -> list[dict[str, str]]:
    """Short or intermittent history, a forecast worse than naive, discontinued or gappy
    series, stockouts in the history, a model older than the data, clipped members, a very
    wide interval."""
    found = []
    selected = len(rows)
    stats = snapshot.stats
    season = frequency_of(snapshot.freq).season_length
    flags = series_flags(snapshot, rows)
    short = int(flags["short_history"].sum())
    if short:
        found.append(make_warning(
            "short_history", "warning",
            f"{short} of {selected} selected series have less than "
            f"{SHORT_HISTORY_SEASONS * season} periods of history; their forecasts lean on "
            "simple fallbacks"))
    if intermittent(history[None, :])[0]:  # the series planned by the empirical method
        found.append(make_warning(
            "intermittent_demand", "info",
            "demand is zero in most periods; expect lumpy sales around a flat average "
            "forecast"))
    mase = _mase(aggregate.residual, history, season)
    if mase is not None and mase >= 1:
        found.append(make_warning(
            "worse_than_naive", "warning",
            f"on the backtest this forecast was no better than repeating last season "
            f"(MASE {mase:.2f})"))
    gone = int(flags["discontinued"].sum())
    if gone:
        found.append(make_warning(
            "discontinued", "info",
            f"{gone} of {selected} selected series have not sold for over a year; their "
            "forecasts are near zero"))
    trained_seq = meta.get("last_upload_seq")
    if data_version is not None and trained_seq is not None and data_version > trained_seq:
        found.append(make_warning(
            "stale_model", "info",
            "sales data newer than this model has been uploaded; retrain to use it"))
    gappy = int(flags["data_gaps"].sum())
    if gappy:
        found.append(make_warning(
            "data_gaps", "info",
            f"{gappy} selected series have missing periods, counted as zero sales"))
    found += stockout_warnings(stats["stockouts"][rows])
    if flags["negative_forecast_clipped"].any():
        found.append(make_warning(
            "negative_forecast_clipped", "info",
            "some member forecasts went below zero and were clipped at 0"))
    point = aggregate.point
    mean = float(np.mean(point["yhat"]))
    spread = float(np.mean(point["yhat_upper"] - point["yhat_lower"])) / 2
    if mean > 0 and spread / mean > HIGH_UNCERTAINTY_RATIO:
        found.append(make_warning(
            "high_uncertainty", "warning",
            f"the {interval_level:.0%} interval is wider than the forecast itself; plan "
            "with the upper bound in mind"))
    return found


def stockout_warnings(stockouts: np.ndarray) -> list[dict[str, str]]:
    """``stockouts_in_history`` when the selected series' history has periods that ended
    out of stock (``stockouts``: per selected row, the total's counting all its series):
    their sales understate demand, so training imputed it (``restock.data.censoring``)."""
    periods = int(np.sum(stockouts))
    if not periods:
        return []
    return [make_warning(
        "stockouts_in_history", "warning",
        f"{periods} period{'s' if periods != 1 else ''} of the selected sales history ended "
        "out of stock; their sales show what was on the shelf, not demand, so training "
        "used an estimate of the demand instead")]


def _mase(residuals: np.ndarray, history: np.ndarray, lag: int) -> float | None:
    """Backtest MASE of the selection: mean absolute residual over the seasonal-naive
    error of its recent history (None when either is unknown)."""
    if not np.isfinite(residuals).any() or len(history) <= lag:
        return None
    scale = float(np.mean(np.abs(history[lag:] - history[:-lag])))
    return float(np.nanmean(np.abs(residuals)) / scale) if scale > 0 else None
