"""Forecast accuracy scores: MASE, sMAPE, WAPE and bias, on arrays and on long frames.

MASE is the headline score because it is comparable across series of any volume: errors
are divided by the in-sample MAE of the seasonal naive forecast (season 7 for daily, 52
weekly, 12 monthly data, from ``restock.calendar``; lag 1 when the history is shorter than
a season plus one, or when the seasonal scale is zero). A history on which even the lag-1
naive makes no error (a constant series) has no scale, so its MASE is undefined (NaN) and
means skip it rather than divide by zero. The benchmarks and the backtest metrics use these
functions, so a figure in ``metrics.json`` means the same as one in ``bench/results``.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from restock.calendar import frequency_of

def mase_scale(y_train: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast: the MASE denominator (NaN if zero)."""
    y_train = np.asarray(y_train, dtype=float)
    for lag in (season, 1):
        if lag >= 1 and len(y_train) > lag:
            scale = float(np.mean(np.abs(y_train[lag:] - y_train[:-lag])))
            if scale > 0:
                return scale
    return float("nan")


def mase(y: np.ndarray, yhat: np.ndarray, scale: float) -> float:
    """Mean absolute error relative to ``scale`` (see ``mase_scale``)."""
    if not np.isfinite(scale) or scale <= 0:
        return float("nan")
    return float(np.mean(np.abs(np.asarray(y, float) - np.asarray(yhat, float))) / scale)


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200), the M3 convention; 0/0 terms count as 0."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    denominator = np.abs(y) + np.abs(yhat)
    terms = np.divide(
        2 * np.abs(y - yhat), denominator, out=np.zeros_like(y), where=denominator > 0
    )
    return float(100 * np.mean(terms))


def wape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Total absolute error over total actual volume (NaN when nothing was sold)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    volume = np.sum(np.abs(y))
    return float(np.sum(np.abs(y - yhat)) / volume) if volume > 0 else float("nan")


def bias(y: np.ndarray, yhat: np.ndarray) -> float:
    """Signed total error over total volume: > 0 over-forecasts, < 0 under-forecasts."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    volume = np.sum(np.abs(y))
    return float(np.sum(yhat - y) / volume) if volume > 0 else float("nan")


def mase_scales(train: pd.DataFrame, freq: str) -> pd.Series:
    """``mase_scale`` of every series of a long frame (``unique_id, ds, y``), by unique_id."""
    season = frequency_of(freq).season_length
    ordered = train.sort_values(["unique_id", "ds"])
    return ordered.groupby("unique_id", sort=True)["y"].agg(
        lambda y: mase_scale(y.to_numpy(), season)
    )


def score_series(
    frame: pd.DataFrame, models: Iterable[str], scales: pd.Series
) -> pd.DataFrame:
    """Scores of each model on each series of a long frame of actuals ``y`` and predictions.

    ``frame`` holds ``unique_id``, ``y`` and one column per model; ``scales`` maps
    unique_id to its MASE denominator. Returns one row per (unique_id, model) with
    ``mase, smape, wape, bias``.
    """
    rows = []
    for uid, group in frame.groupby("unique_id", sort=True):
        y = group["y"].to_numpy(float)
        scale = float(scales.get(uid, np.nan))
        for model in models:
            yhat = group[model].to_numpy(float)
            keep = np.isfinite(yhat)
            if not keep.any():
                continue
            rows.append(
                {
                    "unique_id": uid,
                    "model": model,
                    "mase": mase(y[keep], yhat[keep], scale),
                    "smape": smape(y[keep], yhat[keep]),
                    "wape": wape(y[keep], yhat[keep]),
                    "bias": bias(y[keep], yhat[keep]),
                }
            )
    return pd.DataFrame(rows, columns=["unique_id", "model", "mase", "smape", "wape", "bias"])


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean of each score over series per model (NaN scores skipped), models as rows."""
    return scores.groupby("model", sort=False)[["mase", "smape", "wape", "bias"]].mean()
