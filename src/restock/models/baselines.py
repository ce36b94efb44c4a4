"""Cheap local members: seasonal naive, Theta and Croston (SBA), all in plain numpy.

They cost milliseconds per series, so they can sit in every retrain, and each brings
something Prophet and the LSTM lack:

- ``seasonal_naive`` repeats the last season (naive when the history is shorter than
  one). It is the MASE yardstick and the fallback for series too short for anything else.
- ``theta`` is the standard Theta method (Assimakopoulos & Nikolopoulos 2000, in the
  SES-with-drift form of Hyndman & Billah 2003) on classically deseasonalised data. It won
  the M3 competition and stays among the best cheap methods for trending series.
- ``croston`` is Croston's method with the Syntetos-Boylan bias correction: a flat rate of
  demand for intermittent series (many zero days), where the others chase single spikes.

Their state is a handful of numbers per series, written as JSON to
``baselines/<alias>.json``; loading it reproduces the forecasts exactly.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from restock.models.base import Forecaster, ProgressFn, no_progress
from restock.models.frames import forecast_frame, init_params, iter_series
from restock.models.metrics import season_length

FORMAT_VERSION = 1
_PROGRESS_EVERY = 100


class LocalForecaster(Forecaster):
    """A member fitting each series on its own into a JSON-safe state dict.

    Subclasses implement ``_fit_series`` (history -> state) and ``_forecast_series``
    (state -> ``h`` values); this class does the looping, progress, clipping at zero and
    the save/load format.
    """

    #: the shortest history the method can fit; shorter series go to ``skipped_``
    min_length: ClassVar[int] = 1

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters by constructor name (what ``clone`` and ``save`` need)."""
        return init_params(self)

    def fit(self, df: pd.DataFrame, freq: str, on_progress: ProgressFn = no_progress) -> Self:
        """Fit every series of ``df`` independently."""
        season = season_length(freq)
        series = list(iter_series(df))
        states: dict[str, dict[str, Any]] = {}
        last_dates: dict[str, pd.Timestamp] = {}
        skipped: dict[str, str] = {}
        for i, s in enumerate(series, start=1):
            if len(s.y) < self.min_length:
                skipped[s.uid] = f"needs {self.min_length} points, has {len(s.y)}"
            else:
                states[s.uid] = self._fit_series(s.y, season)
                last_dates[s.uid] = s.ds[-1]
            if i % _PROGRESS_EVERY == 0 or i == len(series):
                on_progress(i / len(series), f"{self.alias}: {i}/{len(series)} series")
        self.freq_, self.season_ = freq, season
        self.states_, self.last_dates_, self.skipped_ = states, last_dates, skipped
        return self

    def predict(self, h: int) -> pd.DataFrame:
        """Forecast ``h`` steps per fitted series, clipped at zero (counts in ``clipped_``)."""
        self._check_fitted()
        raw = {uid: self._forecast_series(state, h) for uid, state in self.states_.items()}
        self.clipped_ = {uid: int(np.sum(v < 0)) for uid, v in raw.items() if np.any(v < 0)}
        values = {uid: np.maximum(v, 0.0) for uid, v in raw.items()}
        return forecast_frame(self.alias, values, self.last_dates_, self.freq_, h)

    def save(self, directory: Path) -> None:
        """Write ``baselines/<alias>.json`` under ``directory``."""
        self._check_fitted()
        path = Path(directory) / "baselines" / f"{self.alias}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "format": FORMAT_VERSION,
            "alias": self.alias,
            "params": self.get_params(),
            "freq": self.freq_,
            "season": self.season_,
            "series": {
                uid: {"last_ds": self.last_dates_[uid].isoformat(), "state": state}
                for uid, state in self.states_.items()
            },
            "skipped": self.skipped_,
        }
        path.write_text(json.dumps(document))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Read ``baselines/<alias>.json`` back."""
        document = json.loads((Path(directory) / "baselines" / f"{cls.alias}.json").read_text())
        model = cls(**document["params"])
        model.freq_, model.season_ = document["freq"], document["season"]
        model.states_ = {uid: entry["state"] for uid, entry in document["series"].items()}
        model.last_dates_ = {
            uid: pd.Timestamp(entry["last_ds"]) for uid, entry in document["series"].items()
        }
        model.skipped_ = document["skipped"]
        return model

    @abstractmethod
    def _fit_series(self, y: np.ndarray, season: int) -> dict[str, Any]:
        """The JSON-safe state that ``_forecast_series`` needs."""

    @abstractmethod
    def _forecast_series(self, state: dict[str, Any], h: int) -> np.ndarray:
        """``h`` forecasts from a state made by ``_fit_series``."""


class SeasonalNaiveForecaster(LocalForecaster):
    """Repeat the last season; the last value when the history is shorter than a season."""

    alias = "seasonal_naive"

    def _fit_series(self, y: np.ndarray, season: int) -> dict[str, Any]:
        period = season if len(y) >= season else 1
        return {"last_season": y[-period:].tolist()}

    def _forecast_series(self, state: dict[str, Any], h: int) -> np.ndarray:
        last = np.asarray(state["last_season"], dtype=float)
        return np.resize(last, h)


class ThetaForecaster(LocalForecaster):
    """Standard Theta: SES with half the linear-trend slope as drift, on deseasonalised data.

    Seasonality is removed (classical decomposition; multiplicative when the series is
    strictly positive, additive otherwise) only when the autocorrelation at the seasonal
    lag is significant at 90%, the test of Hyndman's ``thetaf`` and of the M3 Theta.
    """

    alias = "theta"
    min_length = 4

    #: smoothing parameters tried; SES errors are computed for all at once
    _ALPHAS = np.linspace(0.02, 0.98, 49)

    def _fit_series(self, y: np.ndarray, season: int) -> dict[str, Any]:
        indices, multiplicative = _seasonal_indices(y, season)
        positions = np.arange(len(y)) % len(indices)
        x = y / indices[positions] if multiplicative else y - indices[positions]
        alpha, level = _fit_ses(x, self._ALPHAS)
        slope = float(np.polyfit(np.arange(len(x)), x, 1)[0])
        return {
            "level": level,
            "alpha": alpha,
            "drift": slope / 2,
            "n": len(y),
            "indices": indices.tolist(),
            "multiplicative": multiplicative,
        }

    def _forecast_series(self, state: dict[str, Any], h: int) -> np.ndarray:
        alpha, n = state["alpha"], state["n"]
        steps = np.arange(h)
        x = state["level"] + state["drift"] * (steps + (1 - (1 - alpha) ** n) / alpha)
        indices = np.asarray(state["indices"], dtype=float)
        seasonal = indices[(n + steps) % len(indices)]
        return x * seasonal if state["multiplicative"] else x + seasonal


def _seasonal_indices(y: np.ndarray, season: int) -> tuple[np.ndarray, bool]:
    """Classical-decomposition seasonal indices, or neutral ones when there is no seasonality.

    Returns (indices by position ``t % season``, multiplicative?). Neutral is ``[1.0]``
    multiplicative.
    """
    if season < 2 or len(y) < 2 * season or not _is_seasonal(y, season):
        return np.ones(1), True
    multiplicative = bool(np.all(y > 0))
    weights = np.ones(season + 1 - season % 2)
    if season % 2 == 0:
        weights[0] = weights[-1] = 0.5
    trend = np.convolve(y, weights / season, mode="valid")
    offset = len(weights) // 2
    window = y[offset : offset + len(trend)]
    detrended = window / trend if multiplicative else window - trend
    positions = (np.arange(len(trend)) + offset) % season
    sums = np.bincount(positions, weights=detrended, minlength=season)
    counts = np.bincount(positions, minlength=season)
    indices = sums / np.maximum(counts, 1)
    if multiplicative:
        return indices / indices.mean(), True
    return indices - indices.mean(), False


def _is_seasonal(y: np.ndarray, season: int) -> bool:
    """Autocorrelation at lag ``season`` beyond 1.645 standard errors (Bartlett)."""
    centred = y - y.mean()
    denominator = float(np.dot(centred, centred))
    if denominator == 0:
        return False
    acf = np.array(
        [np.dot(centred[k:], centred[:-k]) / denominator for k in range(1, season + 1)]
    )
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[:-1] ** 2)) / len(y))
    return bool(abs(acf[-1]) > limit)


def _fit_ses(x: np.ndarray, alphas: np.ndarray) -> tuple[float, float]:
    """Best smoothing parameter by one-step squared error, and the final level it gives."""
    best_sse, best_alpha, best_level = np.inf, float(alphas[0]), float(x[-1])
    for alpha in alphas:
        levels = lfilter([alpha], [1.0, alpha - 1.0], x, zi=[(1.0 - alpha) * x[0]])[0]
        sse = float(np.sum((x[1:] - levels[:-1]) ** 2))
        if sse < best_sse:
            best_sse, best_alpha, best_level = sse, float(alpha), float(levels[-1])
    return best_alpha, best_level


class CrostonForecaster(LocalForecaster):
    """Croston's method with the Syntetos-Boylan correction, for intermittent demand.

    Demand sizes and the intervals between demands are smoothed separately with
    ``alpha``; the forecast is the flat rate ``(1 - alpha / 2) * size / interval``.
    """

    alias = "croston"

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha

    def _fit_series(self, y: np.ndarray, season: int) -> dict[str, Any]:
        demand_at = np.flatnonzero(y > 0)
        if len(demand_at) == 0:
            return {"rate": 0.0}
        intervals = np.diff(np.concatenate([[-1], demand_at])).astype(float)
        a = self.alpha
        size = lfilter([a], [1.0, a - 1.0], y[demand_at], zi=[(1 - a) * y[demand_at][0]])[0]
        gap = lfilter([a], [1.0, a - 1.0], intervals, zi=[(1 - a) * intervals[0]])[0]
        return {"rate": float((1 - a / 2) * size[-1] / gap[-1])}

    def _forecast_series(self, state: dict[str, Any], h: int) -> np.ndarray:
        return np.full(h, state["rate"])
