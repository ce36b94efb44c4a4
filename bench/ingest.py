"""Ingest benchmarks (issue 2). Not a timed test: run ``python bench/ingest.py``.

1. A 1,000,000-row demo CSV (1,000 products x 1 store x 1,000 days) ingested into an empty
   SQLite store with ``SalesStore.ingest_file``, in a child process so that the generator's
   memory does not count; reports wall time and the child's peak RSS.
   Targets: <= 20 s, <= 1.5 GB.
2. A 10,000-row upload (200 products x 50 days: 25 days overwrite history, 25 are new) into
   histories of 200k, 1M and 2M rows, restock against the seed's approach (pandas read of the
   whole history CSV + concat + drop_duplicates on (date, product_id) + to_csv of the whole
   file). Targets: restock >= 10x faster at 2M, and flat in the history size.

Prints a table and writes bench/results/ingest.md (with the machine it ran on).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "ingest.md"
HISTORY_END = dt.date(2026, 10, 31)
HISTORY_DAYS = 1_000
UPLOAD_PRODUCTS, UPLOAD_DAYS, UPLOAD_OVERLAP = 200, 50, 25
HISTORY_SIZES = (200_000, 1_000_000, 2_000_000)
BEFORE = (
    "Reference, measured once by hand (not by this script) on the same file and machine, "
    "load average ~10: the code before the ingest optimisations (commit f889951: SQLAlchemy "
    "executemany of dicts, every date format tried on every row, default 2 MiB SQLite cache) "
    "took 78.9 s (parse 16.7 s, stage 28.0 s, upsert 32.4 s) and 845 MB peak RSS; the "
    "optimised code took 13.7 s (parse 4.7 s, stage 3.3 s, upsert 4.4 s) and 574 MB in the "
    "same session."
)


# -- machine ----------------------------------------------------------------------------


def machine() -> dict[str, str]:
    import pandas as pd
    import sqlalchemy as sa

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
                break
    except OSError:
        pass
    try:
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "load average at start (1/5/15 min)": load,
        "os": platform.platform(),
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "sqlalchemy": sa.__version__,
        "sqlite": sqlite3.sqlite_version,
    }


# -- child: one measured ingest ---------------------------------------------------------


def child_ingest(csv_path: str, home: str) -> None:
    """Ingest ``csv_path`` into a fresh store under ``home``; print JSON figures."""
    from restock.data.store import SalesStore

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store = SalesStore(f"sqlite:///{home}/restock.db", Path(home) / "uploads")
    start = time.perf_counter()
    result = store.ingest_file(Path(csv_path))
    seconds = time.perf_counter() - start
    store.close()
    print(json.dumps({
        "seconds": seconds,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_after_imports_kib": rss_before,
        "inserted": result.inserted, "updated": result.updated,
        "total_rows": result.total_rows, "series": result.series,
    }))


def bench_large(work: Path) -> dict[str, float]:
    from restock.data.demo import write_demo_csv

    csv_path = work / "demo_1m.csv"
    rows = write_demo_csv(csv_path, products=1_000, stores=1, days=1_000, seed=7)
    home = work / "large_home"
    home.mkdir()
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child-ingest", str(csv_path), str(home)],
        check=True, capture_output=True, text=True,
    )
    process_seconds = time.perf_counter() - start
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["inserted"] == rows == figures["total_rows"], figures
    return {
        "rows": rows, "csv_mb": csv_path.stat().st_size / 1e6,
        "seconds": figures["seconds"], "process_seconds": process_seconds,
        "peak_rss_mb": figures["peak_rss_kib"] / 1024,
        "rss_after_imports_mb": figures["rss_after_imports_kib"] / 1024,
        "series": figures["series"],
    }


# -- upload into a history: restock versus the seed --------------------------------------


def seed_merge(history_csv: Path, upload_csv: Path) -> int:
    """The seed's retrain step 2-4: merge the upload into large_dataset.csv and rewrite it."""
    import pandas as pd

    history = pd.read_csv(history_csv)
    upload = pd.read_csv(upload_csv)
    combined = pd.concat([history, upload], ignore_index=True)
    combined = combined.drop_duplicates(subset=["date", "product_id"], keep="last")
    combined.to_csv(history_csv, index=False)
    return len(combined)


def bench_upload(work: Path, repeat: int) -> list[dict[str, float]]:
    from restock.data.demo import write_demo_csv
    from restock.data.store import SalesStore

    upload_csv = work / "upload_10k.csv"
    upload_rows = write_demo_csv(
        upload_csv, products=UPLOAD_PRODUCTS, stores=1, days=UPLOAD_DAYS, seed=11,
        end=HISTORY_END + dt.timedelta(days=UPLOAD_DAYS - UPLOAD_OVERLAP),
    )
    results = []
    for size in HISTORY_SIZES:
        history_csv = work / f"history_{size}.csv"
        rows = write_demo_csv(history_csv, products=size // HISTORY_DAYS, stores=1,
                              days=HISTORY_DAYS, seed=7, end=HISTORY_END)
        # restock: the history ingested once, then each repetition uploads into a copy of it
        base = work / f"store_{size}"
        store = SalesStore(f"sqlite:///{base}/restock.db", base / "uploads")
        start = time.perf_counter()
        store.ingest_file(history_csv)
        history_ingest = time.perf_counter() - start
        store.close()
        restock_times, counts = [], None
        for i in range(repeat):
            home = work / f"store_{size}_{i}"
            shutil.copytree(base, home)
            store = SalesStore(f"sqlite:///{home}/restock.db", home / "uploads")
            start = time.perf_counter()
            result = store.ingest_file(upload_csv)
            restock_times.append(time.perf_counter() - start)
            store.close()
            counts = (result.inserted, result.updated, result.total_rows)
            shutil.rmtree(home)
        shutil.rmtree(base)
        assert counts == (upload_rows - UPLOAD_PRODUCTS * UPLOAD_OVERLAP,
                          UPLOAD_PRODUCTS * UPLOAD_OVERLAP,
                          rows + upload_rows - UPLOAD_PRODUCTS * UPLOAD_OVERLAP), counts
        # the seed: each repetition rewrites a fresh copy of the history CSV
        seed_times = []
        for _ in range(repeat):
            target = work / "large_dataset.csv"
            shutil.copyfile(history_csv, target)
            start = time.perf_counter()
            merged = seed_merge(target, upload_csv)
            seed_times.append(time.perf_counter() - start)
            assert merged == counts[2], (merged, counts)
        history_csv.unlink()
        results.append({
            "history": rows, "upload": upload_rows, "inserted": counts[0],
            "updated": counts[1], "history_ingest": history_ingest,
            "restock": statistics.median(restock_times), "restock_all": restock_times,
            "seed": statistics.median(seed_times), "seed_all": seed_times,
        })
        print(f"  history {rows:>9,}: restock {results[-1]['restock']:.3f} s, "
              f"seed {results[-1]['seed']:.2f} s", flush=True)
    return results


# -- report -------------------------------------------------------------------------------


def report(info: dict[str, str], large: dict[str, float], uploads: list[dict[str, float]],
           repeat: int) -> str:
    ok = lambda good: "yes" if good else "**NO**"  # noqa: E731
    lines = ["# Ingest benchmark", "",
             "Produced by `python bench/ingest.py` (numbers below are from one run).", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += [
        "", "## 1. 1,000,000-row CSV into an empty SQLite store", "",
        f"Demo data, 1,000 products x 1 store x 1,000 days ({large['csv_mb']:.1f} MB), "
        "`SalesStore.ingest_file` in a child process (parse + validate, keep the file, one "
        "transaction: stage, count existing keys, upsert, totals).", "",
        "| measure | value | target | met |", "|---|---:|---:|---|",
        f"| ingest_file wall time | {large['seconds']:.1f} s | <= 20 s | "
        f"{ok(large['seconds'] <= 20)} |",
        f"| child process wall time (incl. interpreter start, imports) | "
        f"{large['process_seconds']:.1f} s | | |",
        f"| peak RSS of the child | {large['peak_rss_mb']:.0f} MB | <= 1,536 MB | "
        f"{ok(large['peak_rss_mb'] <= 1536)} |",
        f"| RSS after imports, before ingest | {large['rss_after_imports_mb']:.0f} MB | | |",
        "", BEFORE,
        "", "## 2. 10,000-row upload into a history: restock vs the seed", "",
        f"Upload: {UPLOAD_PRODUCTS} products x {UPLOAD_DAYS} days, {UPLOAD_OVERLAP} days "
        "overlapping the history (updated) and the rest new (inserted). restock: "
        "`SalesStore.ingest_file` into a SQLite store holding the history (whole call: parse, "
        "validate, keep the file, transaction, totals). Seed: `pd.read_csv` of the history "
        "and upload CSVs + `concat` + `drop_duplicates(['date', 'product_id'], keep='last')` "
        "+ `to_csv` of the whole file (no date parsing, which flatters the seed). "
        f"Median of {repeat} run(s) each.", "",
        "| history rows | inserted / updated | restock | seed | seed / restock |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in uploads:
        lines.append(f"| {r['history']:,} | {r['inserted']:,} / {r['updated']:,} | "
                     f"{r['restock']:.3f} s | {r['seed']:.2f} s | "
                     f"{r['seed'] / r['restock']:.0f}x |")
    small, big = uploads[0], uploads[-1]
    growth_r = big["restock"] / small["restock"]
    growth_s = big["seed"] / small["seed"]
    speedup = big["seed"] / big["restock"]
    lines += [
        "",
        f"- restock >= 10x faster than the seed at {big['history']:,} rows: "
        f"{speedup:.0f}x, {ok(speedup >= 10)}.",
        f"- Growth from {small['history']:,} to {big['history']:,} history rows (10x): "
        f"restock x{growth_r:.2f}, seed x{growth_s:.1f}. restock's upload cost is set by the "
        "upload; what still grows with the history is the exact `total_rows` in the result "
        "(SQLite's COUNT(*) reads an index: ~0.1 s at 2M rows) and B-tree depth; `series` is "
        "counted by a skip-scan of the primary key (one seek per series).",
        "- Building the histories with restock itself (ingest_file of the history CSV): "
        + ", ".join(f"{r['history']:,} rows {r['history_ingest']:.1f} s" for r in uploads)
        + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per upload measurement (median reported); default 3")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="scratch directory (default: a temporary one, removed after)")
    parser.add_argument("--no-write", action="store_true", help="do not write results/ingest.md")
    parser.add_argument("--child-ingest", nargs=2, metavar=("CSV", "HOME"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_ingest:
        child_ingest(*args.child_ingest)
        return
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="restock-bench-", dir=args.workdir))
    try:
        print(f"machine: {info['cpu']}, {info['cores']} cores, {info['ram']}, "
              f"load {info['load average at start (1/5/15 min)']}", flush=True)
        print("1. 1M-row CSV into an empty SQLite store ...", flush=True)
        large = bench_large(work)
        print(f"  ingest {large['seconds']:.1f} s, peak RSS {large['peak_rss_mb']:.0f} MB",
              flush=True)
        print("2. 10k-row upload into a history, restock vs seed ...", flush=True)
        uploads = bench_upload(work, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(info, large, uploads, args.repeat)
    print()
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
