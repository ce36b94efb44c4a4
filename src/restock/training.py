"""The one retrain pipeline: validate -> merge -> backtest -> fit -> forecast -> save -> activate.

The CLI, the embedded job thread and Celery workers all call ``retrain``; it knows nothing
of threads, brokers or HTTP and reports through one ``on_event`` callback, which may raise
``JobCancelled`` to stop it between series or epochs. Whatever happens before the final
``activate``, ``current`` keeps naming the previous version, so forecasts never break.
"""

from __future__ import annotations

import hashlib
import os
import queue as queue_module
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from restock import __version__, snapshot
from restock.accuracy import AccuracyTracker
from restock.config import Settings
from restock.calendar import model_horizon
from restock.data.panel import TOTAL_ID, Panel, build_panel
from restock.data.store import SalesStore
from restock.errors import RestockError, TrainingError
from restock.models.ensemble import SEED_WEIGHTS, EnsembleForecaster, default_members
from restock.registry import ModelRegistry, write_json

Event = dict[str, Any]
OnEvent = Callable[[Event], None]

STAGES = ("validate", "merge", "backtest", "prophet", "lstm", "ensemble", "forecast", "save",
          "activate", "done")
#: share of the overall progress bar each stage spans (roughly its share of the run time)
_SPANS = {"validate": (0.0, 0.01), "merge": (0.01, 0.03), "backtest": (0.03, 0.45),
          "prophet": (0.45, 0.68), "lstm": (0.68, 0.86), "ensemble": (0.86, 0.9),
          "forecast": (0.9, 0.93), "save": (0.93, 0.98), "activate": (0.98, 1.0),
          "done": (1.0, 1.0)}
#: the members a ``seed`` retrain fits: the seed's two and the fallback
SEED_MEMBERS = (*SEED_WEIGHTS, "seasonal_naive")
#: periods of history kept with a version at least (the chart and the inventory maths)
HISTORY_PERIODS = 400
#: the settings that shape a model, recorded with it (never URLs or tokens: no secrets)
TRAINING_SETTINGS = ("weights", "refit_members", "lstm_epochs", "interval_level",
                     "max_horizon_days", "backtest_windows", "holidays_country", "seed")
_PACKAGES = ("restock", "pandas", "numpy", "prophet", "torch", "sqlalchemy")


def _ignore(event: Event) -> None:
    """The default ``on_event``: report nothing."""


#: Test hook (crash-safety tests): ``RESTOCK_TEST_PAUSE_AT_STAGE=stage`` or ``stage:fraction``
#: sleeps ``RESTOCK_TEST_PAUSE_SECONDS`` (default 60) once, right after the first event of
#: that stage whose stage-local fraction is >= the given one has been reported, so a test
#: can kill the process at a known point. Unset (always, in production) it does nothing.
PAUSE_ENV = "RESTOCK_TEST_PAUSE_AT_STAGE"


def _pause_point() -> tuple[str, float] | None:
    raw = os.environ.get(PAUSE_ENV, "").strip()
    if not raw:
        return None
    stage, _, fraction = raw.partition(":")
    return stage, float(fraction or 0.0)


class ProgressReporter:
    """Turns stage-local progress into events with one overall fraction, and times stages."""

    def __init__(self, on_event: OnEvent) -> None:
        self.on_event = on_event
        self.durations: dict[str, float] = {}
        self._stage: str | None = None
        self._started = time.perf_counter()
        self._high = 0.0
        self._pause = _pause_point()

    def __call__(self, stage: str, fraction: float, message: str = "", **extra: Any) -> None:
        if stage not in _SPANS:
            stage = "ensemble"  # refits of the other members count as ensemble work
        if stage != self._stage:
            self._close_stage()
            self._stage = stage
        start, end = _SPANS[stage]
        fraction = min(max(float(fraction), 0.0), 1.0)
        self._high = max(self._high, start + (end - start) * fraction)  # never moves back
        event = {"stage": stage, "progress": round(self._high, 4), "message": message}
        event.update({k: v for k, v in extra.items() if v is not None and k != "stage"})
        self.on_event(event)
        if self._pause is not None and stage == self._pause[0] and fraction >= self._pause[1]:
            self._pause = None
            time.sleep(float(os.environ.get("RESTOCK_TEST_PAUSE_SECONDS", "60")))

    def _close_stage(self) -> None:
        now = time.perf_counter()
        if self._stage is not None:
            self.durations[self._stage] = round(
                self.durations.get(self._stage, 0.0) + now - self._started, 3)
        self._started = now

    def finish(self) -> dict[str, float]:
        self._close_stage()
        self._stage = None
        return self.durations


def _package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _data_hash(panel: Panel) -> str:
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(panel.long, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _check_finite(forecasts: pd.DataFrame, panel: Panel) -> None:
    """Refuse a model whose forecasts or intervals are not finite numbers (history in the
    range of 1e308 overflows the fits): raised before anything is saved, so the previous
    model stays active and no NaN or Infinity reaches a plan or a JSON answer."""
    columns = ["yhat", "yhat_lower", "yhat_upper"]
    bad = ~np.isfinite(forecasts[columns].to_numpy(dtype=float)).all(axis=1)
    if not bad.any():
        return
    uids = pd.unique(forecasts.loc[bad, "unique_id"])
    names = panel.series.set_index("unique_id").loc[uids, ["product_id", "store_id"]]
    shown = [("all series (total)" if uid == TOTAL_ID else
              f"product_id {row.product_id!r}" + (f", store_id {row.store_id!r}"
                                                  if row.store_id else ""))
             for uid, row in zip(uids, names.itertuples())]
    raise TrainingError(
        f"the forecasts of {len(uids)} series are not finite numbers (their history holds "
        f"values too large to model?): {'; '.join(shown[:5])}"
        + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
        + "; the previous model stays active",
        {"series": [{"product_id": str(r.product_id), "store_id": str(r.store_id)}
                    for r in names.itertuples()][:100]})


def build_ensemble(settings: Settings, weights: str, epochs: int,
                   forecast_h: int | None = None) -> EnsembleForecaster:
    """The production ensemble for these settings (the benchmarks build the same one).

    ``forecast_h``: the horizon predicted right after fitting; Prophet precomputes it in
    its worker processes (see ``EnsembleForecaster.forecast_h``). ``seed`` weights use
    only the seed's two members and seasonal naive, the fallback for a series neither
    can fit: fitting the others would cost time for columns nobody combines.
    """
    members = default_members(
        lstm_epochs=epochs, seed=settings.seed, n_jobs=settings.prophet_workers,
        holidays_country=settings.holidays_country or None)
    if weights == "seed":
        members = [m for m in members if m.alias in SEED_MEMBERS]
    return EnsembleForecaster(members=members, weights=weights, level=settings.interval_level,
                              backtest_windows=settings.backtest_windows, forecast_h=forecast_h,
                              refit=settings.refit_members)


def retrain(
    settings: Settings,
    store: SalesStore,
    registry: ModelRegistry,
    *,
    upload: Path | bytes | None = None,
    weights: str | None = None,
    epochs: int | None = None,
    on_event: OnEvent = _ignore,
) -> str:
    """Retrain on the whole stored history (after merging ``upload``) and activate it.

    Returns the new version id. On any error or cancellation the staging folder is
    removed and ``current`` is left as it was; the exception propagates to the caller.
    """
    settings = settings.with_overrides(weights=weights, lstm_epochs=epochs)
    report = ProgressReporter(on_event)
    report("validate", 0.0, "checking the upload" if upload is not None else "no new upload")
    if upload is not None:
        raw = upload if isinstance(upload, bytes) else Path(upload).read_bytes()
        name = None if isinstance(upload, bytes) else Path(upload).name
        report("merge", 0.0, "merging the upload into the history")
        result = store.ingest_bytes(raw, name)
        report("merge", 1.0, f"{result.inserted} rows added, {result.updated} replaced")
    else:
        report("merge", 1.0, "using the stored history")
    stats = store.stats()
    if stats["rows"] == 0:
        raise TrainingError("there is no sales data to train on; upload a CSV first")
    panel = build_panel(store.query())
    horizon = model_horizon(panel.freq, settings.max_horizon_days)
    ensemble = build_ensemble(settings, settings.weights, settings.lstm_epochs, horizon)

    refitting = False

    def on_progress(fraction: float, message: str = "", **extra: Any) -> None:
        # the ensemble fits its weights right after the backtest, before refitting the
        # members: that step is reported as the end of the backtest to keep stages in order
        nonlocal refitting
        stage = extra.pop("stage", "ensemble")
        refitting = refitting or stage in ("prophet", "lstm")
        if stage == "ensemble" and not refitting:
            stage, fraction = "backtest", 1.0
        report(stage, fraction, message, **extra)

    report("backtest", 0.0, f"{len(panel.series) - 1} series, frequency {panel.freq}")
    ensemble.fit(panel.long, panel.freq, on_progress=on_progress)

    report("forecast", 0.0, f"forecasting {horizon} periods for every series")
    forecasts = ensemble.predict(horizon)
    _check_finite(forecasts, panel)
    forecasts["step"] = forecasts.groupby("unique_id").cumcount() + 1
    report("forecast", 1.0, "forecasts ready")

    version, staging = registry.staging_dir()
    try:
        report("save", 0.0, f"writing version {version}")
        ensemble.save(staging)
        history = panel.history()
        recent = history.groupby("unique_id").cumcount(ascending=False) < max(
            horizon, HISTORY_PERIODS)
        snapshot.write(staging, snapshot.from_frames(
            panel.freq, panel.series, forecasts, ensemble.backtest_, history.loc[recent],
            ensemble.clipped_))
        durations = report.finish()
        meta = {
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rows": stats["rows"], "series": int(len(panel.series) - 1),
            "last_date": panel.last_date.date().isoformat(),
            "last_upload_seq": stats["last_upload_seq"], "data_hash": _data_hash(panel),
            "frequency": panel.freq, "horizon": horizon, "weights": settings.weights,
            "interval_level": settings.interval_level, "lstm_epochs": settings.lstm_epochs,
            "weights_summary": ensemble.weights_summary(),
            "metrics_summary": ensemble.metrics_["overall"],
            "total_id": TOTAL_ID, "skipped": ensemble.skipped_,
            "clipped": {uid: n for uid, n in ensemble.clipped_.items() if n},
            "durations": durations, "member_seconds": ensemble.durations_,
            "code_version": __version__,
            "packages": _package_versions(),
        }
        write_json(staging / "training.json", {"settings": {
            k: getattr(settings, k) for k in TRAINING_SETTINGS}})
        report("save", 0.9, "sealing the version")
        registry.seal(version, staging, meta)
    except BaseException:
        registry.discard(staging)
        raise
    report("activate", 0.0, f"activating {version}")
    registry.activate(version)
    report("done", 1.0, f"version {version} is active", model_version=version)
    return version


def retrain_model(
    upload: Path | bytes | None = None, *, settings: Settings | None = None, **options: Any
) -> str:
    """The seed's synchronous entry point: retrain with settings from the environment."""
    settings = settings or Settings.from_env()
    store = SalesStore.from_settings(settings)
    try:
        registry = ModelRegistry(settings.models_dir, keep=settings.keep_versions)
        AccuracyTracker.attach(store, registry)  # the upload may bring served forecasts' actuals
        return retrain(settings, store, registry, upload=upload, **options)
    finally:
        store.close()


def retrain_model_with_queue(
    upload: Path | bytes | None, progress_queue: "queue_module.Queue[Event]", **options: Any
) -> str | None:
    """The seed's streaming entry point: every event goes on ``progress_queue``.

    The last item is the ``done`` event or an ``error`` event ``{stage: "error", code,
    message}``, so a consumer can loop until it sees one of them.
    """
    try:
        return retrain_model(upload, on_event=progress_queue.put, **options)
    except RestockError as error:
        progress_queue.put({"stage": "error", **error.to_dict()})
    except Exception as error:  # noqa: BLE001 - the consumer must always get a final event
        progress_queue.put({"stage": "error", "code": "internal_error",
                            "message": f"{type(error).__name__}: {error}"})
    return None
