"""Serving benchmark at scale: 100,000 series x 365 days, synthetic, through the snapshot.

Goals (issue 13, on the 2-core machine): a version loads in <= 1 s; in-process p95 of
``ForecastService.forecast`` <= 2 ms for one product and <= 20 ms for one whole store;
memory added per web worker <= 100 MB with 4 workers mapping the same version.

No training: random forecasts, intervals, backtest actuals/predictions and history of
the shapes a daily retrain writes (365 forecast periods, 400 history periods, 3 backtest
windows of 28 steps) go through ``restock.snapshot.build``/``write`` into a sealed,
activated version of a fresh home (SQLite store, no sales). ``--home`` keeps that home
between runs (building it takes a minute and ~3 GB of disk). Writes bench/results/serving.md.

    .venv/bin/python bench/serving.py [--home /tmp/restock-bench-serving-v2] [--calls 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from machine import cpu_model, total_ram  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "serving.md"
sys.path.insert(0, str(ROOT / "src"))

from restock import snapshot  # noqa: E402
from restock.config import Settings  # noqa: E402
from restock.data.panel import TOTAL_ID  # noqa: E402
from restock.data.store import SalesStore  # noqa: E402
from restock.query import ForecastQuery  # noqa: E402
from restock.registry import ModelRegistry  # noqa: E402
from restock.serving import ForecastService, LoadedModel  # noqa: E402

GOALS = {"load_s": 1.0, "product_ms": 2.0, "store_ms": 20.0, "worker_mb": 100.0}
MARKER = "bench-serving-v2.json"
HISTORY = 400
BACKTEST = (3, 28)  # windows, steps


def settings_for(home: Path) -> Settings:
    return Settings.from_env({"home": home}, environ={})


def build_home(home: Path, series: int, stores: int, categories: int, horizon: int,
               seed: int = 13) -> dict[str, Any]:
    """A home whose active version holds ``series`` synthetic daily series; reused when
    it was built with the same parameters."""
    wanted = {"series": series, "stores": stores, "categories": categories,
              "horizon": horizon, "seed": seed}
    marker = home / MARKER
    if marker.exists() and json.loads(marker.read_text())["params"] == wanted:
        print(f"reusing {home}", flush=True)
        return json.loads(marker.read_text())
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    settings = settings_for(home)
    SalesStore(settings.db_url, settings.uploads_dir).close()  # an empty store: no on_hand
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    products = series // stores
    n = products * stores
    table = pd.DataFrame({
        "unique_id": [f"s{i:06d}" for i in range(1, n + 1)],
        "product_id": np.repeat([f"P{i:05d}" for i in range(1, products + 1)], stores),
        "store_id": np.tile([f"S{i:02d}" for i in range(1, stores + 1)], products),
        "category": np.repeat(rng.integers(0, categories, products).astype(str), stores),
        "n_obs": rng.integers(30, 2000, n), "gap_share": rng.random(n) * 0.1,
        "discontinued": rng.random(n) < 0.01})
    table["category"] = "C" + table["category"]
    total = pd.DataFrame({"unique_id": [TOTAL_ID], "product_id": [""], "store_id": [""],
                          "category": [""], "n_obs": [2000], "gap_share": [0.0],
                          "discontinued": [False]})
    table = pd.concat([table, total], ignore_index=True)
    level = rng.gamma(2.0, 5.0, (n, 1))
    yhat = level * (1 + 0.2 * np.sin(np.arange(horizon) / 7 * 2 * np.pi))
    yhat = np.vstack([yhat, yhat.sum(axis=0)])
    width = 0.5 * yhat * np.sqrt(np.arange(1, horizon + 1) / 7)
    forecast = {"yhat": yhat, "yhat_lower": np.maximum(yhat - width, 0),
                "yhat_upper": yhat + width, "prophet": yhat * 1.05, "lstm": yhat * 0.95}
    windows, steps = BACKTEST
    y = rng.poisson(np.repeat(level, windows * steps, axis=1)).astype(float)
    y = np.vstack([y, y.sum(axis=0)])
    history = rng.poisson(np.repeat(level, HISTORY, axis=1)).astype(float)
    starts = rng.integers(0, HISTORY - 30, n) * (rng.random(n) < 0.2)  # 20% start late
    history[np.arange(HISTORY)[None, :] < starts[:, None]] = np.nan
    history = np.vstack([history, np.nansum(history, axis=0)])
    first = np.datetime64("2026-01-01")
    days = [str(first + i) for i in range(horizon + 1)]
    history_days = [str(first - HISTORY + i) for i in range(HISTORY)]
    arrays = snapshot.build("D", table, forecast, days, np.tile(np.arange(1, steps + 1),
                                                                windows),
                            y, y * 0.9 + 1, history, history_days)
    registry = ModelRegistry(settings.models_dir)
    version, staging = registry.staging_dir()
    snapshot.write(staging, arrays)
    built = time.perf_counter() - started
    registry.seal(version, staging, {"frequency": "D", "series": n, "rows": n * HISTORY,
                                     "trained_at": "synthetic", "last_upload_seq": None})
    started = time.perf_counter()
    registry.activate(version)  # verifies every file's hash (and records that it did)
    info = {"params": wanted, "version": version, "build_s": round(built, 1),
            "activate_s": round(time.perf_counter() - started, 2),
            "bytes": sum(p.stat().st_size for p in (settings.models_dir / version).rglob("*"))}
    marker.write_text(json.dumps(info))
    return info


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.array(samples_s) * 1000
    return {"n": len(ms), "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)), "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max())}


def time_calls(calls: list[Callable[[], Any]], warmup: int = 20) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each call (one thread), after a warm-up."""
    for call in calls[:warmup]:
        call()
    wall, cpu = [], []
    gc.collect()
    for call in calls:
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return wall, cpu


def memory(pid: int | str = "self") -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) in MB, from smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "uss": fields["Private_Clean"] + fields["Private_Dirty"]}


def worker(home: Path, calls: int, seed: int) -> None:
    """One web worker's life: load the version, answer ``calls`` requests over products
    and stores, report memory before and after, wait for the parent to read ours."""
    settings = settings_for(home)
    service = ForecastService(settings, SalesStore(settings.db_url, settings.uploads_dir),
                              ModelRegistry(settings.models_dir))
    gc.collect()
    before = memory()
    arrays = service.model().snapshot
    products = arrays.keys["product_id"].values
    stores = arrays.keys["store_id"].values
    rng = np.random.default_rng(seed)
    for i in range(calls):
        if i % 10 == 0:
            service.forecast(ForecastQuery(store_id=str(stores[rng.integers(len(stores))])))
        else:
            service.forecast(ForecastQuery(product_id=str(products[rng.integers(len(products))])))
    gc.collect()
    print(json.dumps({"before": before, "after": memory()}), flush=True)
    sys.stdin.readline()


def measure_workers(home: Path, workers: int, calls: int) -> list[dict[str, Any]]:
    """Start ``workers`` worker processes; once all have answered their requests, read
    each one's memory from outside while all still map the version."""
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(home), "--calls",
                               str(calls), "--seed", str(i)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for i in range(workers)]
    reports = [json.loads(p.stdout.readline()) for p in procs]
    for proc, report in zip(procs, reports):
        report["outside"] = memory(proc.pid)
    for proc in procs:
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(60)
    return reports


def loadavg() -> tuple[float, float, float]:
    return os.getloadavg()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--categories", type=int, default=12)
    parser.add_argument("--horizon", type=int, default=365)
    parser.add_argument("--calls", type=int, default=1000, help="calls per case")
    parser.add_argument("--loads", type=int, default=7, help="version loads to time")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-calls", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.calls, args.seed)
        return 0

    temporary = args.home is None
    home = Path(tempfile.mkdtemp(prefix="restock-bench-serving-")) if temporary \
        else args.home.resolve()
    try:
        info = build_home(home, args.series, args.stores, args.categories, args.horizon)
        settings = settings_for(home)
        registry = ModelRegistry(settings.models_dir)
        version = registry.current()
        load_before = loadavg()
        started = time.perf_counter()
        registry.verify(version)
        full_verify_s = time.perf_counter() - started
        load_s = []
        for _ in range(args.loads):
            gc.collect()
            started = time.perf_counter()
            LoadedModel.read(registry, version)
            load_s.append(time.perf_counter() - started)

        store = SalesStore(settings.db_url, settings.uploads_dir)
        service = ForecastService(settings, store, registry)
        arrays = service.model().snapshot
        rng = np.random.default_rng(1)
        products = arrays.keys["product_id"].values
        stores = arrays.keys["store_id"].values
        categories = arrays.keys["category"].values
        per_store = len(arrays.table_rows) // len(stores)

        def pick(values: np.ndarray) -> str:
            return str(values[rng.integers(len(values))])

        cases = [
            ("one product", f"product_id (rotating over {len(products):,}; "
             f"{len(stores)} series each)", lambda: {"product_id": pick(products)}),
            ("one product @ store", "product_id + store_id (1 series)",
             lambda: {"product_id": pick(products), "store_id": pick(stores)}),
            ("one whole store", f"store_id (rotating; ~{per_store:,} series, stored sums)",
             lambda: {"store_id": pick(stores)}),
            ("one category", f"category (rotating over {len(categories)}; stored sums)",
             lambda: {"category": pick(categories)}),
            ("store x category", "store_id + category (~"
             f"{per_store // len(categories):,} series, summed per request)",
             lambda: {"store_id": pick(stores), "category": pick(categories)}),
            ("total", "no filter (the total series)", lambda: {}),
        ]
        rows = []
        for name, detail, make in cases:
            calls = [(lambda f=make(): service.forecast(ForecastQuery(**f)))
                     for _ in range(args.calls)]
            wall, cpu = time_calls(calls)
            stats, cpu_stats = percentiles(wall), percentiles(cpu)
            rows.append({"case": name, "detail": detail, **stats,
                         "cpu_p50": cpu_stats["p50"], "cpu_p95": cpu_stats["p95"]})
            print(f"{name:20} p50={stats['p50']:6.2f} p95={stats['p95']:6.2f} "
                  f"p99={stats['p99']:6.2f} ms  cpu p95={cpu_stats['p95']:6.2f}  "
                  f"load {loadavg()[0]:.2f}", flush=True)
        sample = service.forecast(ForecastQuery(product_id=str(products[0])))
        body = len(json.dumps(sample).encode())
        body_365 = len(json.dumps(service.forecast(ForecastQuery(product_id=str(products[0]),
                                                                 history=365))).encode())
        store.close()
        workers = measure_workers(home, args.workers, args.worker_calls)
        load_after = loadavg()
        report = render(args, info, full_verify_s, load_s, rows, workers, body, body_365,
                        load_before, load_after)
        print(report)
        if not args.no_write:
            RESULTS.write_text(report)
            print(f"wrote {RESULTS.relative_to(ROOT)}")
        return 0
    finally:
        if temporary:
            shutil.rmtree(home, ignore_errors=True)


def render(args: argparse.Namespace, info: dict[str, Any], full_verify_s: float,
           load_s: list[float], rows: list[dict[str, Any]], workers: list[dict[str, Any]],
           body: int, body_365: int, load_before: tuple, load_after: tuple) -> str:
    def ok(value: float, goal: float) -> str:
        return "ok" if value <= goal else "**missed**"

    versions = {name: metadata.version(name) for name in ("numpy", "pandas")}
    load_median = statistics.median(load_s)
    p95 = {r["case"]: r["p95"] for r in rows}
    added = [{k: w["outside"][k] - w["before"][k] for k in ("rss", "pss", "uss")}
             for w in workers]
    lines = [
        "# Serving benchmark at scale (issue 13)", "",
        f"`bench/serving.py`: {info['params']['series']:,} synthetic daily series "
        f"({info['params']['series'] // args.stores:,} products x {args.stores} stores, "
        f"{args.categories} categories) x {args.horizon} forecast days, {HISTORY} history "
        f"days, {BACKTEST[0]} x {BACKTEST[1]} backtest columns, written through "
        f"`restock.snapshot` ({info['bytes'] / 2**30:.2f} GiB on disk; built in "
        f"{info['build_s']} s, activated - i.e. fully hashed - in {info['activate_s']} s). "
        "Empty SQLite store (no stock levels), default request options (30 days, "
        "history 28).", "",
        "## Version load", "",
        f"What a worker pays when `current` moves (`LoadedModel.read`: `registry.check`, "
        f"then map the snapshot), {len(load_s)} runs, warm page cache: median "
        f"**{load_median * 1000:.0f} ms**, min {min(load_s) * 1000:.0f} ms, max "
        f"{max(load_s) * 1000:.0f} ms (goal <= 1 s: {ok(load_median, GOALS['load_s'])}).", "",
        f"A full `registry.verify` (SHA-256 of every file, as `activate` and the first load "
        f"on a machine that never verified the version do) takes {full_verify_s:.1f} s at "
        "this size; `check` skips it when every file still has the inode, size and mtime "
        "that the last full verify recorded.", "",
        "## In-process latency", "",
        f"`ForecastService.forecast(ForecastQuery(**filters))`, {args.calls} calls per case, the filters "
        "drawn at random per call, one thread; wall time, then CPU time (`process_time`).", "",
        "| case | selection | calls | p50 ms | p95 ms | p99 ms | max ms | CPU p50 ms "
        "| CPU p95 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['case']} | {r['detail']} | {r['n']} | {r['p50']:.2f} | "
                     f"{r['p95']:.2f} | {r['p99']:.2f} | {r['max']:.1f} | "
                     f"{r['cpu_p50']:.2f} | {r['cpu_p95']:.2f} |")
    lines += [
        "", f"Goals: one product p95 <= 2 ms: {ok(p95['one product'], GOALS['product_ms'])}; "
        f"one whole store p95 <= 20 ms: {ok(p95['one whole store'], GOALS['store_ms'])}.", "",
        f"Answer size, one product, 30 days: {body / 1024:.1f} KiB with the default 28 "
        f"history periods, {body_365 / 1024:.1f} KiB with `history=365` (what every answer "
        "carried before).", "",
        "## Memory per web worker", "",
        f"{len(workers)} worker processes at once, each: build a `ForecastService`, load the "
        f"version, answer {args.worker_calls} requests (9 in 10 a random product, 1 in 10 a "
        "random whole store). Memory from `/proc/<pid>/smaps_rollup`, read by the parent "
        "while all workers still map the version; 'added' is after minus before the load.", "",
        "| worker | RSS before MB | RSS after MB | RSS added | PSS added | USS added |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for i, (w, a) in enumerate(zip(workers, added), 1):
        lines.append(f"| {i} | {w['before']['rss']:.0f} | {w['outside']['rss']:.0f} | "
                     f"{a['rss']:.1f} | {a['pss']:.1f} | {a['uss']:.1f} |")
    worst = max(a["uss"] for a in added)
    lines += [
        "", f"Goal (<= 100 MB added per worker) measured by **USS** (the memory only that "
        f"worker holds; the snapshot's pages are file-backed and shared through the page "
        f"cache): worst worker {worst:.1f} MB, {ok(worst, GOALS['worker_mb'])}. RSS also "
        "counts every shared snapshot page the worker has touched (one copy in the page "
        "cache for all workers) and PSS charges each worker its share of them, so both grow "
        "with the rows the requests read, not with the number of series loaded.", "",
        "## Machine", "",
        f"- {os.cpu_count()} cores, {cpu_model()}, {total_ram()} RAM; Python "
        f"{platform.python_version()}, numpy {versions['numpy']}, pandas {versions['pandas']}",
        f"- {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; load average (1/5/15 min) "
        f"before {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, after "
        f"{load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}: other agents "
        "share the 2 cores, so wall-time tails include waiting for a core.", "",
        "Reproduce: `.venv/bin/python bench/serving.py --home /tmp/restock-bench-serving-v2` "
        "(the first run builds the version; later runs reuse it).", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
