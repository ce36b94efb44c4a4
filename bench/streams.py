"""Streams benchmark: many open progress streams on one retrain vs the rest of the API.

Issue 16's goal, on the default server (``restock serve``: 2 workers x 8 threads), with
1,000 open ``GET /jobs/<id>/events`` streams on one running retrain: ``GET /`` p99 <= 100
ms, single-product ``POST /forecast`` keeps >= 80% of its throughput without streams,
<= 50 KB of memory added per open stream, and every stream receives the final event.

How: train a first version (so forecasts answer), start a second retrain over a bigger
upload (``--stream-products``) whose backtest stage runs through every measurement,
measure ``GET /`` and ``POST /forecast`` with wrk (no streams), open the streams from
one selector loop in this process (raw sockets, read continuously), measure again, then
cancel the retrain and check that every stream got the job's final event and was closed
by the server. The job's status and stage after the measurements are reported: a run in
which the retrain ended early measured partly without streams. Memory:
RSS and open descriptors of each gunicorn worker before and after opening the streams
(the worker that runs the retrain trains meanwhile, so its figure is the noisy one).
Writes bench/results/streams.md. ``--src`` runs another checkout's code (a "before").

    .venv/bin/python bench/streams.py [--streams 1000 --duration 15]
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import LUA, LUA_GET, free_port, machine, run_wrk, wait_healthy, wait_job  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "streams.md"


@dataclass(eq=False)
class Client:
    """One stream as the load generator sees it: bytes read, events seen, the end."""

    sock: socket.socket
    tail: bytes = b""
    events: int = 0
    final: str | None = None
    closed: bool = False
    status: int | None = None


class StreamClients:
    """``count`` SSE clients on one selector loop (a thread): cheap enough for 1,000."""

    def __init__(self, port: int, path: str, count: int) -> None:
        self.port, self.path = port, path
        self.selector = selectors.DefaultSelector()
        self.clients: list[Client] = []
        self._stop = threading.Event()
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Accept: text/event-stream\r\n\r\n".encode())
            sock.setblocking(False)
            client = Client(sock)
            self.clients.append(client)
            self.selector.register(sock, selectors.EVENT_READ, client)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set() and any(not c.closed for c in self.clients):
            for key, _ in self.selector.select(0.5):
                client: Client = key.data
                try:
                    data = client.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    client.closed = True
                    self.selector.unregister(client.sock)
                    client.sock.close()
                    continue
                if client.status is None and data.startswith(b"HTTP/1.1 "):
                    client.status = int(data[9:12])
                window = client.tail + data
                client.events += window.count(b"\nevent: ") - client.tail.count(b"\nevent: ")
                for kind in (b"done", b"error"):
                    if b"\nevent: " + kind + b"\n" in window:
                        client.final = kind.decode()
                client.tail = window[-64:]

    def wait(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.2)
        return predicate()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        for client in self.clients:
            if not client.closed:
                client.sock.close()


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def rss_and_fds(pid: int) -> tuple[int, int]:
    """Resident set size in KiB and open descriptors of one process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines()
               if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--products", type=int, default=10)
    parser.add_argument("--stores", type=int, default=2)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--stream-products", type=int, default=100,
                        help="products of the streamed retrain's upload: its backtest stage "
                             "must outlast the measurements (it is cancelled at the end)")
    parser.add_argument("--epochs", type=int, default=400,
                        help="LSTM epochs of the streamed retrain")
    parser.add_argument("--src", type=Path, default=ROOT / "src",
                        help="the restock source tree to run (another checkout = 'before')")
    parser.add_argument("--label", default="this branch")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    raise_fd_limit(args.streams + 1024)

    work = Path(tempfile.mkdtemp(prefix="restock-bench-streams-"))
    home, csv, big_csv = work / "home", work / "sales.csv", work / "big.csv"
    env = {**os.environ, "PYTHONPATH": str(args.src.resolve()),
           "RESTOCK_RATELIMIT_DEFAULT": "10000000 per minute",
           "RESTOCK_RATELIMIT_RETRAIN": "1000 per minute", "RESTOCK_LSTM_EPOCHS": "1",
           "RESTOCK_MAX_STREAMS_PER_CLIENT": str(args.streams)}
    restock = [sys.executable, "-m", "restock", "--home", str(home)]
    subprocess.run([*restock, "demo-data", str(csv), "--products", str(args.products),
                    "--stores", str(args.stores), "--days", str(args.days)], check=True,
                   env=env)
    subprocess.run([*restock, "demo-data", str(big_csv), "--products",
                    str(args.stream_products), "--stores", str(args.stores), "--days",
                    str(args.days)], check=True, env=env)
    # the first retrain (a model to forecast from) is short; the streamed one is long
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "serve.log").open("w")
    server = subprocess.Popen([*restock, "serve", "--port", str(port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    clients: StreamClients | None = None
    try:
        wait_healthy(url)
        raw = csv.read_bytes()
        first = requests.post(url + "/retrain", files={"file": ("s.csv", raw, "text/csv")},
                              timeout=600).json()["job_id"]
        assert wait_job(url, first)["status"] == "succeeded"
        server.terminate()
        server.wait(60)
        env["RESTOCK_LSTM_EPOCHS"] = str(args.epochs)
        server = subprocess.Popen([*restock, "serve", "--port", str(port)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        wait_healthy(url)

        products = sorted({s["product_id"] for s in requests.get(
            url + "/series?limit=1000", timeout=10).json()["items"]})
        forecast_lua, get_lua = work / "forecast.lua", work / "get.lua"
        forecast_lua.write_text(LUA % {"products": ", ".join(f'"{p}"' for p in products)})
        get_lua.write_text(LUA_GET % {"products": ""})
        run_wrk(url + "/", forecast_lua, 3, args.connections)  # warm both workers

        job_id = requests.post(url + "/retrain", timeout=600, files={
            "file": ("big.csv", big_csv.read_bytes(), "text/csv")}).json()["job_id"]
        # measure inside one stage (the long backtest of a bigger catalogue): stages load
        # the cores differently, which would skew a before/after comparison
        while requests.get(f"{url}/jobs/{job_id}", timeout=30).json()["stage"] != "backtest":
            time.sleep(0.5)
        load_before = os.getloadavg()
        base_get = run_wrk(url + "/", get_lua, args.duration, args.connections)
        base_forecast = run_wrk(url + "/", forecast_lua, args.duration, args.connections)

        pids = worker_pids(server.pid)
        before = {pid: rss_and_fds(pid) for pid in pids}
        opened = time.monotonic()
        clients = StreamClients(port, f"/jobs/{job_id}/events", args.streams)
        all_streaming = clients.wait(lambda: all(c.events > 0 for c in clients.clients), 120)
        open_seconds = time.monotonic() - opened
        time.sleep(2)
        after = {pid: rss_and_fds(pid) for pid in pids}
        load_during = os.getloadavg()
        with_get = run_wrk(url + "/", get_lua, args.duration, args.connections)
        with_forecast = run_wrk(url + "/", forecast_lua, args.duration, args.connections)
        job_now = requests.get(f"{url}/jobs/{job_id}", timeout=30).json()
        still_running = f"{job_now['status']}, stage {job_now['stage']}"
        statuses = sorted({c.status for c in clients.clients}, key=str)

        cancelled = requests.delete(f"{url}/jobs/{job_id}", timeout=30).status_code
        ended = clients.wait(lambda: all(c.closed for c in clients.clients), 180)
        got_final = sum(1 for c in clients.clients if c.final is not None)
        finals = sorted({c.final for c in clients.clients}, key=str)
        events = sorted(c.events for c in clients.clients)
    finally:
        if clients is not None:
            clients.stop()
        server.terminate()
        server.wait(60)

    def wrk_row(name: str, r: dict[str, Any]) -> str:
        return (f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['errors']} |")

    mem_rows = []
    for pid in pids:
        d_rss, d_fds = after[pid][0] - before[pid][0], after[pid][1] - before[pid][1]
        per = f"{d_rss / d_fds:.1f}" if d_fds > 0 else "-"
        mem_rows.append(f"| {pid} | {before[pid][0] / 1024:.0f} | {after[pid][0] / 1024:.0f} "
                        f"| {d_fds} | {per} |")
    total_rss = sum(after[p][0] - before[p][0] for p in pids)
    total_fds = sum(after[p][1] - before[p][1] for p in pids)
    ratio = with_forecast["rps"] / base_forecast["rps"]
    report = "\n".join([
        f"# Progress streams benchmark (bench/streams.py), {args.label}", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; load average "
        f"{load_before[0]:.1f} before the streams, {load_during[0]:.1f} with them (the "
        "machine is shared with other work; wrk, the stream clients and the server all run "
        "on its 2 cores).", "",
        "`restock serve` with its defaults (2 gunicorn gthread workers x 8 threads), embedded "
        f"job queue. Data: demo {args.products} products x {args.stores} stores x "
        f"{args.days} days; a first retrain (1 LSTM epoch) gives the model; the streamed "
        f"retrain (an upload of {args.stream_products} products, {args.epochs} LSTM epochs) "
        "runs during every measurement (all taken in its backtest stage, so it loads the "
        "cores the same way throughout) and is cancelled at the end. "
        f"wrk: {args.connections} connections, 2 threads, {args.duration} s per run; `/forecast` rotates over single products, 30 days. "
        f"{args.streams} streams opened on the running retrain from one selector loop "
        f"(`RESTOCK_MAX_STREAMS_PER_CLIENT={args.streams}`: they all come from 127.0.0.1).",
        "",
        "| run (during the retrain) | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
        wrk_row("GET /, no streams", base_get),
        wrk_row(f"GET /, {args.streams} open streams", with_get),
        wrk_row("POST /forecast, no streams", base_forecast),
        wrk_row(f"POST /forecast, {args.streams} open streams", with_forecast), "",
        f"- `POST /forecast` throughput with the streams open: {ratio:.0%} of the figure "
        "without them (goal >= 80%).",
        f"- `GET /` p99 with the streams open: {with_get['p99_ms']:.1f} ms (goal <= 100 ms).",
        f"- Streams: {args.streams} opened in {open_seconds:.1f} s; every one had received "
        f"events before the measurement: {all_streaming}; response statuses {statuses}; the "
        f"retrain was `{still_running}` after the measurements; cancel answered {cancelled}.",
        f"- Final event: {got_final} of {args.streams} streams received it ({finals}); all "
        f"closed by the server afterwards: {ended}. Events per stream: min {events[0]}, "
        f"max {events[-1]}.", "",
        "Memory of the gunicorn workers (RSS) before and after opening the streams; one "
        "descriptor per stream, so the descriptor delta counts each worker's streams:", "",
        "| worker pid | RSS before MiB | RSS after MiB | streams (fd delta) | KiB per stream |",
        "|---|---|---|---|---|",
        *mem_rows, "",
        f"Together: {total_rss / 1024:.1f} MiB for {total_fds} streams = "
        f"{total_rss / max(total_fds, 1):.1f} KiB per stream (goal <= 50 KB), the training "
        "worker's allocations included.", "",
    ])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
