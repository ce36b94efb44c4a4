"""The ``prophet`` member: one Prophet model per series, fitted in worker processes.

Prophet is the seed's interpretable member. What changes here:

- **MAP fits, no sampling.** ``uncertainty_samples=0``: the ensemble's intervals come from
  backtest residuals (``restock.models.intervals``), so Prophet's own simulated intervals
  would only cost time.
- **Seasonalities from the data.** Weekly seasonality for daily data spanning at least two
  weeks; yearly seasonality only with two years of history (less cannot separate a yearly
  cycle from trend); nothing for a handful of points. Monthly data gets a low Fourier
  order, since twelve points a year cannot support Prophet's default of ten.
- **Worker processes, never fork.** The web server is multi-threaded and has torch loaded,
  so forking it is unsafe; workers start by ``forkserver`` (``spawn`` where that is not
  available), take batches of series to amortise the start-up and return
  ``model_to_json`` strings. Progress is reported as batches finish, and a ``JobCancelled``
  raised by the callback cancels the outstanding batches. When a Celery retrain fans out
  (``restock.models.fanout``), catalogues of ``_MIN_SERIES_FOR_POOL`` series or more go to
  the cluster instead, as shards of ``SHARD_SIZE`` series (``ProphetShards``).
- **Non-negative output.** Forecasts are clipped at zero; ``clipped_`` counts the clipped
  values per series of the last ``predict`` (the serving layer warns about it).

Artifacts: ``prophet/<quoted unique_id>.json`` (``model_to_json``) and
``prophet/index.json`` (hyperparameters, frequency, file names, skipped series).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import numpy as np
import pandas as pd

from restock.calendar import YEARLY_MIN_SPAN_DAYS, frequency_of
from restock.models.base import Forecaster, ProgressFn, future_dates, no_progress
from restock.models.fanout import (ShardWork, on_cluster, run_shards, series_from_wire,
                                   series_to_wire)
from restock.models.frames import forecast_frame, Series, init_params, iter_series

FORMAT_VERSION = 1
#: below this many series the pool's start-up costs more than it saves
_MIN_SERIES_FOR_POOL = 40
#: batches per worker: enough to balance the load and report progress, few enough to be cheap
_BATCHES_PER_WORKER = 4


class ProphetForecaster(Forecaster):
    """One MAP-fitted Prophet model per series.

    Parameters
    ----------
    n_jobs:
        Worker processes for fitting; 1 fits in the calling process.
    holidays_country:
        Country code for Prophet's built-in holidays (daily data only), e.g. ``"US"``.
    changepoint_prior_scale, seasonality_mode:
        Passed to Prophet unchanged.

    Warm starts (Prophet's "updating fitted models") were measured and left out: with
    cmdstanpy each fit is dominated by the Stan process start-up, and starting from the
    previous parameters saved no time on 730-day daily series.
    """

    alias = "prophet"

    def __init__(
        self,
        n_jobs: int = 1,
        holidays_country: str = "",
        changepoint_prior_scale: float = 0.05,
        seasonality_mode: str = "additive",
    ) -> None:
        self.n_jobs = n_jobs
        self.holidays_country = holidays_country
        self.changepoint_prior_scale = changepoint_prior_scale
        self.seasonality_mode = seasonality_mode

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters by constructor name (what ``clone`` and ``save`` need)."""
        return init_params(self)

    #: set by the caller before ``fit`` (the ensemble does): the workers also forecast this
    #: many steps right after each fit, while the model is in memory, and ``predict(h)`` for
    #: ``h`` up to it reads those values instead of parsing and predicting every model again
    #: in the calling process. Not a hyperparameter (not saved); 0 turns it off.
    precompute_h: int = 0
    #: one fit per series costs ~0.1 s, so the backtest fits Prophet on its latest window only
    max_backtest_windows: int = 1
    #: the fits run in worker processes (or Celery shards) while the caller waits, so the
    #: ensemble backtests the in-process members alongside instead of after them
    works_out_of_process: bool = True
    #: one model per series: the ensemble refits it only on the series that use it
    fits_each_series: bool = True
    #: ``auto`` judges it on a sample before it is a candidate, whatever the catalogue's
    #: size (``models.screening``)
    screened: str = "always"

    def fit(self, df: pd.DataFrame, freq: str, on_progress: ProgressFn = no_progress) -> Self:
        """Fit one Prophet model per series of ``df``, in ``n_jobs`` worker processes."""
        config = {
            "freq": freq,
            "holidays_country": self.holidays_country,
            "changepoint_prior_scale": self.changepoint_prior_scale,
            "seasonality_mode": self.seasonality_mode,
            "precompute_h": int(self.precompute_h),
        }
        tasks = list(iter_series(df))
        models: dict[str, str] = {}
        skipped: dict[str, str] = {}
        precomputed: dict[str, np.ndarray] = {}
        for uid, model_json, reason, *rest in _run_batches(
            tasks, config, self.n_jobs, on_progress
        ):
            if model_json is None:
                skipped[uid] = reason
            else:
                models[uid] = model_json
                if rest and rest[0] is not None:
                    precomputed[uid] = np.asarray(rest[0], dtype=float)
        self.freq_ = freq
        self.model_json_ = models
        self.skipped_ = skipped
        self.clipped_: dict[str, int] = {}
        self._models: dict[str, Any] = {}
        # raw (unclipped) forecasts of every fitted series, when all of them have one
        complete = bool(models) and precomputed.keys() == models.keys()
        self._precomputed = precomputed if complete else {}
        self._last_ds = {s.uid: s.ds[-1] for s in tasks} if complete else {}
        return self

    def predict(self, h: int) -> pd.DataFrame:
        """Forecast ``h`` steps per fitted series, clipped at zero (counts in ``clipped_``)."""
        self._check_fitted()
        frames, clipped = [], {}
        cached = getattr(self, "_precomputed", {})
        for uid in sorted(self.model_json_):
            if uid in cached and h <= len(cached[uid]):
                future = pd.DataFrame({"ds": future_dates(self._last_ds[uid], self.freq_, h)})
                raw = cached[uid][:h]
            else:
                model = self._model(uid)
                last = model.history["ds"].iloc[-1]
                future = pd.DataFrame({"ds": future_dates(last, self.freq_, h)})
                raw = model.predict(future)["yhat"].to_numpy(float)
            clipped[uid] = int(np.sum(raw < 0))
            frames.append(
                pd.DataFrame({"unique_id": uid, "ds": future["ds"], self.alias: np.maximum(raw, 0)})
            )
        self.clipped_ = {uid: n for uid, n in clipped.items() if n}
        if not frames:
            return forecast_frame(self.alias, {}, {}, self.freq_, h)  # empty, typed columns
        return pd.concat(frames, ignore_index=True)

    def save(self, directory: Path) -> None:
        """Write ``prophet/<quoted id>.json`` per series and ``prophet/index.json``."""
        self._check_fitted()
        folder = Path(directory) / "prophet"
        folder.mkdir(parents=True, exist_ok=True)
        files = {uid: _file_name(uid) for uid in self.model_json_}
        for uid, name in files.items():
            (folder / name).write_text(self.model_json_[uid])
        index = {
            "format": FORMAT_VERSION,
            "params": self.get_params(),
            "freq": self.freq_,
            "files": files,
            "skipped": self.skipped_,
        }
        (folder / "index.json").write_text(json.dumps(index))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Read back what ``save`` wrote (models are parsed lazily, on first predict)."""
        folder = Path(directory) / "prophet"
        index = json.loads((folder / "index.json").read_text())
        model = cls(**index["params"])
        model.freq_ = index["freq"]
        model.model_json_ = {uid: (folder / name).read_text() for uid, name in index["files"].items()}
        model.skipped_ = index["skipped"]
        model.clipped_ = {}
        model._models = {}
        return model

    def _model(self, uid: str) -> Any:
        """The Prophet object of a series, parsed from its JSON once."""
        if uid not in self._models:
            from prophet.serialize import model_from_json

            self._models[uid] = model_from_json(self.model_json_[uid])
        return self._models[uid]


def _file_name(uid: str) -> str:
    """A file name that is safe for any series id (quoted; hashed when too long)."""
    quoted = quote(uid, safe="")
    if len(quoted) > 200:
        quoted = hashlib.sha256(uid.encode()).hexdigest()
    return f"{quoted}.json"


#: (series id, model JSON or None, skip reason[, precomputed raw forecast or None]);
#: a list rather than a tuple once it has crossed the broker as JSON
Result = tuple[Any, ...]
#: series per shard on the cluster: many small shards spread over any number of workers
#: and report progress often; each still amortises its task overhead
SHARD_SIZE = 25


class ProphetShards(ShardWork[list[Series], list[Result]]):
    """A batch of series to fit (``fit_batch``), as JSON series for a shard task."""

    name = "prophet"

    def run(self, shard: list[Series], config: dict[str, Any]) -> list[Result]:
        return fit_batch(shard, config)

    def series(self, shard: list[Series]) -> int:
        return len(shard)

    def encode(self, shard: list[Series]) -> Any:
        return [series_to_wire(s) for s in shard]

    def decode(self, data: Any) -> list[Series]:
        return [series_from_wire(s) for s in data]


SHARDS = ProphetShards()


def _run_batches(
    tasks: list[Series], config: dict[str, Any], n_jobs: int, on_progress: ProgressFn
) -> list[Result]:
    """Fit all tasks, in a process pool when worthwhile, reporting progress per batch."""
    total = len(tasks)
    workers = max(1, min(n_jobs, os.cpu_count() or 1, total))
    here = True
    if on_cluster() and total >= _MIN_SERIES_FOR_POOL:
        batches, here, workers = _batches(tasks, SHARD_SIZE), False, 1
    elif workers == 1 or total < _MIN_SERIES_FOR_POOL:
        batches, workers = _batches(tasks, 1), 1
    else:
        batches = _batches(tasks, -(-total // (workers * _BATCHES_PER_WORKER)))
    results: list[Result] = []
    for _, batch_results in run_shards(SHARDS, batches, config, here=here, processes=workers):
        results.extend(batch_results)
        on_progress(len(results) / total, f"prophet: {len(results)}/{total} series")
    return results


def _batches(tasks: list[Series], size: int) -> list[list[Series]]:
    return [tasks[i : i + size] for i in range(0, len(tasks), size)]


def fit_batch(batch: list[Series], config: dict[str, Any]) -> list[Result]:
    """Worker entry point: fit each series of the batch, return JSON or a skip reason.

    With ``config["precompute_h"] > 0`` each result also carries the raw (unclipped)
    ``precompute_h``-step forecast as a list of floats, computed from the fitted model.
    """
    _silence_logging()
    from prophet.serialize import model_to_json

    results: list[Result] = []
    for series in batch:
        if len(series.y) < 2:
            results.append((series.uid, None, f"needs 2 points, has {len(series.y)}"))
            continue
        try:
            history = pd.DataFrame({"ds": series.ds, "y": series.y})
            model = _new_model(series, config).fit(history)
        except Exception as exc:  # noqa: BLE001 - any Stan failure means "skip this series"
            results.append((series.uid, None, f"prophet failed: {type(exc).__name__}: {exc}"))
        else:
            precompute_h = int(config.get("precompute_h") or 0)
            if precompute_h > 0:
                results.append(
                    (series.uid, model_to_json(model), "", _forecast(model, series, config))
                )
            else:
                results.append((series.uid, model_to_json(model), ""))
    return results


def _forecast(model: Any, series: Series, config: dict[str, Any]) -> list[float] | None:
    """The raw ``precompute_h``-step forecast of a fitted model (None if predict fails:
    the calling process then predicts every series itself, as without precomputing)."""
    try:
        future = pd.DataFrame(
            {"ds": future_dates(series.ds[-1], config["freq"], int(config["precompute_h"]))}
        )
        return model.predict(future)["yhat"].to_numpy(float).tolist()
    except Exception:  # noqa: BLE001
        return None


def _new_model(series: Series, config: dict[str, Any]) -> Any:
    """An unfitted Prophet with seasonalities chosen from the series' span and frequency."""
    from prophet import Prophet

    frequency = frequency_of(config["freq"])
    span_days = (series.ds[-1] - series.ds[0]).days if len(series.ds) > 1 else 0
    weekly = frequency.within_week and span_days >= 14
    yearly: bool | int = span_days >= YEARLY_MIN_SPAN_DAYS and frequency.within_year
    if yearly and frequency.code == "M":
        yearly = 5  # monthly data: 12 points a year support a low Fourier order only
    model = Prophet(
        growth="linear",
        yearly_seasonality=yearly,
        weekly_seasonality=weekly,
        daily_seasonality=False,
        uncertainty_samples=0,
        changepoint_prior_scale=config["changepoint_prior_scale"],
        seasonality_mode=config["seasonality_mode"],
    )
    if config["holidays_country"] and frequency.within_week:
        model.add_country_holidays(country_name=config["holidays_country"])
    return model


def _silence_logging() -> None:
    """Prophet and cmdstanpy log every fit at INFO; a retrain of a catalogue would drown.

    Disabling (rather than raising the level) survives cmdstanpy's lazy logger set-up,
    which resets the level on the first fit; failures still surface as exceptions.
    """
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        logging.getLogger(name).disabled = True
