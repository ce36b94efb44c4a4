"""The statistical members: statsforecast's local models behind the ``Forecaster`` interface.

Each member is one statsforecast model fitted per series; all the numerics are
statsforecast's. What this module adds is what the ensemble needs from every member:

- **Every series handled or explained.** A series shorter than a model needs is left out
  and its reason recorded in ``skipped_`` (the ensemble falls back to the other members);
  a series statsforecast fails on (it raises, or gives non-finite values) is caught by a
  ``NaNModel`` fallback inside statsforecast and recorded the same way. Zero and constant
  series are fitted like any other. ``seasonal_naive`` fits every series with one point
  or more (naive when shorter than a season): it is the ensemble's fallback and the MASE
  yardstick.
- **Seasonality only where the history can carry it.** The season comes from the
  frequency (``restock.calendar``); ETS fits it only with two full seasons of
  history (less cannot separate season from level), MSTL adds the yearly cycle to the
  weekly one only with two full years of daily data.
- **One pass.** ``fit`` runs ``StatsForecast.forecast``, which fits and forecasts each
  series in one go and keeps no model objects; ``precompute_h`` (set by the ensemble to
  the horizon it will ask for) decides how many steps. The forecasts are the fitted
  state: ``save`` writes them to parquet, ``load`` reads them back, nothing is pickled.
- **A cheap, faithful backtest.** ``cross_validate`` runs every window of a series in one
  ``StatsForecast.forecast`` pass (``_RollingOrigins``): the model is fitted on the oldest
  window, and later windows refit only what that fit chose (``later_windows``). ETS, CES
  and MSTL keep the chosen form and refit its parameters, a fraction of a full search;
  statsforecast's ``forward`` (what ``cross_validation(refit=False)`` uses) forecast
  those three much worse than a refit (on 200 M3 series, median scaled error of the
  third window 0.177 vs 0.144 for ETS, 0.31 vs 0.17 for CES, 0.193 vs 0.159 for MSTL),
  which would have under-rated them in the selection; Theta's ``forward`` matched its
  refit and is kept. No parameter is fitted on data it is scored on. The ensemble's refit
  on the whole history searches every form again: the oldest window's form refitted
  there forecast M3's test worse (MASE 0.876 vs 0.863 for ETS).
- **Cores.** A fit of enough series for a pool to pay off (``pool_min_series``, measured
  per model) runs its chunks of ``SHARD_SERIES`` over one pool of ``n_jobs`` processes
  (``fanout.run_shards``), each chunk one single-process ``StatsForecast`` call; never
  inside a daemonic process (a Celery prefork worker may not have children). The pool
  starts from the fork server (``restock.processes``): a fork of the threaded web server
  could hang. Smaller fits run here in chunks of ``CHUNK_SERIES``. ``on_progress`` is
  called as each chunk lands, so a long fit reports progress and can be cancelled.
- **The cluster.** When a Celery retrain fans out (``restock.models.fanout``), the chunks
  of a member worth a pool (``pool_min_series``) become shard tasks of ``SHARD_SERIES``
  series on the workers, as Prophet's fits do, watched by ``restock.jobs.shards``; the
  chunk's history and forecasts cross the broker as Arrow (``ChunkWork``), so the
  forecasts are the in-process ones to the bit. Seasonal naive and the intermittent
  family always run here: a task costs more than their whole fit.

Artifacts: ``statistical/<alias>.parquet`` (``unique_id, step, ds, <alias>``: the raw,
unclipped forecasts) and ``statistical/<alias>.json`` (format, hyperparameters,
frequency, steps, last dates, skipped series).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import warnings
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from restock.calendar import frequency_of, seasonal_periods
from restock.errors import InvalidParameterError
from restock.models.base import Forecaster, ProgressFn, no_progress
from restock.models.fanout import (ShardWork, frame_from_wire, frame_to_wire, on_cluster,
                                   run_shards)
from restock.models.frames import init_params

FORMAT_VERSION = 1
FOLDER = "statistical"
#: series per StatsForecast call; progress (and cancellation) happens between calls
CHUNK_SERIES = 200
#: series per shard task when chunks go to the cluster's workers (``fanout``): AutoETS
#: on two years of daily data takes a few seconds for these, so shards spread over every
#: free pool slot and a lost one costs little to send again
SHARD_SERIES = 50
#: season length statsforecast sees for "no seasonality"
NONSEASONAL = 1

#: a model's season length: one period, or several (MSTL)
SeasonSpec = int | tuple[int, ...]


class StatisticalForecaster(Forecaster):
    """One statsforecast model per series, run by ``StatsForecast`` in chunks.

    Subclasses name the model (``_make_model``), the season length it gets for a series
    of a given length (``_season_for``) and the shortest history it can fit
    (``min_length`` or ``_skip_reason``).
    """

    #: the shortest history the model fits; shorter series go to ``skipped_``
    min_length: ClassVar[int] = 1
    #: how ``cross_validate`` forecasts the windows after the oldest: ``"refit"`` fits
    #: the model afresh, ``"settled"`` refits the form the oldest window's automatic
    #: search chose (``_settled``), ``"forward"`` runs the oldest window's fitted model
    #: over the longer history (statsforecast's ``forward``)
    later_windows: ClassVar[str] = "refit"
    #: one model per series: the ensemble refits it only on the series that use it
    fits_each_series: ClassVar[bool] = True
    #: how ``auto`` screens it (``models.screening``): None (never, the cheap members),
    #: "sampled" (only in a catalogue larger than the sample)
    screened: ClassVar[str | None] = None
    #: a fit of fewer series runs in this process: starting the pool costs ~0.3-0.6 s
    #: (measured), which AutoETS on daily data earns back from ~20 series on two cores
    pool_min_series: ClassVar[int] = 20

    #: set by the caller before ``fit`` (the ensemble does): the number of steps ``fit``
    #: forecasts and keeps; ``predict(h)`` up to it returns those values. Not a
    #: hyperparameter (not saved); 0 means the frequency's default horizon.
    precompute_h: int = 0

    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = n_jobs

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters by constructor name (what ``clone`` and ``save`` need)."""
        return init_params(self)

    # -- the model --------------------------------------------------------------------

    @abstractmethod
    def _make_model(self, season: SeasonSpec) -> Any:
        """The statsforecast model (aliased ``self.alias``) for this season length."""

    def _season_for(self, season: int, n: int) -> SeasonSpec:
        """The season length the model gets for a history of ``n`` points."""
        return season

    def _skip_reason(self, season: int, n: int) -> str | None:
        """Why a history of ``n`` points cannot be fitted (None: it can)."""
        if n < self.min_length:
            return f"{self.alias} needs at least {self.min_length} points, has {n}"
        return None

    @staticmethod
    def _settled(fitted: Any) -> Any:
        """For ``later_windows = "settled"``: an unfitted model of the form ``fitted``
        (the oldest window's fit of ``_make_model``) chose."""
        raise NotImplementedError

    # -- Forecaster -------------------------------------------------------------------

    def fit(self, df: pd.DataFrame, freq: str, on_progress: ProgressFn = no_progress) -> Self:
        """Fit every series of ``df`` and forecast ``precompute_h`` steps in one pass."""
        frequency = frequency_of(freq)
        season = frequency.season_length
        steps = int(self.precompute_h) or frequency.default_horizon
        history = _clean(df)
        lengths = history.groupby("unique_id", sort=True).size()
        on_progress(0.0, f"{self.alias}: fitting {len(lengths)} series")
        groups, skipped = self._plan(lengths, season)
        forecasts = self._forecast(history, freq, groups, steps, on_progress)
        failed = _failed(forecasts, self.alias, ["unique_id"])
        for uid in forecasts.loc[failed, "unique_id"].unique():
            skipped[uid] = f"statsforecast could not fit {self.alias} on this series"
        forecasts = forecasts[~failed].reset_index(drop=True)
        ends = history.groupby("unique_id", sort=True)["ds"].max()
        self.freq_, self.season_, self.steps_ = freq, season, steps
        #: ``unique_id, step, ds, <alias>``: the raw (unclipped) forecasts, by series and step
        self.forecasts_ = forecasts
        fitted = set(forecasts["unique_id"])
        self.last_dates_ = {uid: pd.Timestamp(ds) for uid, ds in ends.items() if uid in fitted}
        self.skipped_ = dict(sorted(skipped.items()))
        self.clipped_: dict[str, int] = {}
        # the caller's frame, not a copy (as scikit-learn's neighbours keep their X): every
        # member of an ensemble shares it, and only a predict beyond the steps reads it
        self._history: pd.DataFrame | None = df
        on_progress(
            1.0, f"{self.alias}: {len(self.last_dates_)} series fitted, {len(skipped)} skipped"
        )
        return self

    def predict(self, h: int) -> pd.DataFrame:
        """Forecast ``h`` steps per fitted series, clipped at zero (counts in ``clipped_``).

        Up to the steps computed by ``fit`` this reads them; beyond, a fitted (not loaded)
        member forecasts again from the history it kept, which gives the same first steps.
        """
        self._check_fitted()
        if h > self.steps_:
            self._extend(h)
        head = self.forecasts_[self.forecasts_["step"] <= h]
        raw = head[self.alias].to_numpy(float)
        negative = head.loc[raw < 0, "unique_id"].value_counts()
        self.clipped_ = {str(uid): int(n) for uid, n in sorted(negative.items())}
        return pd.DataFrame(
            {
                "unique_id": head["unique_id"].to_numpy(dtype=object),
                "ds": head["ds"].to_numpy(dtype="datetime64[ns]"),
                self.alias: np.maximum(raw, 0.0),
            }
        )

    def save(self, directory: Path) -> None:
        """Write ``statistical/<alias>.parquet`` (the raw forecasts) and ``<alias>.json``."""
        self._check_fitted()
        folder = Path(directory) / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        self.forecasts_.to_parquet(folder / f"{self.alias}.parquet", index=False)
        index = {
            "format": FORMAT_VERSION,
            "alias": self.alias,
            "params": self.get_params(),
            "freq": self.freq_,
            "season": self.season_,
            "steps": self.steps_,
            "last_ds": {uid: ds.isoformat() for uid, ds in self.last_dates_.items()},
            "skipped": self.skipped_,
        }
        (folder / f"{self.alias}.json").write_text(json.dumps(index))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Read back what ``save`` wrote; ``predict`` is limited to the saved steps."""
        folder = Path(directory) / FOLDER
        index = json.loads((folder / f"{cls.alias}.json").read_text())
        if index.get("format") != FORMAT_VERSION:
            raise InvalidParameterError(
                f"{folder / (cls.alias + '.json')} has format {index.get('format')!r}, "
                f"this version reads {FORMAT_VERSION}"
            )
        model = cls(**index["params"])
        model.freq_, model.season_, model.steps_ = index["freq"], index["season"], index["steps"]
        model.forecasts_ = pd.read_parquet(folder / f"{cls.alias}.parquet")
        model.last_dates_ = {uid: pd.Timestamp(ds) for uid, ds in index["last_ds"].items()}
        model.skipped_ = index["skipped"]
        model.clipped_ = {}
        model._history = None
        return model

    # -- the backtest hook ------------------------------------------------------------

    def cross_validate(
        self,
        df: pd.DataFrame,
        freq: str,
        h: int,
        n_windows: int,
        step_size: int,
        on_progress: ProgressFn = no_progress,
        refit: bool = False,
    ) -> pd.DataFrame:
        """Rolling-origin forecasts: ``unique_id, window, step, <alias>``, clipped at zero.

        Windows are cut from each series' own end; window 0 is the oldest. For a series
        of ``n`` points, window ``w`` trains on its first
        ``n - h - (n_windows - 1 - w) * step_size`` points and forecasts the next ``h``
        (``step`` 1..h). The model (and its season length) is chosen as ``fit`` would
        choose it for the oldest window's history; a series whose oldest window is too
        short for that model is left out, as are windows statsforecast could not
        forecast. Later windows follow ``later_windows`` unless ``refit`` asks for a
        fresh fit of each.
        """
        for name, value in (("h", h), ("n_windows", n_windows), ("step_size", step_size)):
            if int(value) < 1:
                raise InvalidParameterError(f"cross_validate: {name} must be >= 1, got {value}")
        season = frequency_of(freq).season_length
        test_size = h + (n_windows - 1) * step_size
        history = _clean(df)
        train = history.groupby("unique_id", sort=True).size() - test_size
        on_progress(0.0, f"{self.alias}: backtesting {len(train)} series")
        groups, _ = self._plan(train[train >= 1], season)
        work = {"op": "backtest", "h": h, "n_windows": n_windows, "step_size": step_size,
                "later": "refit" if refit else self.later_windows}
        frames = list(self._run(history, freq, groups, work, on_progress, "backtested"))
        on_progress(1.0, f"{self.alias}: backtest done")
        out = _ROLLING_COLUMNS | {self.alias: float}
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in out.items()})
        cv = pd.concat(frames, ignore_index=True)
        cv["unique_id"] = cv["unique_id"].astype(str)
        cv = cv.sort_values(["unique_id", "ds"], kind="stable", ignore_index=True)
        position = cv.groupby("unique_id", sort=False).cumcount().to_numpy()
        cv = cv.assign(window=position // h, step=position % h + 1)
        cv = cv[~_failed(cv, self.alias, ["unique_id", "window"])]
        cv[self.alias] = np.maximum(cv[self.alias].to_numpy(float), 0.0)
        return cv[list(out)].reset_index(drop=True)

    # -- machinery --------------------------------------------------------------------

    def _plan(
        self, lengths: pd.Series, season: int
    ) -> tuple[dict[SeasonSpec, list[str]], dict[str, str]]:
        """Series grouped by the season length their model gets, and the ones skipped."""
        groups: dict[SeasonSpec, list[str]] = {}
        skipped: dict[str, str] = {}
        for uid, n in lengths.items():
            reason = self._skip_reason(season, int(n))
            if reason is None:
                groups.setdefault(self._season_for(season, int(n)), []).append(str(uid))
            else:
                skipped[str(uid)] = reason
        return groups, skipped

    def _forecast(
        self,
        history: pd.DataFrame,
        freq: str,
        groups: dict[SeasonSpec, list[str]],
        steps: int,
        on_progress: ProgressFn,
    ) -> pd.DataFrame:
        """Raw forecasts of every planned series: ``unique_id, step, ds, <alias>`` (NaN
        where statsforecast failed), sorted; the dates are statsforecast's own."""
        work = {"op": "forecast", "h": steps}
        frames = list(self._run(history, freq, groups, work, on_progress, "fitted"))
        columns = {"unique_id": object, "step": int, "ds": "datetime64[ns]", self.alias: float}
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
        out = pd.concat(frames, ignore_index=True)
        out["unique_id"] = out["unique_id"].astype(str)
        out = out.sort_values(["unique_id", "ds"], kind="stable", ignore_index=True)
        out["step"] = np.tile(np.arange(1, steps + 1), len(out) // steps)
        return out[list(columns)].astype(columns)

    def _extend(self, h: int) -> None:
        """Forecast ``h`` steps again from the kept history (a fitted, not loaded, member)."""
        if self._history is None:
            raise InvalidParameterError(
                f"the {self.alias} member was loaded with {self.steps_} forecast steps; "
                f"{h} steps need a retrain with a longer horizon"
            )
        history = _clean(self._history)
        groups, _ = self._plan(history.groupby("unique_id", sort=True).size(), self.season_)
        longer = self._forecast(history, self.freq_, groups, h, no_progress)
        self.forecasts_ = longer[longer["unique_id"].isin(self.last_dates_)].reset_index(drop=True)
        self.steps_ = h

    def _run(
        self,
        history: pd.DataFrame,
        freq: str,
        groups: dict[SeasonSpec, list[str]],
        work: dict[str, Any],
        on_progress: ProgressFn,
        verb: str,
    ) -> Iterator[pd.DataFrame]:
        """``work`` (see ``run_chunk``) on every chunk of every group, with progress.

        A member costly enough to pool (``pool_min_series``) sends its chunks as shards
        to the cluster's workers when the job runner sends them there
        (``fanout.on_cluster``), else over one local pool of ``n_jobs`` processes: then
        they are ``SHARD_SERIES`` series each, so that they spread over every free slot.
        Otherwise they run here in chunks of ``CHUNK_SERIES``.
        """
        total = sum(len(uids) for uids in groups.values())
        remote = on_cluster() and total >= self.pool_min_series
        processes = 1 if remote else self._workers(total)
        size = SHARD_SERIES if remote or processes > 1 else CHUNK_SERIES
        chunks = [
            (season, uids[start : start + size])
            for season, uids in groups.items()
            for start in range(0, len(uids), size)
        ]
        # lazily: here, one chunk's copy of the history at a time
        shards = ((season, history[history["unique_id"].isin(uids)]) for season, uids in chunks)
        config = {"alias": self.alias, "params": self.get_params(), "freq": freq, **work}
        # a pool's workers get an unfitted copy, not this member and whatever it holds
        runner = ChunkWork(type(self)(**self.get_params()) if processes > 1 else self)
        done = 0
        for index, frame in run_shards(runner, shards, config, here=not remote,
                                       processes=processes):
            yield frame
            done += len(chunks[index][1])
            on_progress(done / total, f"{self.alias}: {verb} {done}/{total} series")

    def run_chunk(self, season: SeasonSpec, part: pd.DataFrame, config: dict[str, Any]
                  ) -> pd.DataFrame:
        """One ``StatsForecast.forecast`` call on the series of ``part``: ``config["op"]``
        is ``forecast`` (``h`` steps) or ``backtest`` (``_RollingOrigins`` with ``h``,
        ``n_windows``, ``step_size`` and ``later``: every window's forecasts as
        consecutive rows of each series)."""
        from statsforecast import StatsForecast
        from statsforecast.models import NaNModel

        model = self._make_model(season)
        steps = config["h"]
        if config["op"] == "backtest":
            model = _RollingOrigins(model, self._settled, config["h"], config["n_windows"],
                                    config["step_size"], config["later"])
            steps = config["n_windows"] * config["h"]
        # one process: the parallelism is over chunks (``_run``), or over the cluster
        sf = StatsForecast(models=[model], freq=config["freq"], n_jobs=1,
                           fallback_model=NaNModel())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statsmodels/numpy chatter per series
            return sf.forecast(df=part, h=steps)

    def _workers(self, n_series: int) -> int:
        """Processes for a fit of ``n_series``: ``n_jobs`` capped by the cores, 1 where a
        pool cannot help (few series, or inside a daemonic Celery worker process)."""
        if n_series < self.pool_min_series or multiprocessing.current_process().daemon:
            return 1
        return max(1, min(int(self.n_jobs), os.cpu_count() or 1, n_series))


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    """``unique_id`` (str), ``ds``, ``y`` (float), sorted: what StatsForecast gets."""
    out = pd.DataFrame(
        {
            "unique_id": df["unique_id"].astype(str).to_numpy(),
            "ds": pd.to_datetime(df["ds"]).to_numpy(),
            "y": df["y"].to_numpy(dtype=float),
        }
    )
    return out.sort_values(["unique_id", "ds"], kind="stable", ignore_index=True)


def _failed(frame: pd.DataFrame, alias: str, by: list[str]) -> np.ndarray:
    """Rows whose group (series, or series and window) has a non-finite forecast."""
    bad = pd.Series(~np.isfinite(frame[alias].to_numpy(float)), index=frame.index)
    return bad.groupby([frame[c] for c in by]).transform("any").to_numpy(bool)


#: the backtest table's columns before the member's own
_ROLLING_COLUMNS: dict[str, Any] = {"unique_id": object, "window": int, "step": int}


class _RollingOrigins:
    """A series' backtest windows as one statsforecast model, so that one
    ``StatsForecast.forecast`` call per chunk (in a pool worker, a cluster shard or here,
    with statsforecast's fallback) runs them all.

    ``forecast(y, n_windows * h)`` returns window 0's ``h`` forecasts (the model fitted
    on the oldest training part), then each later window's (``later``: ``refit``,
    ``settled`` or ``forward``, see ``StatisticalForecaster.later_windows``). A window
    that fails is NaN (and left out of the backtest), not the whole series.
    """

    uses_exog = False

    def __init__(self, model: Any, settle: Any, h: int, n_windows: int, step_size: int,
                 later: str) -> None:
        self.model, self.settle, self.later = model, settle, later
        self.h, self.n_windows, self.step_size = h, n_windows, step_size
        self.alias = model.alias

    def __repr__(self) -> str:
        return self.alias

    def new(self) -> "_RollingOrigins":
        return type(self)(self.model, self.settle, self.h, self.n_windows, self.step_size,
                          self.later)

    def forecast(self, y: np.ndarray, h: int, X: Any = None, X_future: Any = None,
                 fitted: bool = False) -> dict[str, np.ndarray]:
        out = np.full(h, np.nan)
        first = None
        for window in range(self.n_windows):
            end = len(y) - self.h - (self.n_windows - 1 - window) * self.step_size
            part = slice(window * self.h, (window + 1) * self.h)
            try:
                if first is None or self.later == "refit":
                    fitted_model = self.model.new().fit(y=y[:end])
                    first = fitted_model if first is None else first
                    out[part] = fitted_model.predict(h=self.h)["mean"]
                else:
                    out[part] = self._later(first, y[:end])
            except Exception:  # noqa: BLE001 - one window statsforecast cannot fit: left out
                continue
        return {"mean": out}

    def _later(self, first: Any, y: np.ndarray) -> np.ndarray:
        """A later window's forecast from what the oldest window's fit ``first`` chose;
        a fresh fit where that raises (statsforecast does not catch ``forward``'s errors,
        and a settled multiplicative form cannot fit a history that now has zeros)."""
        try:
            if self.later == "forward":
                return first.forward(y=y, h=self.h)["mean"]
            return self.settle(first).fit(y=y).predict(h=self.h)["mean"]
        except Exception:  # noqa: BLE001
            return self.model.new().fit(y=y).predict(h=self.h)["mean"]


#: one chunk: the season length its series' model gets, and their history
Chunk = tuple[SeasonSpec, pd.DataFrame]


@dataclass(frozen=True)
class ChunkWork(ShardWork[Chunk, pd.DataFrame]):
    """A chunk of series for ``run_chunk``, as a shard: Arrow for the history and the
    forecasts, JSON for the rest.

    ``member`` runs the chunk here; in a worker's shard task (``member`` None) the member
    is rebuilt from the config's alias and hyperparameters.
    """

    name: ClassVar[str] = "statistical"
    member: StatisticalForecaster | None = None

    def run(self, shard: Chunk, config: dict[str, Any]) -> pd.DataFrame:
        member = self.member or MEMBERS[config["alias"]](**config["params"])
        return member.run_chunk(*shard, config)

    def series(self, shard: Chunk) -> int:
        return int(shard[1]["unique_id"].nunique())

    def encode(self, shard: Chunk) -> Any:
        return {"season": shard[0], "history": frame_to_wire(shard[1])}

    def decode(self, data: Any) -> Chunk:
        season = data["season"]  # MSTL's several periods arrive as a JSON list
        return (tuple(season) if isinstance(season, list) else season,
                frame_from_wire(data["history"]))

    def encode_result(self, result: pd.DataFrame) -> Any:
        return frame_to_wire(result)

    def decode_result(self, data: Any) -> pd.DataFrame:
        return frame_from_wire(data)


#: the statistical members' shard kind, as a worker's shard task runs it
SHARDS = ChunkWork()


# -- the members ------------------------------------------------------------------------


class SeasonalNaiveForecaster(StatisticalForecaster):
    """Repeat the last season; naive (the last value) when the history is shorter.

    Fits every series with at least one point: the ensemble's fallback member and the
    yardstick of MASE.
    """

    alias = "seasonal_naive"
    pool_min_series = 10**9  # microseconds per series: a pool never pays off

    def _season_for(self, season: int, n: int) -> SeasonSpec:
        return season if n >= season else NONSEASONAL

    def _make_model(self, season: SeasonSpec) -> Any:
        from statsforecast.models import Naive, SeasonalNaive

        if season == NONSEASONAL:
            return Naive(alias=self.alias)
        return SeasonalNaive(season_length=season, alias=self.alias)


class ETSForecaster(StatisticalForecaster):
    """AutoETS: the exponential smoothing model (error, trend, season) with the best AICc.

    Seasonal candidates only with two full seasons of history; statsforecast cannot fit
    fewer than 7 points ("tiny datasets").
    """

    alias = "ets"
    screened = "sampled"  # seconds per fit: see models.screening
    min_length = 7
    later_windows = "settled"

    def _season_for(self, season: int, n: int) -> SeasonSpec:
        return season if n >= 2 * season else NONSEASONAL

    def _make_model(self, season: SeasonSpec) -> Any:
        from statsforecast.models import AutoETS

        return AutoETS(season_length=season, alias=self.alias)

    @staticmethod
    def _settled(fitted: Any) -> Any:
        return _ets_of_form(fitted)


class ThetaForecaster(StatisticalForecaster):
    """Dynamic Optimised Theta (Fiorucci et al. 2016), the M3 winner's modern form.

    statsforecast deseasonalises itself (multiplicative decomposition, when the seasonal
    autocorrelation is significant and the history spans two seasons) and fits from 4
    points. Chosen over AutoTheta, which tries four Theta variants: see the module notes.
    """

    alias = "theta"
    screened = "sampled"  # seconds per fit: see models.screening
    min_length = 4
    later_windows = "forward"  # measured: as good as a refit on M3
    pool_min_series = 50  # ~4x cheaper per series than AutoETS

    def _make_model(self, season: SeasonSpec) -> Any:
        from statsforecast.models import DynamicOptimizedTheta

        return DynamicOptimizedTheta(season_length=season, alias=self.alias)


class CESForecaster(StatisticalForecaster):
    """AutoCES: complex exponential smoothing (Svetunkov & Kourentzes), best by AICc.

    Seasonal forms only with two seasons of history (statsforecast's own rule); it fails
    erratically below 5 points, so it needs 7.
    """

    alias = "ces"
    screened = "sampled"  # seconds per fit: see models.screening
    min_length = 7
    later_windows = "settled"

    def _make_model(self, season: SeasonSpec) -> Any:
        from statsforecast.models import AutoCES

        return AutoCES(season_length=season, alias=self.alias)

    @staticmethod
    def _settled(fitted: Any) -> Any:
        from statsforecast.models import AutoCES

        return AutoCES(season_length=fitted.season_length, model=fitted.model_["seasontype"],
                       alias=fitted.alias)


class MSTLForecaster(StatisticalForecaster):
    """MSTL: STL decomposition with several seasons, the trend forecast by AutoETS (no season).

    Daily data gets the weekly and the yearly cycle with two full years of history, the
    weekly one alone with two weeks; other frequencies get their one season with two
    seasons of history. Without a seasonal frequency there is nothing to decompose, so
    every series is skipped.
    """

    alias = "mstl"
    screened = "sampled"  # seconds per fit: see models.screening
    later_windows = "settled"

    def _skip_reason(self, season: int, n: int) -> str | None:
        if season < 2:
            return "mstl needs a seasonal frequency (daily, weekly, monthly, quarterly)"
        if n < 2 * season:
            return f"mstl needs two seasons ({2 * season} points), has {n}"
        return None

    def _season_for(self, season: int, n: int) -> SeasonSpec:
        periods = seasonal_periods(season)
        if len(periods) > 1 and n >= 2 * periods[-1]:
            return periods
        return season

    def _make_model(self, season: SeasonSpec) -> Any:
        from statsforecast.models import MSTL, AutoETS

        periods = list(season) if isinstance(season, tuple) else season
        return MSTL(
            season_length=periods, trend_forecaster=AutoETS(model="ZZN"), alias=self.alias
        )

    @staticmethod
    def _settled(fitted: Any) -> Any:
        from statsforecast.models import MSTL

        return MSTL(season_length=fitted.season_length,
                    trend_forecaster=_ets_of_form(fitted.trend_forecaster), alias=fitted.alias)


class _IntermittentForecaster(StatisticalForecaster):
    """A flat-rate method for intermittent demand: milliseconds per series, no forward."""

    pool_min_series = 10**9

    def _season_for(self, season: int, n: int) -> SeasonSpec:
        return NONSEASONAL


class CrostonSBAForecaster(_IntermittentForecaster):
    """Croston's method with the Syntetos-Boylan bias correction (0.95 x size / interval)."""

    alias = "croston_sba"

    def _make_model(self, season: SeasonSpec) -> Any:
        from statsforecast.models import CrostonSBA

        return CrostonSBA(alias=self.alias)


class IMAPAForecaster(_IntermittentForecaster):
    """IMAPA: optimised SES over several temporal aggregation levels, averaged."""

    alias = "imapa"

    def _make_model(self, season: SeasonSpec) -> Any:
        from statsforecast.models import IMAPA

        return IMAPA(alias=self.alias)


class TSBForecaster(_IntermittentForecaster):
    """Teunter-Syntetos-Babai: SES of demand sizes times SES of the demand probability.

    Unlike Croston it updates the probability every period, so a product that stops
    selling decays towards zero instead of keeping its last rate (obsolescence).

    statsforecast has no optimised TSB, so the smoothing constants are fixed: ``alpha_d``
    0.1 for the demand size (Croston's usual value, as in ``croston_sba``) and a smaller
    ``alpha_p`` 0.05 for the probability, which is updated every period rather than only
    at demands and so needs less weight per update to move as fast. On pizzaplace's
    backtest windows (before the hold-out) the 4x4 grid over 0.05-0.3 x 0.02-0.2 spanned
    MASE 0.790-0.818; this pair scored 0.793, the grid's best 0.790 (0.05, 0.05).
    """

    alias = "tsb"

    def __init__(self, n_jobs: int = 1, alpha_d: float = 0.1, alpha_p: float = 0.05) -> None:
        super().__init__(n_jobs=n_jobs)
        self.alpha_d = alpha_d
        self.alpha_p = alpha_p

    def _make_model(self, season: SeasonSpec) -> Any:
        from statsforecast.models import TSB

        return TSB(alpha_d=self.alpha_d, alpha_p=self.alpha_p, alias=self.alias)


def _ets_of_form(fitted: Any) -> Any:
    """An AutoETS limited to the error, trend, season and damping ``fitted`` chose."""
    from statsforecast.models import AutoETS

    components = fitted.model_["components"]
    return AutoETS(season_length=fitted.season_length, model=components[:3],
                   damped=components[3] == "D", alias=fitted.alias)


#: every statistical member, by alias
MEMBERS: dict[str, type[StatisticalForecaster]] = {
    cls.alias: cls
    for cls in (
        SeasonalNaiveForecaster,
        ETSForecaster,
        ThetaForecaster,
        CESForecaster,
        MSTLForecaster,
        CrostonSBAForecaster,
        IMAPAForecaster,
        TSBForecaster,
    )
}
