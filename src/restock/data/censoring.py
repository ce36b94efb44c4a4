"""Stockouts: periods whose sales show what was on the shelf, not what was wanted.

A period that ended with no stock (its last recorded ``on_hand`` is 0 or less) sold at
most what was there: its sales are a lower bound of demand, not demand. Learning those
zeros as demand teaches every model that the item sells less than it does, and the next
plan orders less, so the next stockout is likelier: the error feeds itself.

Such a period is **censored**, and only where ``on_hand`` was recorded for that series in
that period (a series without stock figures has no censored period: nothing is known).

The models get an **imputed** demand for it rather than a gap: statsforecast's models need
a regular series without missing values, mlforecast's lags and rolling means would spread
a gap over the following rows, and the LSTM windows the series; a value filled in before
fitting is handled the same way by every member. The value (:func:`impute_demand`) is the
mean of the uncensored periods at the same position of the season (same weekday for daily
data, same month for monthly) within ``SEASONS_AROUND`` seasons either side; without any,
the mean of the uncensored periods within a season either side; without any, the mean of
all uncensored periods of the series; and never less than what was sold. Neighbours after
the period count too: this fills history, it does not forecast. The backtest does not
score any member on a censored period (``restock.models.ensemble``): its recorded sales
are not the demand a forecast should have hit, and its imputed value is our own guess.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: the long panel's flag of censored periods (present only when some period is censored)
CENSORED = "censored"
#: the long panel's recorded sales, where ``y`` holds the imputed demand (same condition)
SALES = "sales"
#: seasons either side whose same-position periods impute a censored one
SEASONS_AROUND = 2


def stockout_periods(data: pd.DataFrame, calendar: pd.DatetimeIndex,
                     columns: pd.Index) -> pd.DataFrame:
    """[periods x series] True where a series' period ended with no stock.

    ``data`` has ``unique_id``, ``ds`` (the period), ``date`` (the day) and ``on_hand``
    (NaN: not recorded). The period's end stock is its latest recorded ``on_hand``, so a
    weekly period is censored when the last stock figure of the week is zero.
    """
    empty = pd.DataFrame(False, index=calendar, columns=columns)
    if "on_hand" not in data:
        return empty
    recorded = data.loc[data["on_hand"].notna(), ["unique_id", "ds", "date", "on_hand"]]
    if recorded.empty:
        return empty
    last = (recorded.sort_values("date", kind="stable")
            .groupby(["unique_id", "ds"], sort=False)["on_hand"].last())
    ended_empty = (last <= 0).unstack("unique_id", fill_value=False)
    return ended_empty.reindex(index=calendar, columns=columns, fill_value=False).astype(bool)


def impute_demand(values: np.ndarray, censored: np.ndarray, season: int) -> np.ndarray:
    """``values`` [periods x series] (NaN before a series starts) with each censored period
    replaced by its estimated demand (see the module docstring), never below its sales."""
    values = np.asarray(values, dtype=float)
    censored = np.asarray(censored, dtype=bool) & ~np.isnan(values)
    if not censored.any():
        return values
    clean = np.where(censored, np.nan, values)
    season = max(int(season), 1)
    estimate = _shifted_mean(clean, [k * season for k in range(1, SEASONS_AROUND + 1)])
    local = _shifted_mean(clean, list(range(1, season + 1)))
    estimate = np.where(np.isnan(estimate), local, estimate)
    known = ~np.isnan(clean)
    with np.errstate(all="ignore"):  # a series without any uncensored period: NaN
        overall = np.where(known, clean, 0.0).sum(axis=0) / known.sum(axis=0)
    estimate = np.where(np.isnan(estimate), overall[None, :], estimate)
    filled = np.fmax(values, estimate)  # fmax: a NaN estimate keeps the recorded sales
    return np.where(censored, filled, values)


def _shifted_mean(clean: np.ndarray, offsets: list[int]) -> np.ndarray:
    """Per cell, the mean of the non-NaN cells ``offsets`` periods before and after it."""
    total = np.zeros_like(clean)
    count = np.zeros_like(clean)
    periods = len(clean)
    for offset in offsets:
        if offset >= periods:
            break
        for source, target in ((slice(None, -offset), slice(offset, None)),
                               (slice(offset, None), slice(None, -offset))):
            part = clean[source]
            known = ~np.isnan(part)
            total[target] += np.where(known, part, 0.0)
            count[target] += known
    with np.errstate(all="ignore"):
        return np.where(count > 0, total / count, np.nan)


def censored_points(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.MultiIndex]:
    """``frame`` without the ``CENSORED`` flag, and the (unique_id, ds) it flagged.

    What the ensemble runs first: its members never see the flag, and its backtest drops
    the flagged points (:func:`unscored`).
    """
    if CENSORED not in frame:
        return frame, pd.MultiIndex.from_arrays([[], []], names=["unique_id", "ds"])
    flagged = frame.loc[frame[CENSORED].astype(bool), ["unique_id", "ds"]]
    return frame.drop(columns=CENSORED), pd.MultiIndex.from_frame(flagged)


def unscored(backtest: pd.DataFrame, censored: pd.MultiIndex) -> pd.DataFrame:
    """The backtest rows (``unique_id``, ``ds``, ...) that are not censored periods."""
    if censored.empty or backtest.empty:
        return backtest
    keys = pd.MultiIndex.from_frame(backtest[["unique_id", "ds"]])
    return backtest.loc[~keys.isin(censored)].reset_index(drop=True)
