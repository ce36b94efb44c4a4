"""Scale-out benchmark: a Celery retrain with 1 vs 2 ``restock worker`` processes (Prophet
shards on), and /forecast throughput with 1 vs 4 web workers.

Every process is real: ``restock serve`` (gunicorn) and ``restock worker`` (Celery, each
``--concurrency 2``: one slot runs the retrain, the other fits shards) over the Redis at
``--redis``, each configuration with a fresh home and its own Redis key prefix. The retrain
time is from the upload to the job's end; the Prophet share comes from the version's
``meta.json`` stage durations. Load runs use wrk as in ``bench/load.py`` (same Lua script).
Writes bench/results/scale.md.

    .venv/bin/python bench/scale.py [--products 1000 --days 730 --epochs 2 --duration 15]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis
import requests

from load import LUA, free_port, machine, run_wrk, wait_job

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "scale.md"


class Deployment:
    """A home, a Redis prefix and the processes started over them (all stopped at close)."""

    def __init__(self, work: Path, redis_url: str, epochs: int) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.prefix = "restock-bench-" + uuid.uuid4().hex[:8]
        self.redis_url = redis_url
        self.env = {**os.environ, "RESTOCK_HOME": str(work / "home"), "RESTOCK_QUEUE": "celery",
                    "RESTOCK_REDIS_URL": redis_url, "RESTOCK_REDIS_PREFIX": self.prefix,
                    "RESTOCK_LSTM_EPOCHS": str(epochs), "RESTOCK_PROPHET_WORKERS": "1",
                    "RESTOCK_RATELIMIT_DEFAULT": "10000000 per minute",
                    "RESTOCK_RATELIMIT_STORAGE_URI": "memory://"}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.workers = 0
        self.url = ""

    def start(self, *args: str, ready: Any) -> subprocess.Popen[bytes]:
        log = self.work / f"{args[0]}-{len(self.processes)}.log"
        process = subprocess.Popen([sys.executable, "-m", "restock", *args], env=self.env,
                                   stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        deadline = time.monotonic() + 120
        while not ready(log):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start:\n{log.read_text()}")
            time.sleep(0.2)
        return process

    def serve(self, workers: int) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"

        def up(_: Path) -> bool:
            try:
                return requests.get(self.url + "/healthz", timeout=2).ok
            except requests.RequestException:
                return False

        self.start("serve", "--port", str(port), "--workers", str(workers), "--threads", "8",
                   ready=up)

    def worker(self) -> None:
        self.workers += 1
        self.start("worker", "--concurrency", "2", "--loglevel", "warning",
                   ready=self._worker_ready)

    def _worker_ready(self, log: Path) -> bool:
        """Answering Celery's remote control: only then does sharding count its slots."""
        return len(self._celery_stats()) >= self.workers

    def _celery_stats(self) -> dict[str, Any]:
        from restock.config import Settings
        from restock.jobs.celery import make_celery

        app = make_celery(Settings.from_env({"redis_url": self.redis_url,
                                             "redis_prefix": self.prefix}, environ={}))
        return app.control.inspect(timeout=1.0).stats() or {}

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.stop(process)
        client = redis.Redis.from_url(self.redis_url)
        keys = list(client.scan_iter(match=self.prefix + ":*", count=1000))
        if keys:
            client.delete(*keys)


def retrain(work: Path, csv: Path, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    """Upload and retrain on a fresh deployment with ``workers`` worker processes."""
    deployment = Deployment(work, args.redis, args.epochs)
    try:
        deployment.serve(1)
        for _ in range(workers):
            deployment.worker()
        started = time.monotonic()
        job = requests.post(deployment.url + "/retrain", timeout=600,
                            files={"file": ("sales.csv", csv.read_bytes(), "text/csv")}).json()
        done = wait_job(deployment.url, job["job_id"], timeout=24 * 3600)
        seconds = time.monotonic() - started
        assert done["status"] == "succeeded", done
        meta = json.loads((work / "home" / "models" / done["model_version"] / "meta.json")
                          .read_text())
        logs = "".join(p.read_text() for p in work.glob("worker-*.log"))
        return {"workers": workers, "seconds": seconds, "durations": meta["durations"],
                "series": meta["series"], "home": work / "home",
                "errors": logs.count("ERROR/")}
    finally:
        deployment.close()


def throughput(home: Path, web_workers: int, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"restock-bench-web{web_workers}-"))
    deployment = Deployment(work, args.redis, args.epochs)
    deployment.env["RESTOCK_HOME"] = str(home)
    try:
        deployment.serve(web_workers)
        products = sorted({s["product_id"] for s in requests.get(
            deployment.url + "/series?limit=1000", timeout=30).json()["items"]})
        script = work / "forecast.lua"
        script.write_text(LUA % {"products": ", ".join(f'"{p}"' for p in products)})
        run_wrk(deployment.url + "/", script, 3, args.connections)  # warm-up: load the model
        return {"web_workers": web_workers,
                **run_wrk(deployment.url + "/", script, args.duration, args.connections)}
    finally:
        deployment.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--stores", type=int, default=1)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    work = Path(tempfile.mkdtemp(prefix="restock-bench-scale-"))
    csv = work / "sales.csv"
    subprocess.run([sys.executable, "-m", "restock", "demo-data", str(csv), "--products",
                    str(args.products), "--stores", str(args.stores), "--days",
                    str(args.days)], check=True, env={**os.environ, "RESTOCK_HOME": str(work)})
    runs = [retrain(work / f"w{n}", csv, n, args) for n in (1, 2)]
    loads = [throughput(runs[-1]["home"], n, args) for n in (1, 4)]

    base = runs[0]
    lines = [
        "# Scale-out benchmark", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.",
        f"Demo data: {args.products} products x {args.stores} store(s) x {args.days} days "
        f"({base['series']} series + the total), LSTM {args.epochs} epochs, "
        "`RESTOCK_PROPHET_WORKERS=1`; `.venv/bin/python bench/scale.py "
        f"--products {args.products} --days {args.days} --epochs {args.epochs}`.", "",
        "## Retrain through Celery (shards on)", "",
        "Each `restock worker` runs `--concurrency 2`: one pool slot runs the retrain, the "
        "others fit Prophet shards (25 series each) for it.", "",
        "| worker processes | shard slots | retrain wall (s) | backtest (s) | prophet refit (s) "
        "| speed-up |", "|---|---|---|---|---|---|",
    ]
    for run in runs:
        d = run["durations"]
        lines.append(f"| {run['workers']} | {2 * run['workers'] - 1} | {run['seconds']:.1f} "
                     f"| {d.get('backtest', 0):.1f} | {d.get('prophet', 0):.1f} "
                     f"| {base['seconds'] / run['seconds']:.2f}x |")
    lines += ["", "## /forecast throughput (celery queue, wrk, "
              f"{args.connections} connections, {args.duration} s)", "",
              "| web workers | req/s | p50 (ms) | p95 (ms) | errors | speed-up |",
              "|---|---|---|---|---|---|"]
    for load in loads:
        lines.append(f"| {load['web_workers']} | {load['rps']:.0f} | {load['p50_ms']:.1f} "
                     f"| {load['p95_ms']:.1f} | {load['errors']} "
                     f"| {load['rps'] / loads[0]['rps']:.2f}x |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
