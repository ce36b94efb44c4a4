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
5. **M3 monthly** (the 1,428 series of ``m3_monthly_train.csv`` in ``../shared/data`` or
   ``RESTOCK_BENCH_DATA``, read in place; skipped when absent): a restock full retrain on
   a fresh home next to ``AutoETS(season_length=12)``, ``n_jobs=2``, fit + predict(18).

Peak RSS: ``ru_maxrss`` of the waited-for child (``os.wait4``: the largest single process
among it and the descendants it waited for) and, sampled every 0.25 s from /proc, the
largest *sum* of RSS over the child's whole process tree (Prophet workers included).
The load average is sampled during every phase: other jobs share this machine.

    .venv/bin/python bench/retrain_speed.py [--products 500] [--prophet-sample 50]
        [--datasets demo,m3] [--no-upload] [--no-write]
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
    from restock.processes import use_safe_start_method
    from restock.training import retrain_model

    use_safe_start_method()  # as the restock command does: no pool forks a threaded process
    started = time.perf_counter()
    version = retrain_model()
    print(json.dumps({"version": version, "inner_seconds": time.perf_counter() - started}))


def _series_frame(csv: str):
    import pandas as pd

    raw = pd.read_csv(csv, parse_dates=["date"])
    uid = raw["product_id"].astype(str)
    if "store_id" in raw:
        uid = uid + "/" + raw["store_id"].astype(str)
    return pd.DataFrame({"unique_id": uid, "ds": raw["date"], "y": raw["quantity"].astype(float)})


def child_autoets(csv: str, freq: str = "D", season: str = "7", h: str = "28") -> None:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    df = _series_frame(csv)
    started = time.perf_counter()
    sf = StatsForecast(models=[AutoETS(season_length=int(season))], freq=freq, n_jobs=2)
    out = sf.forecast(df=df, h=int(h))
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


def member_line(meta: dict[str, Any]) -> str:
    """Each member's backtest + refit seconds (meta.json ``member_seconds``), costliest first."""
    seconds = meta.get("member_seconds") or {}
    backtest, fit = seconds.get("backtest", {}), seconds.get("fit", {})
    order = sorted(set(backtest) | set(fit), key=lambda a: -(backtest.get(a, 0) + fit.get(a, 0)))
    line = ", ".join(f"{a} {backtest.get(a, 0):.0f}+{fit.get(a, 0):.0f}" for a in order)
    overlapped = seconds.get("overlapped")
    return line + (f" (alongside the others: {', '.join(overlapped)})" if overlapped else "")


def data_dir() -> Path:
    """The shared benchmark data (see its README), as ``bench/accuracy.py`` finds it."""
    return Path(os.environ.get("RESTOCK_BENCH_DATA") or ROOT.parent / "shared" / "data")


def fresh_home(home: Path, csv: Path) -> tuple[dict[str, str], Any]:
    """A restock home holding only ``csv``; the environment for children using it."""
    from restock.config import Settings
    from restock.data.store import SalesStore

    settings = Settings.from_env({"home": home})
    store = SalesStore(settings.db_url, settings.uploads_dir)
    store.ingest_bytes(csv.read_bytes(), csv.name)
    store.close()
    return {**os.environ, "RESTOCK_HOME": str(home)}, settings


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--stores", type=int, default=1)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--prophet-sample", type=int, default=50)
    parser.add_argument("--datasets", default="demo,m3",
                        help="comma-separated: demo (generated daily) and/or m3 (monthly)")
    parser.add_argument("--no-upload", action="store_true",
                        help="skip the retrain after a one-week upload (demo)")
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

    from restock.data.demo import write_demo_csv
    from restock.data.store import SalesStore

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    work = args.work or Path(tempfile.mkdtemp(prefix="restock-retrain-speed-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    info = machine()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{work}; {info['cpu']}, {info['cores']} cores", flush=True)
    results: dict[str, dict[str, Any]] = {}
    homes: dict[str, Path] = {}
    lines = [
        "# Retrain-speed benchmark (`bench/retrain_speed.py`)",
        "",
        f"Run {when} ({args.label or 'working tree'}) on {info['cores']} cores "
        f"({info['cpu']}), {info['ram']} RAM, {info['platform']}, Python {info['python']}.",
        f"Versions: {info['versions']}.",
        f"`.venv/bin/python bench/retrain_speed.py --products {args.products} "
        f"--prophet-sample {args.prophet_sample} --datasets {','.join(datasets)}"
        f"{' --no-upload' if args.no_upload else ''}`.",
        "Every row is its own subprocess (wall time includes its imports); peak RSS is the "
        "largest sum over the process tree (workers included) and, in brackets, ru_maxrss of "
        "the largest single process. Other jobs share the machine: compare rows of one run "
        "(the load average is recorded with each).",
        "",
    ]

    def run(key: str, child: list[str], env: dict[str, str]) -> dict[str, Any]:
        results[key] = run_child(child, env, work / f"{key}.log")
        print(key, results[key], flush=True)
        return results[key]

    def row(name: str, r: dict[str, Any], inner: str) -> str:
        return (f"| {name} | {r['wall']:.0f} | {inner} | {r['tree_rss_mb']:.0f} "
                f"[{r['maxrss_mb']:.0f}] | {r['load'][0]:.1f}-{r['load'][1]:.1f} |")

    header = ["| run | wall (s) | inner compute (s) | peak RSS tree (MB) [largest process] "
              "| load avg 1 min during |", "|---|---|---|---|---|"]
    targets: list[str] = []
    where: list[str] = []

    def versus_autoets(name: str, r: dict[str, Any], ets: dict[str, Any]) -> None:
        ratio = r["wall"] / ets["wall"]
        gb = r["tree_rss_mb"] / 1024
        targets.append(
            f"- {name}: retrain {r['wall']:.0f} s vs AutoETS {ets['wall']:.0f} s (inner "
            f"{r['inner_seconds']:.0f} vs {ets['inner_seconds']:.0f}): ratio **{ratio:.2f}** "
            f"(goal <= 1.5: {'met' if ratio <= 1.5 else 'not met'}); peak RSS {gb:.2f} GB "
            f"(goal <= 4: {'met' if gb <= 4 else 'not met'})")

    def meta_of(key: str) -> dict[str, Any]:
        return json.loads((homes[key] / "models" / results[key]["version"] / "meta.json")
                          .read_text())

    if "demo" in datasets:
        csv = work / "demo.csv"
        rows = write_demo_csv(csv, products=args.products, stores=args.stores, days=args.days)
        homes["retrain"] = homes["retrain2"] = work / "home"
        env, settings = fresh_home(homes["retrain"], csv)
        r1 = run("retrain", ["--child", "retrain"], env)
        ets = run("autoets", ["--child", "autoets", "--arg", str(csv)], env)
        for key, flag in (("prophet", "1"), ("prophet_map", "0")):
            run(key, ["--child", "prophet", "--arg", str(csv), "--arg",
                      str(args.prophet_sample), "--arg", flag], env)
        p, pm = results["prophet"], results["prophet_map"]
        p_all, pm_all = p["extrapolated_seconds"], pm["extrapolated_seconds"]
        lines += [
            f"## Daily: `restock demo-data` {args.products} products x {args.stores} store x "
            f"{args.days} days ({rows} rows; {meta_of('retrain')['series']} series + the total "
            "for restock)",
            "",
            *header,
            row("restock full retrain (backtest + refit of all members, 365-step forecast, save)",
                r1, f"{r1['inner_seconds']:.0f}"),
            row("statsforecast AutoETS(season_length=7), n_jobs=2, fit+predict(28)", ets,
                f"{ets['inner_seconds']:.0f}"),
            row(f"Prophet() default loop, fit+predict(28): {p['sampled']} sampled series, "
                f"x{p['series'] / p['sampled']:.0f} extrapolated", p,
                f"{p['inner_seconds']:.0f} -> **{p_all:.0f}** for {p['series']}"),
            row("Prophet(uncertainty_samples=0) loop (MAP only), same sample", pm,
                f"{pm['inner_seconds']:.0f} -> {pm_all:.0f} for {pm['series']}"),
        ]
        versus_autoets("daily 500 x 730", r1, ets)
        targets.append(f"- daily, <= 0.5x the Prophet loop: {r1['wall']:.0f} / {p_all:.0f} = "
                       f"{r1['wall'] / p_all:.2f} (vs the MAP-only loop: "
                       f"{r1['wall'] / pm_all:.2f})")
        where += [f"- daily first retrain, stages: {stage_line(meta_of('retrain'))}",
                  f"  - members (backtest+refit): {member_line(meta_of('retrain'))}"]
        if not args.no_upload:
            raw = week_upload(args.products, args.stores, args.days)
            store = SalesStore(settings.db_url, settings.uploads_dir)
            started = time.perf_counter()
            upload = store.ingest_bytes(raw, "week.csv")
            ingest_seconds = time.perf_counter() - started
            store.close()
            r2 = run("retrain2", ["--child", "retrain"], env)
            lines.append(row(f"restock retrain after a one-week upload ({upload.inserted} rows, "
                             f"ingest {ingest_seconds:.1f} s)", r2, f"{r2['inner_seconds']:.0f}"))
            targets.append(f"- daily retrain after a one-week upload: {r2['wall']:.0f} s vs "
                           f"{r1['wall']:.0f} s first")
            where += [f"- daily after the upload, stages: {stage_line(meta_of('retrain2'))}",
                      f"  - members (backtest+refit): {member_line(meta_of('retrain2'))}"]
        lines.append("")

    m3_csv = data_dir() / "m3_monthly_train.csv"
    if "m3" in datasets and not m3_csv.exists():
        print(f"M3 data not found at {m3_csv} (set RESTOCK_BENCH_DATA): M3 run skipped")
    elif "m3" in datasets:
        homes["m3_retrain"] = work / "home-m3"
        env, _ = fresh_home(homes["m3_retrain"], m3_csv)
        r3 = run("m3_retrain", ["--child", "retrain"], env)
        ets3 = run("m3_autoets", ["--child", "autoets", "--arg", str(m3_csv), "--arg", "MS",
                                  "--arg", "12", "--arg", "18"], env)
        lines += [
            f"## Monthly: M3 ({m3_csv.name}, {meta_of('m3_retrain')['series']} series + the "
            "total for restock, 48-126 months each)",
            "",
            *header,
            row(f"restock full retrain ({meta_of('m3_retrain')['horizon']}-step forecast)", r3,
                f"{r3['inner_seconds']:.0f}"),
            row("statsforecast AutoETS(season_length=12), n_jobs=2, fit+predict(18)", ets3,
                f"{ets3['inner_seconds']:.0f}"),
            "",
        ]
        versus_autoets("monthly M3 1,428", r3, ets3)
        where += [f"- M3 retrain, stages: {stage_line(meta_of('m3_retrain'))}",
                  f"  - members (backtest+refit): {member_line(meta_of('m3_retrain'))}"]

    lines += ["## Targets", "", *targets, "",
              "## Where the time goes (meta.json `durations` and `member_seconds`, seconds)", "",
              *where, ""]
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
