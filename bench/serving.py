"""Serving benchmark: in-process latency of ForecastService.forecast on a 500-series model.

Target (issue 4, on the 2-core machine): p95 <= 5 ms without the plot and <= 150 ms with
it, for a single series, a category and the total (no filter). Also reports the cold load
of a version (``LoadedModel.read``, what a worker pays when ``current`` moves).

The model is trained here on demo data (250 products x 2 stores x 730 days = 500 series)
with 2 LSTM epochs: the benchmark is about serving, not accuracy. Training takes minutes
on the 2-core machine, so pass ``--home`` to keep the trained home between runs (it is
reused when it already holds a model trained on the same demo parameters). Writes
bench/results/serving.md.

    .venv/bin/python bench/serving.py [--home /tmp/restock-bench-serving] [--calls 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from machine import cpu_model, total_ram  # bench/machine.py, beside this script
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "serving.md"
sys.path.insert(0, str(ROOT / "src"))

from restock.config import Settings  # noqa: E402
from restock.data.panel import TOTAL_ID  # noqa: E402
from restock.data.store import SalesStore  # noqa: E402
from restock.registry import ModelRegistry  # noqa: E402
from restock.serving import ForecastService, LoadedModel  # noqa: E402

TARGET_MS = {False: 5.0, True: 150.0}
NOTES = """## Before and after (same machine, same model, similar load)

Before (commit 580c274, 40 calls / 20 with plot, load ~8): wall p50 single 90 ms, category
114 ms, total 262 ms; with plot 192 / 338 / 449 ms. Nearly all of it was SQL on every
request: `SalesStore.stats()` (count of all 365k rows and of distinct series) for the
`stale_model` check, and `latest_on_hand` (a group-by over the whole sales table).

What changed in `src/restock/serving.py` (responses byte-identical, checked on 93
selections x horizons against the old code, and after a new upload from a second store):

- one `SELECT max(seq) FROM uploads WHERE status = 'applied'` per request: the store only
  changes through applied uploads, so this names the data version. It drives
  `stale_model` (a new upload shows on the very next request, from any process) and keys
  a snapshot of every (product, store, category)'s latest `on_hand`, read once per data
  version; a selection's `on_hand` is computed from it exactly as `latest_on_hand` does
  and memoised per (data version, filters). Both reads use a plain DB-API connection, so
  on SQLite they are WAL snapshot reads that skip the store's `BEGIN IMMEDIATE`.
- selections from per-value position arrays built at load (no DataFrame copy per call);
  n_obs/gap_share counts, ISO dates and history from arrays; backtest residuals summed
  once per request instead of three times; JSON rows built from `tolist()` values.

Cold `on_hand` snapshot (first request after each upload, per process): one query,
~300-360 ms on this 365k-row store under load; every later request pays only the
`max(seq)` (about 15 us on SQLite).

The plot is matplotlib text layout and tick creation for the most part (about 95 ms of
CPU per chart here, about 30 tick labels); on a loaded machine the wall time is 2-2.5x
the CPU time.
"""
MARKER = "bench-serving.json"


def settings_for(home: Path, epochs: int) -> Settings:
    return Settings.from_env({"home": home, "lstm_epochs": epochs,
                              "prophet_workers": os.cpu_count() or 1}, environ={})


def build_home(home: Path, products: int, stores: int, days: int, epochs: int) -> float:
    """Ingest demo sales into ``home`` and train one version; returns the training seconds."""
    from restock.data.demo import generate_demo_sales
    from restock.training import retrain

    wanted = {"products": products, "stores": stores, "days": days, "epochs": epochs}
    marker = home / MARKER
    settings = settings_for(home, epochs)
    if marker.exists() and json.loads(marker.read_text()).get("params") == wanted \
            and ModelRegistry(settings.models_dir).current():
        print(f"reusing the trained home {home}", flush=True)
        return float(json.loads(marker.read_text())["train_seconds"])
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    frame = generate_demo_sales(products=products, stores=stores, days=days, seed=7)
    store = SalesStore(settings.db_url, settings.uploads_dir)
    try:
        csv = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d")).to_csv(index=False)
        store.ingest_bytes(csv.encode(), "bench.csv")
        print(f"training {products * stores} series x {days} days, {epochs} LSTM epochs "
              f"(minutes on 2 cores)...", flush=True)
        started = time.perf_counter()
        last = [0.0]

        def progress(event: dict[str, Any]) -> None:
            if event["progress"] - last[0] >= 0.05 or event["stage"] == "done":
                last[0] = event["progress"]
                print(f"  {event['progress']:5.0%} {event['stage']}: {event['message']}",
                      flush=True)

        retrain(settings, store, ModelRegistry(settings.models_dir), on_event=progress)
        seconds = time.perf_counter() - started
    finally:
        store.close()
    marker.write_text(json.dumps({"params": wanted, "train_seconds": round(seconds, 1)}))
    return seconds


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.array(samples_s) * 1000
    return {"n": len(ms), "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)), "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean()), "max": float(ms.max())}


def time_calls(call: Callable[[], Any], n: int,
               warmup: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (``process_time``) seconds of each of ``n`` calls, after a warm-up.

    On a shared machine the wall time includes waiting for a core; the CPU time is what
    the call itself costs, which is what a quiet machine's wall time would be.
    """
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    gc.collect()
    for _ in range(n):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return wall, cpu


def loadavg() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def machine() -> dict[str, str]:
    cpu, ram = cpu_model(), total_ram()
    versions = {}
    for name in ("pandas", "numpy", "matplotlib", "pillow", "sqlalchemy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    return {"cpus": str(os.cpu_count()), "cpu": cpu, "ram": ram,
            "python": platform.python_version(), **versions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="trained home to build or reuse "
                        "(default: a fresh temporary directory, removed afterwards)")
    parser.add_argument("--products", type=int, default=250)
    parser.add_argument("--stores", type=int, default=2)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--calls", type=int, default=1000, help="calls per case")
    parser.add_argument("--plot-calls", type=int, default=None,
                        help="calls per plotted case (default: --calls)")
    parser.add_argument("--horizon-days", type=int, default=30)
    parser.add_argument("--loads", type=int, default=5, help="cold loads to time")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the .md")
    args = parser.parse_args(argv)
    plot_calls = args.calls if args.plot_calls is None else args.plot_calls

    temporary = args.home is None
    home = Path(tempfile.mkdtemp(prefix="restock-bench-serving-")) if temporary \
        else args.home.resolve()
    try:
        train_seconds = build_home(home, args.products, args.stores, args.days, args.epochs)
        if args.build_only:
            return 0
        settings = settings_for(home, args.epochs)
        store = SalesStore(settings.db_url, settings.uploads_dir)
        registry = ModelRegistry(settings.models_dir)
        service = ForecastService(settings, store, registry)
        version = registry.current()

        load_s = []
        for _ in range(args.loads):
            gc.collect()
            started = time.perf_counter()
            LoadedModel.read(registry, version)
            load_s.append(time.perf_counter() - started)

        model = service.model()
        table = model.series.drop(index=TOTAL_ID, errors="ignore")
        first = table.iloc[0]
        category = str(table["category"].value_counts().index[0])
        n_category = int((table["category"] == category).sum())
        cases = [
            ("single series", f"product {first['product_id']} @ {first['store_id']}",
             {"product_id": first["product_id"], "store_id": first["store_id"]}),
            ("category", f"{category!r} ({n_category} series)", {"category": category}),
            ("total", f"no filter ({len(table)} series)", {}),
        ]
        rows = []
        load_before = loadavg()
        started_run = time.perf_counter()
        for plot in (False, True):
            for name, detail, filters in cases:
                n = plot_calls if plot else args.calls
                wall, cpu = time_calls(
                    lambda: service.forecast(days=args.horizon_days, plot=plot, **filters),
                    n, warmup=5 if plot else 20)
                stats = percentiles(wall)
                cpu_stats = percentiles(cpu)
                rows.append({"case": name, "detail": detail, "plot": plot, **stats,
                             "cpu_p50": cpu_stats["p50"], "cpu_p95": cpu_stats["p95"]})
                print(f"{name:14} plot={plot!s:5} n={n:5} p50={stats['p50']:7.2f} "
                      f"p95={stats['p95']:7.2f} p99={stats['p99']:7.2f} "
                      f"mean={stats['mean']:7.2f} ms  cpu p50={cpu_stats['p50']:7.2f} "
                      f"p95={cpu_stats['p95']:7.2f}  load {loadavg()[0]:.2f}", flush=True)
        run_seconds = time.perf_counter() - started_run
        load_after = loadavg()
        sample = service.forecast(days=args.horizon_days, plot=True)
        png_bytes = (settings.plots_dir / f"{sample['plot_id']}.png").stat().st_size
        store.close()

        report = render(args, rows, load_s, train_seconds, load_before, load_after,
                        run_seconds, model, png_bytes)
        print(report)
        if not args.no_write:
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(report)
            print(f"wrote {RESULTS.relative_to(ROOT)}")
        return 0 if all(r["p95"] <= TARGET_MS[r["plot"]] for r in rows) else 1
    finally:
        if temporary:
            shutil.rmtree(home, ignore_errors=True)


def render(args: argparse.Namespace, rows: list[dict], load_s: list[float],
           train_seconds: float, load_before: tuple, load_after: tuple, run_seconds: float,
           model: LoadedModel, png_bytes: int) -> str:
    info = machine()
    lines = [
        "# Serving benchmark (issue 4)",
        "",
        f"In-process latency of `ForecastService.forecast(days={args.horizon_days}, ...)` on a "
        f"{model.meta['series']}-series daily model (demo data: {args.products} products x "
        f"{args.stores} stores x {args.days} days, {args.epochs} LSTM epochs; trained in "
        f"{train_seconds:.0f} s), SQLite store. Each case: {args.calls} calls without the plot, "
        f"{args.plot_calls or args.calls} with it, after a warm-up. Measured with "
        "`time.perf_counter` around each call, one thread.",
        "",
        "Targets: p95 <= 5 ms without the plot, <= 150 ms with the plot.",
        "",
        "Wall-clock latency (what a caller waits), then the CPU time of the same calls "
        "(`time.process_time`: what the call costs with a core to itself).",
        "",
        "| case | selection | plot | calls | p50 ms | p95 ms | p99 ms | mean ms | max ms "
        "| CPU p50 ms | CPU p95 ms | target (wall p95) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ok = "ok" if r["p95"] <= TARGET_MS[r["plot"]] else "**missed**"
        lines.append(f"| {r['case']} | {r['detail']} | {'yes' if r['plot'] else 'no'} | "
                     f"{r['n']} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | "
                     f"{r['mean']:.2f} | {r['max']:.1f} | {r['cpu_p50']:.2f} | "
                     f"{r['cpu_p95']:.2f} | {ok} |")
    lines += [
        "",
        f"Cold load of a version (`LoadedModel.read`: verify the manifest, read the parquet "
        f"files, build the dense arrays), {len(load_s)} runs: median "
        f"{statistics.median(load_s) * 1000:.0f} ms, min {min(load_s) * 1000:.0f} ms, "
        f"max {max(load_s) * 1000:.0f} ms.",
        "",
        f"PNG size (total, 30 days): {png_bytes / 1024:.0f} KiB.",
        "",
        "## Machine",
        "",
        f"- {info['cpus']} cores, {info['cpu']}, {info['ram']} RAM",
        f"- Python {info['python']}, pandas {info['pandas']}, numpy {info['numpy']}, "
        f"matplotlib {info['matplotlib']}, Pillow {info['pillow']}, "
        f"SQLAlchemy {info['sqlalchemy']}",
        f"- {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- load average (1/5/15 min) before the run {load_before[0]:.2f} / "
        f"{load_before[1]:.2f} / {load_before[2]:.2f}, after {load_after[0]:.2f} / "
        f"{load_after[1]:.2f} / {load_after[2]:.2f} ({run_seconds:.0f} s of measuring). "
        "Other engineers were running test suites on the same 2 cores, so tail latencies "
        "(p99, max) include scheduler preemption.",
        "",
        "Reproduce: `.venv/bin/python bench/serving.py --home /tmp/restock-bench-serving` "
        "(the first run trains; later runs reuse the home).",
        "",
        NOTES,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
