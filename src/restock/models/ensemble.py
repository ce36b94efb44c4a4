"""The ensemble: members combined per series by rules chosen on a rolling backtest.

Two policies:

- ``seed`` reproduces the seed application exactly: 0.6 Prophet + 0.4 LSTM.
- ``auto`` (default) picks, per series, one of a few robust combination rules (the best
  member, the mean or median of the top k, or the global combination) from the backtest,
  with losses shrunk toward what works across all series; see ``models.selection``.

Wherever a chosen member has no forecast for a series (too short, failed), the next
ranked member stands in (``seed``: the weights are renormalised) and the series is listed
in ``renormalized_``.

Prediction intervals are split-conformal, per horizon step, from the ensemble's
out-of-sample backtest residuals (``models.intervals``): each series' residuals are
divided by its MASE scale and pooled over series, and the per-step quantile times the
series' scale is its half-width. With several windows, per-step quantiles are well
estimated; a series' own handful of residuals per step would mostly give its largest
error. A series without backtest rows takes the pooled width at its own scale.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Literal, Mapping, Sequence, Self, TypeVar

import numpy as np
import pandas as pd

from restock.calendar import frequency_of
from restock.data import censoring
from restock.errors import InvalidParameterError
from restock.models.backtest import BacktestResult, backtest, long_enough
from restock.models.base import Forecaster, ProgressFn, no_progress, part_of
from restock.models.frames import init_params
from restock.models.intervals import interval_half_widths
from restock.models import screening
from restock.models.metrics import mase_scales, score_series, summarize
from restock.models.selection import Choice, apply_choice, select

FORMAT_VERSION = 2
SEED_WEIGHTS = {"prophet": 0.6, "lstm": 0.4}
#: the member every series can fall back on (fits any series with one point)
FALLBACK = "seasonal_naive"
#: at most this share of the shortest usable history is held out by the backtest
_HOLDOUT_SHARE = 0.5
_MEMBER_PACKAGE = "restock.models."
#: a member forecast above this many times the series' largest observation is implausible
#: (an unstable fit: AutoCES once forecast 100x on the pizzaplace backtest) and set aside
PLAUSIBLE_FACTOR = 10.0
#: share of the backtest's progress kept for the kept screened members' backtest of the
#: series beyond the sample, which runs afterwards, so the bar does not sit at the
#: backtest's end meanwhile. Fixed before the verdicts are known: Prophet alone took a
#: fifth to a half of the whole on the benchmarks; where the four statistical members
#: all go on (M3) the remainder takes more than half of the time in this last 30%.
_REMAINDER_SHARE = 0.3
T = TypeVar("T")
U = TypeVar("U")


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

    The seed's two (Prophet, the LSTM); the field's strong cheap local models from
    statsforecast (ETS, optimized Theta, CES, MSTL for daily data, the intermittent
    family, seasonal naive as yardstick and fallback); global LightGBM over every series
    (with the uploaded price when there is one), on levels and on changes (the trees of
    one cannot follow a trend, those of the other make noise of intermittent sales),
    backtested with the trees of their first window (one training instead of three).
    Every member gets all cores.
    """
    from restock.models.gbm import GBMChangeForecaster, GBMForecaster
    from restock.models.lstm import LSTMForecaster
    from restock.models.prophet import ProphetForecaster
    from restock.models.statistical import (
        CESForecaster,
        CrostonSBAForecaster,
        ETSForecaster,
        IMAPAForecaster,
        MSTLForecaster,
        SeasonalNaiveForecaster,
        ThetaForecaster,
        TSBForecaster,
    )

    return [
        ProphetForecaster(n_jobs=n_jobs, holidays_country=holidays_country or ""),
        LSTMForecaster(max_epochs=lstm_epochs, seed=seed),
        SeasonalNaiveForecaster(n_jobs=n_jobs),
        ETSForecaster(n_jobs=n_jobs),
        ThetaForecaster(n_jobs=n_jobs),
        CESForecaster(n_jobs=n_jobs),
        MSTLForecaster(n_jobs=n_jobs),
        CrostonSBAForecaster(n_jobs=n_jobs),
        IMAPAForecaster(n_jobs=n_jobs),
        TSBForecaster(n_jobs=n_jobs),
        *(gbm(holidays_country=holidays_country or "", use_price=True, cv_refit=False,
              n_jobs=n_jobs, seed=seed) for gbm in (GBMForecaster, GBMChangeForecaster)),
    ]


def backtest_step(h: int) -> int:
    """Origins of consecutive backtest windows are half a horizon apart.

    Overlapping windows hold out less history than disjoint ones (monthly series are
    short) while still giving every horizon step several residuals.
    """
    return max(1, math.ceil(h / 2))


class EnsembleForecaster(Forecaster):
    """Members fitted on every series, combined per series as the backtest chose.

    Learned state: ``members_`` (fitted copies of ``members``), ``weights_`` (JSON: the
    ``mode``; ``seed``: the member ``weights``; ``auto``: the ``global`` and
    ``per_series`` choices and every rule's backtest loss), ``backtest_`` (backtest table
    with the ensemble's out-of-sample ``yhat``), ``metrics_`` (JSON-safe backtest scores
    per series and overall), ``skipped_`` (per member alias: series it could not fit) and
    ``renormalized_`` (series whose chosen members had no forecast, and why); after
    ``predict``, ``clipped_`` counts negative member forecasts clipped at 0 per series;
    ``durations_`` holds each member's backtest and refit seconds and the members that
    ran alongside the others (``overlapped``: their seconds overlap the rest; not saved;
    a screened member's backtest of the series beyond the sample runs afterwards, alone).

    Members with ``works_out_of_process`` (Prophet: worker processes or Celery shards)
    are backtested in a background thread while the in-process members are backtested,
    so their waiting is filled; which data each fit sees is unchanged. With ``auto``
    the members with ``screened`` are screened (``models.screening``; Prophet always, the
    costly statistical members in a catalogue larger than the sample): backtested first on
    a sample of the series long enough to backtest (all of them when there are at most
    ``screening.SAMPLE_SERIES``; a short series would only shrink the sample), beside the
    other members' backtest of every series, and left out of the candidates unless they
    improve the chosen combinations there; ``weights_`` records each verdict under
    ``screened``.

    Only what the chosen combinations use is refitted (``auto``): a member no series
    uses is left out of ``members_``, a member with ``fits_each_series`` (Prophet, the
    statistical ones: one model per series) is refitted on the series that use it, a
    global member (the LSTM, LightGBM) on every series if any uses it, so a global
    member the combinations name stays only if it lowers their backtest loss
    (``_paid_refits``; verdicts under ``refits``). The
    fallback member (``FALLBACK``) is always refitted on every series; ``seed`` (and
    ``refit="all"``) refits every member on every series.
    """

    alias = "ensemble"

    def __init__(
        self,
        members: Sequence[Forecaster],
        weights: Literal["auto", "seed"] = "auto",
        level: float = 0.95,
        backtest_h: int | None = None,
        backtest_windows: int = 3,
        forecast_h: int | None = None,
        refit: Literal["used", "all"] = "used",
    ) -> None:
        self.members = members
        self.weights = weights
        self.level = level
        self.backtest_h = backtest_h
        self.backtest_windows = backtest_windows
        #: the horizon ``predict`` will be asked for after ``fit`` (the retrain's horizon):
        #: members that can (Prophet, the statistical ones) forecast it while fitting
        self.forecast_h = forecast_h
        #: ``used``: refit only what the chosen combinations use; ``all``: every member
        #: on every series (the accuracy benchmark scores each member on the test)
        self.refit = refit

    def fit(self, df: pd.DataFrame, freq: str, on_progress: ProgressFn = no_progress) -> Self:
        """Backtest the members, choose the combinations, then refit on ``df`` what they use.

        A ``censored`` column (the panel's stockout periods, whose ``y`` is imputed) is
        not passed to the members; the backtest rows of those periods are dropped before
        anything is scored, so no member is chosen or sized on them.
        """
        df, censored = censoring.censored_points(df)
        if self.weights not in ("auto", "seed"):
            raise InvalidParameterError(f"weights must be 'auto' or 'seed', not {self.weights!r}")
        if self.refit not in ("used", "all"):
            raise InvalidParameterError(f"refit must be 'used' or 'all', not {self.refit!r}")
        if not self.members:
            raise InvalidParameterError("the ensemble needs at least one member")
        aliases = [m.alias for m in self.members]
        seed = _seed_vector(aliases)
        if self.weights == "seed" and not seed.any():
            raise InvalidParameterError("seed weights need a 'prophet' or an 'lstm' member")
        h = self.backtest_h or default_backtest_h(df, freq, self.backtest_windows)
        self.caps_ = _caps(df)
        elsewhere = [m for m in self.members if getattr(m, "works_out_of_process", False)]
        here = [m for m in self.members if m not in elsewhere]
        fit_seconds: dict[str, float] = {}

        def backtest_of(members: list[Forecaster], report: ProgressFn,
                        data: pd.DataFrame = df) -> BacktestResult:
            return backtest(
                [lambda m=m: _precomputing(clone(m), h) for m in members],
                data, freq, h, self.backtest_windows, step_size=backtest_step(h),
                on_progress=_staged(report, "backtest"),
            )

        def refit(members: list[Forecaster], backtested: BacktestResult,
                  uses: dict[str, set[str] | None]) -> list[Forecaster]:
            fitted = []
            for m in members:
                started = time.perf_counter()
                member = _refit_copy(m, backtested.members.get(m.alias), self.forecast_h)
                series = uses[m.alias]
                data = df if series is None else df[df["unique_id"].isin(series)]
                fitted.append(member.fit(data, freq,
                                         on_progress=_staged(on_progress, m.alias)))
                fit_seconds[m.alias] = round(time.perf_counter() - started, 3)
            return fitted

        def scored(result: BacktestResult) -> BacktestResult:
            result.frame = censoring.unscored(result.frame, censored)
            result.frame[aliases], _ = _set_aside_implausible(result.frame, aliases, self.caps_)
            return result

        # auto screens the members that must earn their place (``models.screening``):
        # backtested first on a sample, judged against the members that are not screened
        probe = None
        if self.weights == "auto":
            lengths = df.groupby("unique_id", sort=False).size()
            probe = screening.sample(lengths.index[long_enough(
                lengths, h, self.backtest_windows, backtest_step(h))])
        screened = (screening.to_screen(self.members, sampled=probe is not None)
                    if self.weights == "auto" else [])
        probed = df if probe is None else df[df["unique_id"].isin(probe)]
        sampled_share = 1.0 if probe is None or not screened else 1.0 - _REMAINDER_SHARE

        def sides(members: list[Forecaster], report: ProgressFn,
                  run: Callable[[list[Forecaster], ProgressFn], list[T]]) -> list[T]:
            """``run`` on the in-process members, overlapped with ``run`` on the members
            that work out of process (``_alongside``); the first side's results first."""
            away = [m for m in members if m in elsewhere]
            near = [m for m in members if m not in elsewhere]
            if not (away and near):
                return run(members, report)
            background, foreground = _alongside(lambda r: run(away, r), lambda r: run(near, r),
                                                report, background_share=len(away) / len(members))
            return foreground + background

        def backtest_side(side: list[Forecaster], report: ProgressFn
                          ) -> list[tuple[bool, BacktestResult]]:
            """The side's unscreened members on every series, then its screened ones on
            the sample (flagged True), each group's progress in proportion to its size."""
            parts, done = [], 0
            for trial, data in ((False, df), (True, probed)):
                group = [m for m in side if (m in screened) == trial]
                if group:
                    parts.append((trial, backtest_of(group, part_of(
                        report, done / len(side), (done + len(group)) / len(side)), data)))
                    done += len(group)
            return parts

        parts = sides(list(self.members), part_of(on_progress, 0.0, sampled_share),
                      backtest_side)
        plain = [part for trial, part in parts if not trial]  # each covers every series
        verdicts: list[screening.Verdict] = []
        if screened:
            on_progress(sampled_share, "screening " + ", ".join(m.alias for m in screened),
                        stage="backtest")
            trials = _merged([part for trial, part in parts if trial],
                             [m.alias for m in screened])
            sampled = scored(_merged([*plain, trials], aliases))
            sampled.frame = sampled.frame[sampled.frame["unique_id"].isin(
                trials.frame["unique_id"].unique())]
            verdicts = screening.judge_all(sampled.frame, [a for p in plain for a in p.aliases],
                                           screened, plain[0].scales)
            kept = [m for m, v in zip(screened, verdicts) if v.keep]
            if probe is not None and kept:
                others = df[~df["unique_id"].isin(probe)]
                remainder = sides(kept, part_of(on_progress, sampled_share, 1.0),
                                  lambda side, report: [backtest_of(side, report, others)])
                trials = _stacked(trials, _merged(remainder, [m.alias for m in kept]))
            plain.append(trials)
        result = scored(_merged(plain, aliases))
        if self.weights == "seed":
            result.frame = result.frame[_seed_windows(result.frame, aliases, seed)].reset_index(
                drop=True)
        on_progress(0.0, "choosing the combinations", stage="ensemble")
        left_out = {v.alias for v in verdicts if not v.keep}
        candidates = [a for a in aliases if a not in left_out]
        self.weights_, yhat = _fit_policy(result, candidates, seed, self.weights)
        if self.weights == "auto":
            self.weights_, yhat = _paid_refits(result, self.weights_, yhat, self.members,
                                               df["unique_id"].unique())
        if verdicts:
            self.weights_["screened"] = {v.alias: v.to_json() for v in verdicts}
        self.backtest_ = result.frame.assign(yhat=yhat)
        self.metrics_ = _metrics(self.backtest_, aliases, result)
        on_progress(1.0, "combinations chosen", stage="ensemble")
        uses = (_refit_scope(self.weights_, self.members, df["unique_id"].unique())
                if self.refit == "used" else {m.alias: None for m in self.members})
        self.members_ = refit([m for m in self.members if m.alias in uses], result, uses)
        self.durations_ = {"backtest": result.seconds, "fit": fit_seconds,
                           "overlapped": [m.alias for m in elsewhere if here]}
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
        frame[aliases], implausible = _set_aside_implausible(frame, aliases, self.caps_)
        values = frame[aliases].to_numpy(float)
        frame["yhat"], self.renormalized_ = self._combine(frame["unique_id"], values, aliases)
        for uid, lacking in implausible.items():
            note = (f"implausible forecast from {', '.join(lacking)} (over {PLAUSIBLE_FACTOR:g}x "
                    "the largest sale): set aside")
            self.renormalized_[uid] = "; ".join(filter(None, [self.renormalized_.get(uid), note]))
        frame["yhat"] = np.maximum(frame["yhat"], 0.0)
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
            "caps": self.caps_.to_dict(),
            "skipped": self.skipped_,
        }
        (directory / "ensemble.json").write_text(json.dumps(document))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Rebuild the ensemble and its members from what ``save`` wrote."""
        directory = Path(directory)
        document = json.loads((directory / "ensemble.json").read_text())
        if document.get("format") != FORMAT_VERSION:
            raise InvalidParameterError(
                f"ensemble format {document.get('format')} is not {FORMAT_VERSION}; retrain")
        classes = [_member_class(entry["class"]) for entry in document["members"]]
        templates = [k(**entry["params"]) for k, entry in zip(classes, document["members"])]
        model = cls(members=templates, **document["params"])
        model.members_ = [k.load(directory) for k in classes]
        model.weights_ = json.loads((directory / "weights.json").read_text())
        model.metrics_ = json.loads((directory / "metrics.json").read_text())
        model.backtest_ = pd.read_parquet(directory / "backtest.parquet")
        model.freq_ = document["freq"]
        model.scales_ = pd.Series(document["scales"], dtype=float)
        model.caps_ = pd.Series(document["caps"], dtype=float)
        model.skipped_ = document["skipped"]
        model.renormalized_ = {}
        model.clipped_ = {}
        return model

    def weights_summary(self) -> dict[str, Any]:
        """A small JSON-safe digest of ``weights_`` for model listings and ``meta.json``.

        ``seed``: the weights. ``auto``: how many series use each rule, how many use each
        member, the global choice and every rule's mean backtest MASE.
        """
        self._check_fitted()
        if self.weights_["mode"] == "seed":
            return {"mode": "seed", "weights": self.weights_["weights"]}
        choices = [Choice.from_json(c) for c in self.weights_["per_series"].values()]
        rules: dict[str, int] = {}
        members: dict[str, int] = {a: 0 for a in self.weights_["aliases"]}
        for choice in choices:
            rules[choice.rule] = rules.get(choice.rule, 0) + 1
            for alias in choice.members:
                members[alias] = members.get(alias, 0) + 1
        return {
            "mode": "auto",
            "global": self.weights_["global"],
            "rules": rules,
            "members": members,
            "backtest_mase": self.weights_["backtest_mase"],
        }

    def _combine(
        self, uids: pd.Series, values: np.ndarray, aliases: list[str]
    ) -> tuple[np.ndarray, dict[str, str]]:
        """Each row's combined forecast, and the series whose chosen members were missing."""
        out = np.full(len(values), np.nan)
        notes: dict[str, str] = {}
        if self.weights_["mode"] == "seed":
            weights = np.array([self.weights_["weights"].get(a, 0.0) for a in aliases])
            out = combine_forecasts(values, weights[None, :])
            missing = pd.DataFrame(~np.isfinite(values) & (weights[None, :] > 0), columns=aliases)
            for uid, lacks in missing.groupby(uids.to_numpy()).any().iterrows():
                lacking = [a for a in aliases if lacks[a]]
                if lacking:
                    notes[str(uid)] = f"no forecast from {', '.join(lacking)}: weights renormalised"
            return out, notes
        global_choice = Choice.from_json(self.weights_["global"])
        per_series = self.weights_["per_series"]
        # only candidates stand in for a missing chosen member: a member the screening left
        # out (refitted only because every member was asked for) never enters the forecast
        candidate = [a in self.weights_["aliases"] for a in aliases]
        values = values[:, candidate]
        aliases = [a for a, keep in zip(aliases, candidate) if keep]
        for uid, index in pd.Series(range(len(uids))).groupby(uids.to_numpy()).indices.items():
            document = per_series.get(str(uid))
            choice = Choice.from_json(document) if document else global_choice
            rows = values[index]
            out[index] = apply_choice(rows, aliases, choice)
            lacking = [m for m in choice.members
                       if m in aliases and not np.isfinite(rows[:, aliases.index(m)]).all()]
            if lacking:
                notes[str(uid)] = (f"no forecast from {', '.join(lacking)}: "
                                   "the next ranked members stand in")
        return out, notes

    def _half_widths(self, frame: pd.DataFrame, h: int) -> np.ndarray:
        """Interval half-width of every row: the pooled scaled conformal quantile per step."""
        residuals = self.backtest_.assign(residual=self.backtest_["yhat"] - self.backtest_["y"])
        scaled = residuals.assign(
            residual=residuals["residual"] / residuals["unique_id"].map(self.scales_).to_numpy()
        )
        pooled = interval_half_widths(scaled, h, self.level)
        widths = np.empty(len(frame))
        for uid, index in frame.groupby("unique_id", sort=False).indices.items():
            widths[index] = (pooled * float(self.scales_.get(uid, 0.0)))[: len(index)]
        return widths


def default_backtest_h(df: pd.DataFrame, freq: str, windows: int = 3) -> int:
    """The backtest horizon: a natural one for ``freq``, shrunk to fit short histories.

    At most ``_HOLDOUT_SHARE`` of the shortest usable history is held out over all
    windows (``h + (windows - 1) * backtest_step(h)`` points); a history is usable when
    it is at least a quarter as long as the longest (a product launched last week should
    not shrink everyone's backtest).
    """
    natural = frequency_of(freq).backtest_horizon
    lengths = df.groupby("unique_id").size().to_numpy()
    if len(lengths) == 0:
        return natural
    budget = int(lengths[lengths >= lengths.max() / 4].min() * _HOLDOUT_SHARE)
    h = natural
    while h > 1 and h + (windows - 1) * backtest_step(h) > budget:
        h -= 1
    return h


def _fit_policy(
    result: BacktestResult, aliases: list[str], seed: np.ndarray, mode: str
) -> tuple[dict[str, Any], np.ndarray]:
    """The ``weights_`` document for ``mode`` and the ensemble's backtest predictions."""
    frame = result.frame
    if mode == "seed":
        return ({"mode": "seed", "aliases": aliases, "weights": _as_dict(aliases, seed)},
                combine_forecasts(frame[aliases].to_numpy(float), seed[None, :]))
    selection = select(frame, aliases, result.scales)
    document = {
        "mode": "auto",
        "aliases": aliases,
        "global": selection.global_choice.to_json(),
        "per_series": {uid: c.to_json() for uid, c in selection.per_series.items()},
        "backtest_mase": selection.rule_loss,
    }
    if frame.empty:
        document["note"] = "no series long enough to backtest: the mean of all members"
    return document, selection.backtest_yhat


def _paid_refits(result: BacktestResult, document: dict[str, Any], yhat: np.ndarray,
                 members: Sequence[Forecaster], uids: Iterable[Hashable]
                 ) -> tuple[dict[str, Any], np.ndarray]:
    """``auto``'s combinations without the global members whose refit buys nothing.

    A global member (the LSTM, LightGBM: one model over every series) is refitted on
    every series as soon as one series' combination names it: on the 500-series demo data
    one series' top-3 mean named ``gbm_diff``, whose refit took 9 s of a 100 s retrain,
    and the backtest loss is lower without it. Each global member the combinations of
    ``uids`` name (the global one for a series too short to backtest), fewest series
    first, is judged as a screened member is (``screening.weigh``), on the whole
    backtest: the combinations are chosen again without it, and it stays only if their
    out-of-sample backtest loss is lower with it by more than
    ``screening.REFIT_MIN_GAIN`` (zero: lower at all); otherwise the combinations
    chosen without it are kept.
    The verdicts are in ``weights_`` under ``refits``. The choice does not depend on
    whether every member is refitted anyway (``refit="all"``), so the accuracy benchmark
    scores the combinations a production retrain serves.
    """
    series = int(result.frame["unique_id"].nunique())
    verdicts: dict[str, screening.Verdict] = {}
    while True:
        named = _named(document, uids)
        judged = sorted((m for m in members if _is_global(m) and m.alias in named
                         and m.alias not in verdicts), key=lambda m: len(named[m.alias]))
        if not judged:
            break
        alias = judged[0].alias
        others = [a for a in document["aliases"] if a != alias]
        if not others:
            break
        trial, trial_yhat = _fit_policy(result, others, _seed_vector(others), "auto")
        verdicts[alias] = screening.weigh(
            alias, series, _selected(document), _selected(trial), screening.REFIT_MIN_GAIN)
        if not verdicts[alias].keep:
            document, yhat = trial, trial_yhat
    if verdicts:
        document["refits"] = {a: v.to_json() for a, v in verdicts.items()}
    return document, yhat


def _selected(document: dict[str, Any]) -> float:
    loss = document["backtest_mase"].get("selected")
    return float("nan") if loss is None else float(loss)


def _is_global(member: Forecaster) -> bool:
    """One model over every series (refitted on all of them), not the fallback."""
    return member.alias != FALLBACK and not getattr(member, "fits_each_series", False)


def _named(weights: dict[str, Any], uids: Iterable[Hashable]) -> dict[str, set[str]]:
    """The series whose choice (their own, or the global one) names each member."""
    global_choice = Choice.from_json(weights["global"])
    named: dict[str, set[str]] = {}
    for uid in uids:
        document = weights["per_series"].get(str(uid))
        choice = Choice.from_json(document) if document else global_choice
        for alias in choice.members:
            named.setdefault(alias, set()).add(str(uid))
    return named


def _refit_scope(weights: dict[str, Any], members: Sequence[Forecaster],
                 uids: Iterable[Hashable]) -> dict[str, set[str] | None]:
    """Which members the refit fits, and on which series (None: all of them).

    ``seed`` and the fallback member: every series. ``auto``: a member on the series whose
    choice (their own, or the global one) names it, or on all of them if it is a global
    model; a member no series names is not refitted.
    """
    if weights["mode"] == "seed":
        return {m.alias: None for m in members}
    named = _named(weights, uids)
    scope: dict[str, set[str] | None] = {}
    for member in members:
        if member.alias == FALLBACK:
            scope[member.alias] = None
        elif member.alias in named:
            scope[member.alias] = None if _is_global(member) else named[member.alias]
    return scope


def _precomputing(member: Forecaster, h: int | None) -> Forecaster:
    """``member``, told to precompute ``h`` steps while fitting if it supports that."""
    if h and hasattr(member, "precompute_h"):
        member.precompute_h = int(h)  # type: ignore[attr-defined]
    return member


def _seed_windows(frame: pd.DataFrame, aliases: list[str], seed: np.ndarray) -> np.ndarray:
    """Which backtest rows ``seed`` keeps: those of the windows where every weighted member
    was backtested.

    Prophet backtests the last window only (``max_backtest_windows``): in the earlier
    ones the combination would be the LSTM alone, renormalised, which is not what is
    served, and its errors would size the 0.6/0.4 forecast's intervals, safety stock,
    policy replays and published scores. Those windows are dropped from the backtest
    table (the members are then scored on the same windows as the combination), unless
    no window has every weighted member (then all are kept: some measured errors are
    better than none). A series whose member failed in a kept window keeps its
    renormalised mix there, as it is served when that member fails in the refit too.
    """
    window = frame["window"].to_numpy(int)
    weighted = frame[[a for a, w in zip(aliases, seed) if w > 0]].to_numpy(float)
    ran = pd.DataFrame(np.isfinite(weighted)).groupby(window).any().all(axis=1)
    complete = ran.index[ran.to_numpy()]
    return np.isin(window, complete) if len(complete) else np.ones(len(frame), bool)


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


class _Abandoned(Exception):
    """Raised inside a background member's progress callback once the foreground failed,
    so its fits stop at their next report instead of running on for nobody."""


def _alongside(
    background: Callable[[ProgressFn], T],
    foreground: Callable[[ProgressFn], U],
    on_progress: ProgressFn,
    background_share: float,
) -> tuple[T, U]:
    """``background`` in a thread while ``foreground`` runs here; both results.

    Prophet spends its fits in worker processes (or Celery shards) while the calling
    process only waits; the in-process members (the LSTM, statsforecast's and LightGBM's
    own pools) fill that wait instead of following it. The thread runs in a copy of the
    caller's context, so a job runner's context variables (where shards go) still apply.
    An error on either side propagates; a failure here stops the background work at its
    next progress report instead of letting it run on for nobody.

    Each report carries both sides' latest fractions, weighted ``background_share`` and
    the rest: one side finishing early (Prophet on a sample) moves the bar by its share,
    not to the end while the other side still works. Reports are made under one lock, so
    ``on_progress`` never hears from both threads at once.
    """
    abandoned = threading.Event()
    latest = [0.0, 0.0]
    lock = threading.Lock()

    def side(index: int) -> ProgressFn:
        def report(fraction: float, message: str = "", **extra: Any) -> None:
            if index == 0 and abandoned.is_set():
                raise _Abandoned("the foreground members failed")
            with lock:
                latest[index] = fraction
                both = background_share * latest[0] + (1.0 - background_share) * latest[1]
                on_progress(both, message, **extra)
        return report

    with ThreadPoolExecutor(1, thread_name_prefix="restock-overlap") as pool:
        future = pool.submit(contextvars.copy_context().run, background, side(0))
        try:
            here = foreground(side(1))
        except BaseException:
            abandoned.set()
            raise
        return future.result(), here


def _merged(parts: list[BacktestResult], aliases: list[str]) -> BacktestResult:
    """One backtest from those of disjoint member groups; the first covers every series
    the others cover (the later ones may cover fewer: a screened member's sample)."""
    first, *rest = parts
    frame = first.frame
    keys = ["unique_id", "window", "step"]
    for part in rest:
        frame = frame.merge(part.frame[[*keys, *part.aliases]], on=keys, how="outer")
    columns = ["unique_id", "window", "cutoff", "ds", "step", "y", *aliases]
    return BacktestResult(
        frame=frame[columns].sort_values(keys, ignore_index=True),
        aliases=aliases,
        excluded=first.excluded,
        skipped={k: v for part in parts for k, v in part.skipped.items()},
        scales=first.scales,
        members={k: v for part in parts for k, v in part.members.items()},
        seconds={k: v for part in parts for k, v in part.seconds.items()},
    )


def _stacked(sample: BacktestResult, remainder: BacktestResult) -> BacktestResult:
    """One member group's backtest from its runs on disjoint sets of series."""
    frame = pd.concat([sample.frame, remainder.frame], ignore_index=True)
    seconds = {a: round(sample.seconds.get(a, 0.0) + remainder.seconds.get(a, 0.0), 3)
               for a in sample.aliases}
    skipped = {a: sample.skipped.get(a, {}) | remainder.skipped.get(a, {})
               for a in sample.aliases}
    return BacktestResult(
        frame=frame.sort_values(["unique_id", "window", "step"], ignore_index=True),
        aliases=sample.aliases,
        excluded=sample.excluded | remainder.excluded,
        skipped={a: reasons for a, reasons in skipped.items() if reasons},
        scales=pd.concat([sample.scales, remainder.scales]),
        members=sample.members | remainder.members,
        seconds=seconds,
    )


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


def _clipped(members: Sequence[Forecaster]) -> dict[str, int]:
    """Negative forecasts clipped at 0 in the members' last predictions, per series."""
    total: dict[str, int] = {}
    for member in members:
        for uid, count in getattr(member, "clipped_", {}).items():
            total[uid] = total.get(uid, 0) + count
    return total


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


def _caps(df: pd.DataFrame) -> pd.Series:
    """The largest plausible forecast per series: ``PLAUSIBLE_FACTOR`` x its largest sale
    (plus one unit, so a series that never sold may still get a small forecast)."""
    return PLAUSIBLE_FACTOR * df.groupby("unique_id")["y"].max().clip(lower=0) + 1.0


def _set_aside_implausible(
    frame: pd.DataFrame, aliases: list[str], caps: pd.Series
) -> tuple[np.ndarray, dict[str, list[str]]]:
    """Member values above their series' cap become NaN (missing); and who had them."""
    values = frame[aliases].to_numpy(float)
    cap = frame["unique_id"].map(caps).to_numpy(float)
    bad = values > np.where(np.isfinite(cap), cap, np.inf)[:, None]
    found: dict[str, list[str]] = {}
    for row in np.flatnonzero(bad.any(axis=1)):
        uid = str(frame["unique_id"].iat[row])
        found.setdefault(uid, [])
        found[uid] += [a for a, b in zip(aliases, bad[row]) if b and a not in found[uid]]
    return np.where(bad, np.nan, values), found


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
