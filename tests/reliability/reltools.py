"""Helpers of the reliability tests: tiny data, a trained home, SSE following, process
resource readings. The real-server machinery is ``webtools.Server`` (tests/web)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import requests

TESTS = Path(__file__).parent.parent
for folder in ("web", "scale"):
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))

from webtools import Server, parse_sse, wait_for  # noqa: E402,F401 - re-exported for the tests

#: what every server and retrain of these tests runs with: seconds, not minutes
FAST_ENV = {"RESTOCK_LSTM_EPOCHS": "1", "RESTOCK_PROPHET_WORKERS": "1",
            "RESTOCK_MAX_HORIZON_DAYS": "60", "RESTOCK_RATELIMIT_DEFAULT": "100000 per minute",
            "RESTOCK_RATELIMIT_RETRAIN": "100000 per minute"}
FAST_SETTINGS = {"lstm_epochs": 1, "prophet_workers": 1, "max_horizon_days": 60}


def root_conftest() -> Any:
    """tests/conftest.py under its own name (``import conftest`` may find another one)."""
    name = "restock_tests_root_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TESTS / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def demo_frame(products: int = 3, stores: int = 2, days: int = 90, seed: int = 3
               ) -> pd.DataFrame:
    from restock.data.demo import generate_demo_sales

    return generate_demo_sales(products=products, stores=stores, days=days, seed=seed)


def to_csv(frame: pd.DataFrame) -> bytes:
    out = frame.copy()
    out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
    return out.to_csv(index=False).encode()


def follow(url: str, job_id: str, until: Any, timeout: float = 300,
           headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Read the job's SSE stream until ``until(data)`` is true for an event's data (then
    return at once: the caller acts while the server is at that point) or the stream ends."""
    response = requests.get(f"{url}/jobs/{job_id}/events", stream=True, timeout=timeout,
                            headers=headers)
    assert response.status_code == 200, response.text
    seen: list[dict[str, Any]] = []
    try:
        for line in response.iter_lines(decode_unicode=True):
            if not line.startswith("data:"):
                continue
            data = json.loads(line[5:])
            seen.append(data)
            if until(data):
                return seen
    finally:
        response.close()
    return seen


def wait_job(url: str, job_id: str, statuses: tuple[str, ...] = ("succeeded", "failed",
             "cancelled"), timeout: float = 300, headers: dict[str, str] | None = None
             ) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = requests.get(f"{url}/jobs/{job_id}", timeout=10, headers=headers).json()
        return job if job["status"] in statuses else None

    return wait_for(done, timeout, f"job {job_id} in {statuses}", interval=0.2)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def resources(pid: int) -> dict[str, int]:
    """RSS (kB), threads and open file descriptors of one process, from /proc."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return {"rss_kb": rss, "threads": threads, "fds": len(os.listdir(f"/proc/{pid}/fd"))}
