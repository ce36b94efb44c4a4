"""Retrain-speed benchmark: restock's full retrain vs AutoETS and a plain Prophet loop.

On demo data (``restock demo-data``: ``--products`` x ``--stores`` x ``--days``, default
500 x 1 x 730), in ONE run, each in its own subprocess so its wall time and peak memory are
its own:

1. **restock full retrain** (``restock.training.retrain_model``: backtest of every member,
   weights, refit of every member, 365-step forecast, save, activate) on a fresh home;
2. **statsforecast AutoETS(season_length=7)**, ``n_jobs=2``, fit + predict(28) on the same
   series (the per-product series; restock also fits the total, one more series);
3. **a plain sequential Prophet loop**: ``Prophet()`` with its defaults, fit + predict(28)
   per series, timed on a random sample of ``--prophet-sample`` series (seeded) and
   extrapolated linearly to all series. Also timed with ``uncertainty_samples=0`` (MAP
   point forecasts only, which is what restock computes) for a stricter comparison;
4. **retrain after a small upload**: one new week for every series (the same generator
   with an end date 7 days later, its last 7 days), ingested with
   ``SalesStore.ingest_bytes``, then a second retrain subprocess.

Peak RSS: ``ru_maxrss`` of the waited-for child (``os.wait4``: the largest single process
among it and the descendants it waited for) and, sampled every 0.25 s from /proc, the
largest *sum* of RSS over the child's whole process tree (Prophet workers included).
The load average is sampled during every phase: other jobs share this machine.

    .venv/bin/python bench/retrain_speed.py [--products 500] [--prophet-sample 50] [--no-write]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the restock command sets it
RESULTS = ROOT / "bench" / "results" / "retrain_speed.md"

# --------------------------------------------------------------------------- child bodies


def child_retrain() -> None:
    from restock.training import retrain_model

    started = time.perf_counter()
    version = retrain_model()
    print(json.dumps({"version": version, "inner_seconds": time.perf_counter() - started}))


def _series_frame(csv: str):
    import pandas as pd

    raw = pd.read_csv(csv, usecols=["date", "product_id", "store_id", "quantity"],
                      parse_dates=["date"])
    return pd.DataFrame({"unique_id": raw["product_id"] + "/" + raw["store_id"],
                         "ds": raw["date"], "y": raw["quantity"].astype(float)})


def child_autoets(csv: str) -> None:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    df = _series_frame(csv)
    started = time.perf_counter()
    sf = StatsForecast(models=[AutoETS(season_length=7)], freq="D", n_jobs=2)
    out = sf.forecast(df=df, h=28)
    print(json.dumps({"inner_seconds": time.perf_counter() - started,
                      "series": int(df["unique_id"].nunique()), "rows": len(out)}))


def child_prophet(csv: str, sample: int, uncertainty: bool) -> None:
    import logging

    import numpy as np

    for name in ("cmdstanpy", "prophet"):
        logging.getLogger(name).disabled = True
    from prophet import Prophet

    df = _series_frame(csv)
    ids = sorted(df["unique_id"].unique())
    picked = np.random.default_rng(0).choice(len(ids), min(sample, len(ids)), replace=False)
    groups = {uid: g[["ds", "y"]] for uid, g in df.groupby("unique_id")}
    started = time.perf_counter()
    for i in sorted(picked):
        options = {} if uncertainty else {"uncertainty_samples": 0}
        model = Prophet(**options).fit(groups[ids[i]])
        model.predict(model.make_future_dataframe(periods=28, include_history=False))
    elapsed = time.perf_counter() - started
    print(json.dumps({"inner_seconds": elapsed, "sampled": len(picked), "series": len(ids),
                      "extrapolated_seconds": elapsed / len(picked) * len(ids)}))


# --------------------------------------------------------------------------- measuring


def _tree_rss(root: int) -> int:
    """Sum of VmRSS (bytes) over ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
            with open(f"/proc/{entry}/statm") as f:
                pages = int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_child(args: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run this script as a child; wall time, ru_maxrss, peak tree RSS, load averages."""
    loads: list[float] = []
    peak = [0]
    started = time.perf_counter()
    with log.open("wb") as err:
        process = subprocess.Popen([sys.executable, __file__, *args], env=env,
                                   stdout=subprocess.PIPE, stderr=err)
    stop = threading.Event()

    def sample() -> None:
        tick = 0
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(process.pid))
            if tick % 20 == 0:
                loads.append(os.getloadavg()[0])
            tick += 1
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"child {args} failed; see {log}:\n{log.read_text()[-3000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return result | {"wall": wall, "maxrss_mb": usage.ru_maxrss / 1024,
                     "tree_rss_mb": peak[0] / 2**20,
                     "load": (min(loads), max(loads)) if loads else (0.0, 0.0)}


def machine() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    versions = {}
    from importlib import metadata

    for name in ("restock", "numpy", "pandas", "torch", "prophet", "cmdstanpy",
                 "statsforecast"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu, "cores": str(os.cpu_count()), "ram": f"{mem_kb / 2**20:.1f} GiB",
            "platform": platform.platform(), "python": platform.python_version(),
            "versions": ", ".join(f"{k} {v}" for k, v in versions.items())}


def week_upload(products: int, stores: int, days: int) -> bytes:
    """The next 7 days of every series: the same generator, 7 days later, last 7 days."""
    from restock.data.demo import COLUMNS, DEFAULT_END, generate_demo_sales

    frame = generate_demo_sales(products=products, stores=stores, days=days + 7,
                                end=DEFAULT_END + timedelta(days=7))
    frame = frame[frame["date"] > frame["date"].max() - timedelta(days=7)]
    buffer = io.StringIO()
    frame[list(COLUMNS)].to_csv(buffer, index=False, date_format="%Y-%m-%d")
    return buffer.getvalue().encode()


def stage_line(meta: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in meta["durations"].items() if v >= 0.5)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--stores", type=int, default=1)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--prophet-sample", type=int, default=50)
    parser.add_argument("--work", type=Path, help="working directory (default: a temp dir)")
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    parser.add_argument("--label", default="", help="a note for the results file (e.g. commit)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--arg", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "retrain":
        child_retrain(*args.arg)
        return 0
    if args.child == "autoets":
        child_autoets(*args.arg)
        return 0
    if args.child == "prophet":
        child_prophet(args.arg[0], int(args.arg[1]), args.arg[2] == "1")
        return 0

    from restock.config import Settings
    from restock.data.demo import write_demo_csv
    from restock.data.store import SalesStore

    work = args.work or Path(tempfile.mkdtemp(prefix="restock-retrain-speed-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    home = work / "home"
    csv = work / "demo.csv"
    rows = write_demo_csv(csv, products=args.products, stores=args.stores, days=args.days)
    env = {**os.environ, "RESTOCK_HOME": str(home)}
    settings = Settings.from_env({"home": home})
    store = SalesStore(settings.db_url, settings.uploads_dir)
    store.ingest_bytes(csv.read_bytes(), csv.name)
    store.close()
    info = machine()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{rows} rows in {work}; {info['cpu']}, {info['cores']} cores", flush=True)

    results: dict[str, dict[str, Any]] = {}
    results["retrain"] = run_child(["--child", "retrain"], env, work / "retrain1.log")
    print("retrain", results["retrain"], flush=True)
    results["autoets"] = run_child(["--child", "autoets", "--arg", str(csv)], env,
                                   work / "autoets.log")
    print("autoets", results["autoets"], flush=True)
    for key, flag in (("prophet", "1"), ("prophet_map", "0")):
        results[key] = run_child(
            ["--child", "prophet", "--arg", str(csv), "--arg", str(args.prophet_sample),
             "--arg", flag], env, work / f"{key}.log")
        print(key, results[key], flush=True)

    raw = week_upload(args.products, args.stores, args.days)
    store = SalesStore(settings.db_url, settings.uploads_dir)
    started = time.perf_counter()
    upload = store.ingest_bytes(raw, "week.csv")
    ingest_seconds = time.perf_counter() - started
    store.close()
    results["retrain2"] = run_child(["--child", "retrain"], env, work / "retrain2.log")
    print("retrain after upload", results["retrain2"], flush=True)

    metas = {k: json.loads((home / "models" / results[k]["version"] / "meta.json").read_text())
             for k in ("retrain", "retrain2")}
    lstm = {k: json.loads((home / "models" / results[k]["version"] / "lstm.json").read_text())
            ["training"] for k in ("retrain", "retrain2")}

    r1, r2, ets = results["retrain"], results["retrain2"], results["autoets"]
    p, pm = results["prophet"], results["prophet_map"]
    p_all, pm_all = p["extrapolated_seconds"], pm["extrapolated_seconds"]
    gb = r1["tree_rss_mb"] / 1024
    lines = [
        "# Retrain-speed benchmark (`bench/retrain_speed.py`)",
        "",
        f"Run {when} ({args.label or 'working tree'}) on {info['cores']} cores "
        f"({info['cpu']}), {info['ram']} RAM, {info['platform']}, Python {info['python']}.",
        f"Versions: {info['versions']}.",
        f"Data: `restock demo-data` {args.products} products x {args.stores} store x {args.days} days "
        f"({rows} rows; {metas['retrain']['series']} series + the total for restock). "
        f"`.venv/bin/python bench/retrain_speed.py --products {args.products} "
        f"--prophet-sample {args.prophet_sample}`.",
        "Every row is its own subprocess (wall time includes its imports); peak RSS is the "
        "largest sum over the process tree (workers included) and, in brackets, ru_maxrss of "
        "the largest single process.",
        "",
        "| run | wall (s) | inner compute (s) | peak RSS tree (MB) [largest process] | load avg 1 min during |",
        "|---|---|---|---|---|",
    ]

    def row(name: str, r: dict[str, Any], inner: str) -> str:
        return (f"| {name} | {r['wall']:.0f} | {inner} | {r['tree_rss_mb']:.0f} "
                f"[{r['maxrss_mb']:.0f}] | {r['load'][0]:.1f}-{r['load'][1]:.1f} |")

    lines += [
        row("restock full retrain (backtest + refit of all members, 365-step forecast, save)",
            r1, f"{r1['inner_seconds']:.0f}"),
        row("statsforecast AutoETS(season_length=7), n_jobs=2, fit+predict(28)", ets,
            f"{ets['inner_seconds']:.0f}"),
        row(f"Prophet() default loop, fit+predict(28): {p['sampled']} sampled series, "
            f"x{p['series'] / p['sampled']:.0f} extrapolated", p,
            f"{p['inner_seconds']:.0f} -> **{p_all:.0f}** for {p['series']}"),
        row("Prophet(uncertainty_samples=0) loop (MAP only), same sample", pm,
            f"{pm['inner_seconds']:.0f} -> {pm_all:.0f} for {pm['series']}"),
        row(f"restock retrain after a one-week upload ({upload.inserted} rows, ingest "
            f"{ingest_seconds:.1f} s)", r2, f"{r2['inner_seconds']:.0f}"),
        "",
        "## Targets",
        "",
        f"- no slower than AutoETS alone: retrain {r1['wall']:.0f} s vs AutoETS {ets['wall']:.0f} s "
        f"(inner {r1['inner_seconds']:.0f} vs {ets['inner_seconds']:.0f}): "
        f"**{'met' if r1['wall'] <= ets['wall'] else 'not met'}** "
        f"(ratio {r1['wall'] / ets['wall']:.2f})",
        f"- <= 0.5x the Prophet loop: {r1['wall']:.0f} / {p_all:.0f} = {r1['wall'] / p_all:.2f}: "
        f"**{'met' if r1['wall'] <= 0.5 * p_all else 'not met'}** (vs the MAP-only loop: "
        f"{r1['wall'] / pm_all:.2f})",
        f"- peak RSS <= 4 GB: {gb:.2f} GB: **{'met' if gb <= 4 else 'not met'}**",
        f"- retrain after a one-week upload: {r2['wall']:.0f} s vs {r1['wall']:.0f} s first: "
        f"{r1['wall'] / r2['wall']:.2f}x faster",
        "",
        "## Where the time goes (meta.json `durations`, seconds)",
        "",
        f"- first retrain: {stage_line(metas['retrain'])}",
        f"- after the upload: {stage_line(metas['retrain2'])}",
        f"- LSTM refit epochs: first {lstm['retrain']['epochs_run']} "
        f"(best {lstm['retrain']['best_epoch']}), after the upload "
        f"{lstm['retrain2']['epochs_run']} (best {lstm['retrain2']['best_epoch']})",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        previous = RESULTS.read_text() if RESULTS.exists() else ""
        marker = "\n## Notes"
        notes = previous[previous.index(marker):] if marker in previous else ""
        RESULTS.write_text(text + notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
