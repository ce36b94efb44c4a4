"""Live accuracy tracking cost: what scoring adds to an upload, and what a report costs.

A synthetic active version (the files ``restock.accuracy.version_forecasts`` reads, no
training) forecasts ``--series`` daily series ``--horizon`` days past a history of
``--history`` days. The script times the ingest of the next ``--days`` days of actuals with
the tracker attached and without it (same rows, fresh databases), the same upload again
(idempotent rescoring), and ``accuracy_report`` for everything and for one category.

Usage: ``python bench/accuracy_tracking.py [--series 1000] [--days 14]`` (SQLite in a
temporary folder).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from restock.accuracy import AccuracyTracker, accuracy_report
from restock.data.store import SalesStore
from restock.registry import ModelRegistry


def sales(series: int, start: pd.Timestamp, days: int,
          rng: np.random.Generator) -> pd.DataFrame:
    dates = pd.date_range(start, periods=days)
    frame = pd.DataFrame({
        "date": np.tile(dates.strftime("%Y-%m-%d"), series),
        "product_id": np.repeat([f"P{i:05d}" for i in range(series)], days),
        "store_id": "S1",
        "category": np.repeat([f"C{i % 20:02d}" for i in range(series)], days),
        "quantity": rng.poisson(5, series * days),
    })
    return frame


def fake_version(registry: ModelRegistry, history: pd.DataFrame, horizon: int,
                 rng: np.random.Generator) -> str:
    """A sealed, activated version trained on ``history`` (``sales`` rows), with the
    files accuracy tracking reads."""
    cutoff = pd.Timestamp(history["date"].max())
    series = history["product_id"].nunique()
    version, staging = registry.staging_dir()
    uids = [f"s{i:05d}" for i in range(series)]
    pd.DataFrame({"unique_id": uids, "product_id": [f"P{i:05d}" for i in range(series)],
                  "store_id": "S1", "category": [f"C{i % 20:02d}" for i in range(series)]}
                 ).to_parquet(staging / "series.parquet", index=False)
    yhat = rng.uniform(3, 7, series * horizon)
    pd.DataFrame({"unique_id": np.repeat(uids, horizon),
                  "ds": np.tile(pd.date_range(cutoff, periods=horizon + 1)[1:], series),
                  "step": np.tile(np.arange(1, horizon + 1), series), "yhat": yhat,
                  "yhat_lower": yhat - 4, "yhat_upper": yhat + 4}
                 ).to_parquet(staging / "forecasts.parquet", index=False)
    pd.DataFrame({"unique_id": "s" + history["product_id"].str[1:],
                  "ds": pd.to_datetime(history["date"]), "y": history["quantity"].astype(float)}
                 ).to_parquet(staging / "history.parquet", index=False)
    (staging / "metrics.json").write_text(json.dumps({"per_series": {
        uid: {"ensemble": {"mase": 0.8}} for uid in uids}}))
    registry.seal(version, staging, {"last_date": cutoff.date().isoformat(),
                                     "frequency": "D", "horizon": horizon})
    registry.activate(version)
    return version


def timed(action) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--history", type=int, default=400)
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2025-01-01")
    cutoff = start + pd.Timedelta(days=args.history - 1)
    history = sales(args.series, start, args.history, rng)
    upload = sales(args.series, cutoff + pd.Timedelta(days=1), args.days, rng).to_csv(
        index=False).encode()
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for tracked in (False, True):
            home = Path(tmp) / ("tracked" if tracked else "plain")
            store = SalesStore(f"sqlite:///{home / 'restock.db'}", home / "uploads")
            registry = ModelRegistry(home / "models")
            fake_version(registry, history, args.horizon, rng)
            store.ingest_bytes(history.to_csv(index=False).encode(), "history.csv")
            if tracked:
                AccuracyTracker.attach(store, registry)
            label = "tracked" if tracked else "plain"
            figures[f"upload ({label})"], _ = timed(lambda: store.ingest_bytes(upload))
            if tracked:
                figures["same upload again (tracked)"], _ = timed(
                    lambda: store.ingest_bytes(upload))
                figures["report, all series"], report = timed(
                    lambda: accuracy_report(store, registry))
                figures["report, one category"], _ = timed(
                    lambda: accuracy_report(store, registry, category="C01"))
                total = report["scores"][-1]
                print(f"total: MASE {total['mase']:.3f} WAPE {total['wape']:.3f} "
                      f"coverage {total['coverage']:.3f} over {total['periods']} periods")
            store.close()
    print(f"{args.series} series, {args.history} days of history, {args.days} days uploaded "
          f"({args.series * args.days} rows), horizon {args.horizon}")
    for name, seconds in figures.items():
        print(f"  {name:<30} {seconds:7.3f} s")


if __name__ == "__main__":
    main()
