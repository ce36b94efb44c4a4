"""The ensemble: members combined with weights fitted on a rolling-origin backtest.

Two weighting policies:

- ``seed`` reproduces the seed application exactly: 0.6 Prophet + 0.4 LSTM.
- ``auto`` (default) chooses convex weights per series from the backtest. Candidates are
  a grid on the simplex of all members (which contains the seed weights and every single
  member). The global weights are the candidate with the lowest mean MASE over series;
  each series then picks the candidate minimising its own backtest MASE blended with the
  global loss profile, as if the global profile were ``SHRINKAGE`` extra observations.
  One backtest window is a small sample: the blend keeps a series from chasing its noise
  while still letting, say, an intermittent series move to Croston. If the result is
  worse on the backtest than ``seed``, ``seed`` is used (so ``auto`` never loses to it there).

Wherever a member has no forecast for a series (too short, failed), the weights are
renormalised over the members that do, and the series is listed in ``renormalized_``;
if none of the weighted members has it, the available members are averaged.

Prediction intervals come from the ensemble's backtest residuals via
``restock.models.intervals``. One window gives a series only ``h`` residuals, one per step,
so its own quantile is mostly its largest error; the residuals of all series, each divided
by its MASE scale, give well-estimated per-step quantiles that times the series' scale
make a second width. Each series takes the wider of the two (on M3 monthly its own alone
covered 77% of the test at a 95% level, the wider of both 93%); a series without backtest
rows takes the pooled one.
"""

from __future__ import annotations

import importlib
import json
import math
from itertools import combinations
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, Self

import numpy as np
import pandas as pd

from restock.errors import InvalidParameterError
from restock.models.backtest import BacktestResult, backtest
from restock.models.base import Forecaster, ProgressFn, no_progress
from restock.models.frames import init_params
from restock.models.intervals import interval_half_widths
from restock.models.metrics import mase_scales, score_series, season_length, summarize

FORMAT_VERSION = 1
SEED_WEIGHTS = {"prophet": 0.6, "lstm": 0.4}
#: pseudo-observations of the global loss profile added to each series' own backtest points
SHRINKAGE = 28
#: the most weight candidates evaluated (the simplex grid is made as fine as this allows)
MAX_CANDIDATES = 1001
#: backtest horizon by seasonal period: four weeks of daily data, a quarter of weekly, a year of monthly
_BACKTEST_H = {7: 28, 5: 20, 52: 13, 12: 12, 4: 4}
#: at most this share of the shortest usable history is held out by the backtest
_HOLDOUT_SHARE = 0.5
_MEMBER_PACKAGE = "restock.models."


def clone(member: Forecaster) -> Forecaster:
    """A fresh, unfitted copy of ``member`` with the same hyperparameters."""
    return type(member)(**get_params(member))


def get_params(member: Forecaster) -> dict[str, Any]:
    """A member's hyperparameters: its own ``get_params()`` or its constructor's names."""
    getter = getattr(member, "get_params", None)
    return getter() if callable(getter) else init_params(member)


def default_members(
    *,
    lstm_epochs: int = 50,
    n_jobs: int = 1,
    holidays_country: str | None = None,
    seed: int = 42,
) -> list[Forecaster]:
    """The production members, so training and the benchmarks build the same ensemble.

    Only members cheap enough for a full retrain of a large catalogue are here; AutoETS
    and AutoARIMA were left out for their cost (see ``bench/results/accuracy.md``).
    """
    from restock.models.baselines import (
        CrostonForecaster,
        SeasonalNaiveForecaster,
        ThetaForecaster,
    )
    from restock.models.lstm import LSTMForecaster
    from restock.models.prophet import ProphetForecaster

    return [
        ProphetForecaster(n_jobs=n_jobs, holidays_country=holidays_country or ""),
        LSTMForecaster(max_epochs=lstm_epochs, seed=seed),
        SeasonalNaiveForecaster(),
        ThetaForecaster(),
        CrostonForecaster(),
    ]


class EnsembleForecaster(Forecaster):
    """Members fitted on every series, combined with backtest-fitted weights.

    Learned state: ``members_`` (fitted copies of ``members``), ``weights_`` (JSON:
    ``mode``, ``global`` and ``per_series`` weights by alias), ``backtest_`` (backtest
    table with the ensemble's ``yhat``), ``metrics_`` (JSON-safe backtest scores per
    series and overall), ``skipped_`` (per member alias: series it could not fit) and
    ``renormalized_`` (series whose weights had to be renormalised, and why); after
    ``predict``, ``clipped_`` counts negative member forecasts clipped at 0 per series.
    """

    alias = "ensemble"

    def __init__(
        self,
        members: Sequence[Forecaster],
        weights: Literal["auto", "seed"] = "auto",
        level: float = 0.95,
        backtest_h: int | None = None,
        backtest_windows: int = 1,
        forecast_h: int | None = None,
    ) -> None:
        self.members = members
        self.weights = weights
        self.level = level
        self.backtest_h = backtest_h
        self.backtest_windows = backtest_windows
        #: the horizon ``predict`` will be asked for after ``fit`` (the retrain's 365 days):
        #: members that can (Prophet) forecast it in their workers right after fitting
        self.forecast_h = forecast_h

    def fit(self, df: pd.DataFrame, freq: str, on_progress: ProgressFn = no_progress) -> Self:
        """Backtest the members, fit the weights, then refit every member on all of ``df``."""
        if self.weights not in ("auto", "seed"):
            raise InvalidParameterError(f"weights must be 'auto' or 'seed', not {self.weights!r}")
        if not self.members:
            raise InvalidParameterError("the ensemble needs at least one member")
        aliases = [m.alias for m in self.members]
        seed = _seed_vector(aliases)
        if self.weights == "seed" and not seed.any():
            raise InvalidParameterError("seed weights need a 'prophet' or an 'lstm' member")
        h = self.backtest_h or default_backtest_h(df, freq, self.backtest_windows)
        result = backtest(
            [lambda m=m: _precomputing(clone(m), h) for m in self.members],
            df,
            freq,
            h,
            self.backtest_windows,
            on_progress=_staged(on_progress, "backtest"),
        )
        on_progress(0.0, "fitting weights", stage="ensemble")
        self.weights_ = _fit_weights(result, aliases, seed, self.weights)
        self.backtest_ = result.frame.assign(
            yhat=combine_forecasts(result.frame[aliases].to_numpy(float), self._weight_rows(result.frame))
        )
        self.metrics_ = _metrics(self.backtest_, aliases, result)
        on_progress(1.0, "weights fitted", stage="ensemble")
        self.members_ = [
            _refit_copy(m, result.members.get(m.alias), self.forecast_h).fit(
                df, freq, on_progress=_staged(on_progress, m.alias)
            )
            for m in self.members
        ]
        self.freq_ = freq
        self.scales_ = _fill_scales(mase_scales(df, freq), df)
        self.skipped_ = {m.alias: dict(m.skipped_) for m in self.members_ if m.skipped_}
        self.renormalized_: dict[str, str] = {}
        self.clipped_: dict[str, int] = {}
        return self

    def predict(self, h: int) -> pd.DataFrame:
        """``unique_id, ds, yhat, yhat_lower, yhat_upper`` and one column per member alias."""
        self._check_fitted()
        aliases = [m.alias for m in self.members_]
        frame: pd.DataFrame | None = None
        for member in self.members_:
            part = member.predict(h)
            frame = part if frame is None else frame.merge(part, on=["unique_id", "ds"], how="outer")
        assert frame is not None
        frame = frame.sort_values(["unique_id", "ds"], ignore_index=True)
        values = frame[aliases].to_numpy(float)
        weights = self._weight_rows(frame)
        frame["yhat"] = np.maximum(combine_forecasts(values, weights), 0.0)
        self.renormalized_ = _renormalized(frame, aliases, weights)
        self.clipped_ = _clipped(self.members_)
        widths = self._half_widths(frame, h)
        frame["yhat_lower"] = np.maximum(frame["yhat"] - widths, 0.0)
        frame["yhat_upper"] = frame["yhat"] + widths
        return frame[["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", *aliases]]

    def save(self, directory: Path) -> None:
        """Members' own files plus weights.json, backtest.parquet, metrics.json, ensemble.json."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for member in self.members_:
            member.save(directory)
        (directory / "weights.json").write_text(json.dumps(self.weights_))
        (directory / "metrics.json").write_text(json.dumps(self.metrics_))
        self.backtest_.to_parquet(directory / "backtest.parquet", index=False)
        document = {
            "format": FORMAT_VERSION,
            "params": {k: v for k, v in init_params(self).items() if k != "members"},
            "members": [
                {
                    "class": f"{type(m).__module__}.{type(m).__qualname__}",
                    "params": get_params(m),
                }
                for m in self.members_
            ],
            "freq": self.freq_,
            "scales": self.scales_.to_dict(),
            "skipped": self.skipped_,
        }
        (directory / "ensemble.json").write_text(json.dumps(document))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Rebuild the ensemble and its members from what ``save`` wrote."""
        directory = Path(directory)
        document = json.loads((directory / "ensemble.json").read_text())
        classes = [_member_class(entry["class"]) for entry in document["members"]]
        templates = [k(**entry["params"]) for k, entry in zip(classes, document["members"])]
        model = cls(members=templates, **document["params"])
        model.members_ = [k.load(directory) for k in classes]
        model.weights_ = json.loads((directory / "weights.json").read_text())
        model.metrics_ = json.loads((directory / "metrics.json").read_text())
        model.backtest_ = pd.read_parquet(directory / "backtest.parquet")
        model.freq_ = document["freq"]
        model.scales_ = pd.Series(document["scales"], dtype=float)
        model.skipped_ = document["skipped"]
        model.renormalized_ = {}
        model.clipped_ = {}
        return model

    def weights_summary(self) -> dict[str, Any]:
        """A small JSON-safe digest of ``weights_`` for model listings and ``meta.json``.

        ``mean`` is each member's average weight over series; ``dominant`` counts the
        series on which each member has the largest weight.
        """
        self._check_fitted()
        aliases = self.weights_["aliases"]
        table = list(self.weights_["per_series"].values()) or [self.weights_["global"]]
        matrix = np.array([[w.get(a, 0.0) for a in aliases] for w in table])
        dominant = np.bincount(matrix.argmax(axis=1), minlength=len(aliases))
        return {
            "mode": self.weights_["mode"],
            "global": self.weights_["global"],
            "mean": _as_dict(aliases, matrix.mean(axis=0)),
            "dominant": {a: int(n) for a, n in zip(aliases, dominant)},
            **({"note": self.weights_["note"]} if "note" in self.weights_ else {}),
        }

    def _weight_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """The weight vector of each row's series (its own, else the global one)."""
        aliases = [m.alias for m in self.members]
        per_series = self.weights_["per_series"]
        global_vector = [self.weights_["global"].get(a, 0.0) for a in aliases]
        table = {uid: [w.get(a, 0.0) for a in aliases] for uid, w in per_series.items()}
        return np.array(
            [table.get(uid, global_vector) for uid in frame["unique_id"]], dtype=float
        ).reshape(len(frame), len(aliases))

    def _half_widths(self, frame: pd.DataFrame, h: int) -> np.ndarray:
        """Interval half-width of every row: own or pooled backtest residuals, the wider."""
        residuals = self.backtest_.assign(residual=self.backtest_["yhat"] - self.backtest_["y"])
        by_series = {uid: group for uid, group in residuals.groupby("unique_id")}
        scaled = residuals.assign(
            residual=residuals["residual"] / residuals["unique_id"].map(self.scales_).to_numpy()
        )
        pooled = interval_half_widths(scaled, h, self.level)
        widths = np.empty(len(frame))
        for uid, index in frame.groupby("unique_id", sort=False).indices.items():
            series_widths = pooled * float(self.scales_.get(uid, 0.0))
            if uid in by_series:
                own = interval_half_widths(by_series[uid], h, self.level)
                series_widths = np.maximum(series_widths, own)
            widths[index] = series_widths[: len(index)]
        return widths


def default_backtest_h(df: pd.DataFrame, freq: str, windows: int = 1) -> int:
    """The backtest horizon: a natural one for ``freq``, shrunk to fit short histories.

    At most ``_HOLDOUT_SHARE`` of the shortest usable history is held out over all
    windows; a history is usable when it is at least a quarter as long as the longest
    (a product launched last week should not shrink everyone's backtest).
    """
    natural = _BACKTEST_H.get(season_length(freq), 8)
    lengths = df.groupby("unique_id").size().to_numpy()
    if len(lengths) == 0:
        return natural
    usable = lengths[lengths >= lengths.max() / 4]
    return max(1, min(natural, int(usable.min() * _HOLDOUT_SHARE) // windows))


def _precomputing(member: Forecaster, h: int | None) -> Forecaster:
    """``member``, told to precompute ``h`` steps while fitting if it supports that."""
    if h and hasattr(member, "precompute_h"):
        member.precompute_h = int(h)  # type: ignore[attr-defined]
    return member


def _refit_copy(
    template: Forecaster, backtested: Forecaster | None, forecast_h: int | None
) -> Forecaster:
    """The unfitted member for the refit on all data.

    A member with ``from_backtest`` may take something its backtest copy learnt (the LSTM
    takes its best epoch count, so the refit trains that many epochs without validation).
    """
    member = clone(template)
    adopt = getattr(member, "from_backtest", None)
    if backtested is not None and callable(adopt):
        member = adopt(backtested)
    return _precomputing(member, forecast_h)


def _staged(on_progress: ProgressFn, stage: str) -> ProgressFn:
    """The callback with ``stage=`` added, so each stage reports its own fraction."""

    def report(fraction: float, message: str = "", **extra: Any) -> None:
        on_progress(fraction, message, **(extra | {"stage": stage}))

    return report


def _seed_vector(aliases: Sequence[str]) -> np.ndarray:
    """The seed's 0.6/0.4 weights over ``aliases`` (zero for every other member)."""
    return np.array([SEED_WEIGHTS.get(a, 0.0) for a in aliases])


def combine_forecasts(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean per row over the members that have a value (NaN = no forecast).

    Rows whose weighted members are all missing fall back to the plain mean of the
    available members; rows with no member at all stay NaN.
    """
    available = np.isfinite(values)
    filled = np.where(available, values, 0.0)
    weight = np.where(available, weights, 0.0)
    total = weight.sum(axis=1)
    count = available.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = (filled * weight).sum(axis=1) / total
        plain = filled.sum(axis=1) / count
    return np.where(total > 0, weighted, plain)


def _renormalized(frame: pd.DataFrame, aliases: list[str], weights: np.ndarray) -> dict[str, str]:
    """Series whose weighted members lack a forecast, with the members missing."""
    missing = ~np.isfinite(frame[aliases].to_numpy(float)) & (weights > 0)
    notes = {}
    for row in np.flatnonzero(missing.any(axis=1)):
        uid = frame["unique_id"].iat[row]
        if uid not in notes:
            lacking = [a for a, m in zip(aliases, missing[row]) if m]
            notes[uid] = f"no forecast from {', '.join(lacking)}: weights renormalised"
    return notes


def _clipped(members: Sequence[Forecaster]) -> dict[str, int]:
    """Negative forecasts clipped at 0 in the members' last predictions, per series."""
    total: dict[str, int] = {}
    for member in members:
        for uid, count in getattr(member, "clipped_", {}).items():
            total[uid] = total.get(uid, 0) + count
    return total


def _simplex_grid(n: int) -> np.ndarray:
    """All weight vectors of ``n`` members on the finest grid within ``MAX_CANDIDATES``."""
    resolution = 1
    while resolution < 20 and math.comb(resolution + n, n - 1) <= MAX_CANDIDATES:
        resolution += 1
    rows = []
    # stars and bars: choose n - 1 bar positions among resolution + n - 1 slots
    for bars in combinations(range(resolution + n - 1), n - 1):
        edges = (-1, *bars, resolution + n - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(n)])
    return np.array(rows, dtype=float) / resolution


def _fit_weights(
    result: BacktestResult, aliases: list[str], seed: np.ndarray, mode: str
) -> dict[str, Any]:
    """The ``weights_`` document for ``mode`` from the backtest ``result``."""
    document: dict[str, Any] = {"mode": mode, "aliases": aliases}
    if mode == "seed" or result.frame.empty:
        vector = seed if seed.any() else np.full(len(aliases), 1 / len(aliases))
        if mode == "auto":
            document["note"] = "no series long enough to backtest: seed (or equal) weights"
        return document | {"global": _as_dict(aliases, vector), "per_series": {}}
    frame = result.frame
    codes, uids = pd.factorize(frame["unique_id"], sort=True)
    scale = frame["unique_id"].map(result.scales).to_numpy(float)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    values, y = frame[aliases].to_numpy(float), frame["y"].to_numpy(float)
    candidates = _simplex_grid(len(aliases))
    if seed.any():
        candidates = np.vstack([candidates, seed])
    counts = np.bincount(codes, minlength=len(uids)).astype(float)
    loss = np.empty((len(uids), len(candidates)))
    for j, candidate in enumerate(candidates):
        error = np.abs(combine_forecasts(values, candidate[None, :]) - y) / scale
        error = np.where(np.isfinite(error), error, 0.0)
        loss[:, j] = np.bincount(codes, weights=error, minlength=len(uids)) / counts
    global_loss = loss.mean(axis=0)
    best_global = int(np.argmin(global_loss))
    shrunk = (counts[:, None] * loss + SHRINKAGE * global_loss[None, :]) / (counts[:, None] + SHRINKAGE)
    chosen = np.argmin(shrunk, axis=1)
    auto_loss = float(loss[np.arange(len(uids)), chosen].mean())
    seed_loss = float(loss[:, -1].mean()) if seed.any() else math.inf
    if seed.any() and seed_loss < auto_loss:
        return document | {
            "global": _as_dict(aliases, seed),
            "per_series": {},
            "note": f"auto ({auto_loss:.4f}) lost to seed ({seed_loss:.4f}) on the backtest",
        }
    return document | {
        "global": _as_dict(aliases, candidates[best_global]),
        "per_series": {
            str(uid): _as_dict(aliases, candidates[c]) for uid, c in zip(uids, chosen)
        },
        "backtest_mase": {"auto": auto_loss, "seed": None if math.isinf(seed_loss) else seed_loss},
    }


def _as_dict(aliases: Sequence[str], vector: np.ndarray) -> dict[str, float]:
    return {a: round(float(w), 6) for a, w in zip(aliases, vector)}


def _metrics(frame: pd.DataFrame, aliases: list[str], result: BacktestResult) -> dict[str, Any]:
    """JSON-safe backtest scores: overall means and per series, per member and ensemble."""
    scored = frame.rename(columns={"yhat": "ensemble"})
    models = [*aliases, "ensemble"]
    scores = score_series(scored, models, result.scales)
    per_series: dict[str, dict[str, Any]] = {}
    for row in scores.itertuples(index=False):
        per_series.setdefault(row.unique_id, {})[row.model] = _json_safe(
            {"mase": row.mase, "smape": row.smape, "wape": row.wape, "bias": row.bias}
        )
    overall = {model: _json_safe(values) for model, values in summarize(scores).to_dict("index").items()}
    return {
        "horizon": int(frame["step"].max()) if len(frame) else 0,
        "series": len(per_series),
        "overall": overall,
        "per_series": per_series,
        "excluded": result.excluded,
        "skipped": result.skipped,
    }


def _json_safe(values: Mapping[str, float]) -> dict[str, float | None]:
    """NaN (undefined score) becomes null: strict JSON has no NaN."""
    return {k: (float(v) if np.isfinite(v) else None) for k, v in values.items()}


def _fill_scales(scales: pd.Series, df: pd.DataFrame) -> pd.Series:
    """MASE scales with the undefined ones (constant series) replaced by their mean level."""
    level = df.groupby("unique_id")["y"].apply(lambda y: float(np.mean(np.abs(y))))
    return scales.where(np.isfinite(scales) & (scales > 0), level.reindex(scales.index)).fillna(0.0)


def _member_class(path: str) -> type[Forecaster]:
    """Resolve a member class saved by name, only from restock's own model modules."""
    module_name, _, class_name = path.rpartition(".")
    if not module_name.startswith(_MEMBER_PACKAGE):
        raise InvalidParameterError(f"refusing to load member class {path!r}")
    member_class = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(member_class, type) and issubclass(member_class, Forecaster)):
        raise InvalidParameterError(f"{path!r} is not a forecaster")
    return member_class
