"""A selection's forecast as the sum of its series, with its interval and error sigma.

A group (a category, several products, the whole shop) is exactly the sum of its series;
its interval is not a sum of widths but comes from the group's own backtest errors: the
actuals and predictions of the same series are summed per backtest (cutoff, step) column
and the conformal quantile of those summed residuals gives the width
(:mod:`restock.models.intervals`). A single series keeps the interval stored with it.

A series too new to backtest has no residuals to add, yet its sales are in the group's
forecast, and its errors would be too: a category with new products would get the
interval of its older ones alone. So the width and the error sigma come from the summed
residuals scaled up by ``share``: the group's stored interval widths over those of its
backtested series (the others are taken to err as these do, in proportion to their
widths; every stored width is the catalogue's pooled scaled quantile times the series'
scale, so the share is the same at every step). A group with nothing measured to scale
(no backtested series, or only ones whose widths are zero) takes its series' stored
widths added up, and its sigma falls back to its history's spread. The residuals
themselves stay as measured: the warnings judge the backtest with them.

:func:`sum_rows` is the one definition of those sums: requests run it on their rows and the
snapshot runs it at write time for every store and category, so both give the same bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from restock.models.intervals import half_widths, sigma_per_step

if TYPE_CHECKING:
    from restock.snapshot import Snapshot

#: forecast columns recomputed for a group from its residuals rather than summed
INTERVAL_COLUMNS = ("yhat_lower", "yhat_upper")


@dataclass(frozen=True)
class Sums:
    """What a group's answer is built from, over the whole stored horizon and history."""

    forecast: dict[str, np.ndarray]  # column -> [H]; a member is NaN where a series lacks it
    residual: np.ndarray  # [B] summed actual - prediction; NaN where no series was scored
    history: np.ndarray  # [T] summed history, NaN before the first selected series starts


def sum_rows(snapshot: "Snapshot", rows: np.ndarray, steps: int | None = None) -> Sums:
    """The sums of ``rows`` (ascending rows of the snapshot's arrays), of the forecast's
    first ``steps`` periods (all when None); each period's sum is the same either way."""
    forecast = {}
    for column, values in snapshot.forecast.items():
        if column in INTERVAL_COLUMNS:
            continue
        block = values[rows, :steps]
        total = np.nansum(block, axis=0)
        if column != "yhat":  # a partial sum of a member would mislead: none at all
            total[np.isnan(block).any(axis=0)] = np.nan
        forecast[column] = total
    y = snapshot.backtest_y[rows]
    present = snapshot.backtested[rows]
    scored = ~np.isnan(y[present]).all(axis=0)  # a column no selected series was scored on
    residual = (np.where(scored, np.nansum(y[present] - snapshot.backtest_yhat[rows][present],
                                           axis=0), np.nan)
                if present.any() else np.full(len(snapshot.backtest_steps), np.nan))
    history = snapshot.history[rows]
    started = ~np.isnan(history).all(axis=0)
    return Sums(forecast, residual, np.where(started, np.nansum(history, axis=0), np.nan))


@dataclass(frozen=True)
class Aggregate:
    """One selection's forecast over ``steps`` periods, its backtest residuals, its history."""

    point: dict[str, np.ndarray]  # column -> [steps]; absent columns are not in the version
    residual: np.ndarray  # [B]
    history: np.ndarray  # [T], NaN before the selection starts
    #: what the residuals are scaled by for the width and sigma (series too new to
    #: backtest, see the module notes); NaN: nothing measured to scale
    share: float = 1.0


def aggregate(snapshot: "Snapshot", rows: np.ndarray, group: tuple[str, int] | None,
              steps: int, level: float) -> Aggregate:
    """The selection's forecast: its one series as stored, or the sums of several.

    ``group`` names a precomputed group (column, value code) whose sums are those of
    ``rows``; without one the rows are summed here.
    """
    if group is not None and group[0] in snapshot.groups:
        stored = snapshot.groups[group[0]]
        sums = Sums({c: v[group[1]] for c, v in stored.forecast.items()},
                    stored.residual[group[1]], stored.history[group[1]])
    else:
        sums = sum_rows(snapshot, rows, steps)
    if len(rows) == 1:
        point = {c: np.asarray(v[rows[0], :steps]) for c, v in snapshot.forecast.items()}
        return Aggregate(point, sums.residual, sums.history)
    point = {}
    for column, values in sums.forecast.items():
        values = np.asarray(values[:steps])
        point[column] = (np.full(steps, np.nan) if column != "yhat" and np.isnan(values).any()
                         else values)
    share = unscored_share(snapshot, rows)
    scaled = sums.residual * share
    if np.isfinite(scaled).any():
        width = half_widths(snapshot.backtest_steps, scaled, steps, level)
    else:  # nothing measured to scale: the series' own widths, added up
        width = np.nansum(_stored_widths(snapshot, rows, steps), axis=0)
    point["yhat_lower"] = np.maximum(point["yhat"] - width, 0.0)
    point["yhat_upper"] = point["yhat"] + width
    return Aggregate(point, sums.residual, sums.history, share)


def unscored_share(snapshot: "Snapshot", rows: np.ndarray) -> float:
    """The stored interval widths of ``rows`` over those of the backtested ones among them
    (1 when every one was backtested; NaN when those hold no width to scale)."""
    scored = snapshot.backtested[rows]
    if scored.all():
        return 1.0
    width = _stored_widths(snapshot, rows, 1)[:, 0]
    measured = float(np.nansum(width[scored]))
    return float(np.nansum(width)) / measured if measured > 0 else float("nan")


def _stored_widths(snapshot: "Snapshot", rows: np.ndarray, steps: int) -> np.ndarray:
    """The stored interval half-widths [rows, steps] of single series (the upper bound's
    distance from the point; the lower one is clipped at zero)."""
    forecast = snapshot.forecast
    return forecast["yhat_upper"][rows, :steps] - forecast["yhat"][rows, :steps]


def error_sigma(aggregate: Aggregate, backtest_steps: np.ndarray, lead_periods: float) -> float:
    """Forecast-error sigma per period over the lead time, from the backtest residuals
    (scaled by the aggregate's ``share``).

    A selection never backtested (too short), or with nothing measured to scale, falls
    back to the spread of its history, the seed's estimate, which is all there is to go on.
    """
    return float(error_sigmas(aggregate.residual[None, :] * aggregate.share,
                              aggregate.history[None, :],
                              backtest_steps, lead_periods)[0])


def series_residuals(snapshot: "Snapshot", rows: np.ndarray) -> np.ndarray:
    """Each row's backtest residuals [N, B] as :func:`sum_rows` gives them for that row
    alone: NaN where the series was not scored (a column it lacks, a period censored by a
    stockout), all NaN for a series never backtested."""
    return snapshot.backtest_y[rows] - snapshot.backtest_yhat[rows]


def error_sigmas(residuals: np.ndarray, history: np.ndarray, backtest_steps: np.ndarray,
                 lead_periods: float | np.ndarray) -> np.ndarray:
    """:func:`error_sigma` of many selections at once (one per row of ``residuals``
    [N, B], NaN where not scored, and ``history`` [N, T]): a plan's sigmas. The lead
    time is one for all or one per row (item settings); rows sharing a number of lead
    periods are computed together."""
    sigma = np.empty(len(residuals))
    backtested = np.isfinite(residuals).any(axis=1)
    if backtested.any():
        steps = np.maximum(1, np.ceil(np.broadcast_to(np.asarray(lead_periods, dtype=float),
                                                      (len(residuals),)))).astype(int)
        for count in np.unique(steps[backtested]).tolist():
            chosen = backtested & (steps == count)
            sigma[chosen] = np.mean(
                sigma_per_step(backtest_steps, residuals[chosen], count), axis=-1)
    if (~backtested).any():
        spread = np.nan_to_num(history[~backtested], nan=0.0)
        sigma[~backtested] = np.nanstd(spread, axis=1) if spread.shape[1] > 1 else 0.0
    return sigma
