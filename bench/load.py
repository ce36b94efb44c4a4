"""Load benchmark: POST /forecast (single products) and GET / against a real `restock serve`.

Goals (issue 13, on the 2-core machine, load generator on the same machine): single-product
``POST /forecast`` at >= 0.5x the throughput of ``GET /`` on the same server in the same
run, p99 <= 2x ``GET /``'s p99, zero errors; during a retrain zero errors.

Uses wrk (``apt-get install wrk``) with a Lua script that rotates product ids and prints
the 95th percentile, which wrk's own summary lacks. Rate limits are raised for the run:
the benchmark measures the server, not the limiter. Writes bench/results/load.md, with
the load average (other agents share the cores).

    .venv/bin/python bench/load.py [--products 20 --days 365 --duration 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "load.md"

LUA = """
local products = {%(products)s}
local i = 0
request = function()
  i = i + 1
  local body = '{"product_id": "' .. products[(i %% #products) + 1] .. '", "days": 30}'
  return wrk.format("POST", "/forecast", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
                 + summary.errors.status + summary.errors.timeout
  io.write(string.format('RESULT {"requests": %%d, "seconds": %%.3f, "errors": %%d, '
    .. '"p50_ms": %%.2f, "p95_ms": %%.2f, "p99_ms": %%.2f, "max_ms": %%.2f}\\n',
    summary.requests, summary.duration / 1e6, errors, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""
LUA_GET = LUA.split("request = function()")[0] + "done" + LUA.split("\ndone")[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_wrk(url: str, script: Path, duration: int, connections: int,
            threads: int = 2) -> dict[str, Any]:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
                          "--timeout", "5s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["rps"] = result["requests"] / result["seconds"]
    return result


def wait_healthy(url: str, tries: int = 600) -> None:
    """Poll ``/healthz`` until the server answers (a benchmark's server is starting)."""
    for _ in range(tries):
        try:
            if requests.get(url + "/healthz", timeout=2).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)


def wait_job(url: str, job_id: str, timeout: float = 1800) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{url}/jobs/{job_id}", timeout=10).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise TimeoutError(job_id)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.platform()}, "
            f"Python {platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--stores", type=int, default=2)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    work = Path(tempfile.mkdtemp(prefix="restock-bench-"))
    home, csv = work / "home", work / "sales.csv"
    restock = [sys.executable, "-m", "restock", "--home", str(home)]
    subprocess.run([*restock, "demo-data", str(csv), "--products", str(args.products),
                    "--stores", str(args.stores), "--days", str(args.days)], check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RESTOCK_RATELIMIT_DEFAULT": "10000000 per minute",
           "RESTOCK_RATELIMIT_RETRAIN": "1000 per minute", "RESTOCK_LSTM_EPOCHS": str(args.epochs)}
    server = subprocess.Popen([*restock, "serve", "--port", str(port), "--workers",
                               str(args.workers), "--threads", str(args.threads)],
                              env=env, stdout=(work / "serve.log").open("w"),
                              stderr=subprocess.STDOUT)
    try:
        wait_healthy(url)
        raw = csv.read_bytes()
        started = time.monotonic()
        job = requests.post(url + "/retrain", files={"file": ("sales.csv", raw, "text/csv")},
                            timeout=600).json()
        first = wait_job(url, job["job_id"])
        train_seconds = time.monotonic() - started
        assert first["status"] == "succeeded", first
        products = sorted({s["product_id"] for s in requests.get(
            url + "/series?limit=1000", timeout=10).json()["items"]})
        script = work / "forecast.lua"
        script.write_text(LUA % {"products": ", ".join(f'"{p}"' for p in products)})
        get_script = work / "get.lua"
        get_script.write_text(LUA_GET % {"products": ""})

        load_before = os.getloadavg()
        run_wrk(url + "/", script, 3, args.connections)  # warm-up
        idle = run_wrk(url + "/", script, args.duration, args.connections)
        health = run_wrk(url + "/", get_script, args.duration, args.connections)

        retrain_result: dict[str, Any] = {}

        def retrain() -> None:
            job_id = requests.post(url + "/retrain", files={
                "file": ("sales.csv", raw, "text/csv")}, timeout=600).json()["job_id"]
            retrain_result.update(wait_job(url, job_id))

        trainer = threading.Thread(target=retrain)
        trainer.start()
        time.sleep(2)
        during = run_wrk(url + "/", script, min(args.duration, int(train_seconds * 0.6) or 5),
                         args.connections)
        still_running = trainer.is_alive()
        trainer.join()
        load_after = os.getloadavg()
    finally:
        server.terminate()
        server.wait(60)

    def row(name: str, r: dict[str, Any], target: str) -> str:
        return (f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['errors']} | {r['requests']} | {target} |")

    report = "\n".join([
        "# Load benchmark (bench/load.py)", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.", "",
        f"`restock serve --workers {args.workers} --threads {args.threads}` (gunicorn gthread), "
        f"wrk on the same machine: {args.connections} connections, 2 threads, "
        f"{args.duration} s per run. Data: demo {args.products} products x {args.stores} stores "
        f"x {args.days} days ({args.products * args.stores} series), LSTM {args.epochs} epochs; "
        f"the first retrain took {train_seconds:.0f} s. `/forecast` bodies rotate over single "
        "products, 30 days, default inventory parameters and history (28 periods). Rate limits "
        "raised for the run.", "",
        "| run | req/s | p50 ms | p95 ms | p99 ms | errors | requests | target |",
        "|---|---|---|---|---|---|---|---|",
        row("POST /forecast", idle, ">= 0.5x GET / req/s, p99 <= 2x GET / p99, 0 errors"),
        row("POST /forecast during a retrain", during, "0 errors"),
        row("GET /", health, "the reference"), "",
        f"POST /forecast / GET /: throughput **{idle['rps'] / health['rps']:.2f}x** (goal >= "
        f"0.5x: {'ok' if idle['rps'] >= 0.5 * health['rps'] else 'missed'}), p99 "
        f"**{idle['p99_ms'] / health['p99_ms']:.2f}x** (goal <= 2x: "
        f"{'ok' if idle['p99_ms'] <= 2 * health['p99_ms'] else 'missed'}), errors "
        f"{idle['errors']} / {during['errors']} during the retrain.", "",
        f"Load average (1/5/15 min) before the runs {load_before[0]:.2f} / "
        f"{load_before[1]:.2f} / {load_before[2]:.2f}, after {load_after[0]:.2f} / "
        f"{load_after[1]:.2f} / {load_after[2]:.2f} (other agents share the 2 cores).", "",
        "The retrain under load " + ("was still running when the measurement ended"
                                     if still_running else "finished during the measurement")
        + f" and ended `{retrain_result.get('status')}`.", "",
    ])
    RESULTS.write_text(report)
    print(report)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
