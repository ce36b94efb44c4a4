"""Soak (slow): mixed traffic against a real ``restock serve`` for RESTOCK_SOAK_SECONDS
(default 600): forecasts, series listings, health, and two retrains. Zero errors; the
gunicorn master's and workers' RSS grows under 10%, and their threads and open file
descriptors do not grow (read from /proc)."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from reltools import FAST_ENV, Server, demo_frame, resources, to_csv, wait_job

SOAK_SECONDS = float(os.environ.get("RESTOCK_SOAK_SECONDS", "600"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(SOAK_SECONDS) + 900)]


def snapshot(server: Server) -> dict[int, dict[str, int]]:
    """The master and its gunicorn workers (the Prophet pool's short-lived children
    excluded: they come and go with retrains)."""
    master = server.pid
    workers = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    cmdline = handle.read()
            except OSError:
                continue
            if int(fields[1]) == master and b"restock" in cmdline:
                workers.append(int(entry))
    return {pid: resources(pid) for pid in [master, *workers]}


def retrain(server: Server, seed: int) -> str:
    raw = to_csv(demo_frame(seed=seed))
    answer = requests.post(server.url + "/retrain", timeout=60,
                           files={"file": ("soak.csv", raw, "text/csv")})
    assert answer.status_code == 202, answer.text
    job = wait_job(server.url, answer.json()["job_id"], timeout=600)
    assert job["status"] == "succeeded", job
    return job["model_version"]


def test_soak_mixed_traffic(trained_copy: tuple[Path, str], tmp_path: Path) -> None:
    home, _ = trained_copy
    server = Server(home, workers=2, threads=6, **FAST_ENV)
    errors: list[str] = []
    counts = {"forecast": 0, "series": 0, "health": 0}
    latencies: list[float] = []
    stop = threading.Event()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with requests.Session() as session:
            while not stop.is_set():
                kind = rng.choice(["forecast", "forecast", "series", "health"])
                started = time.perf_counter()
                try:
                    if kind == "forecast":
                        body: dict[str, Any] = {"days": rng.choice([7, 14, 30, 60]),
                                                "product_id": rng.choice(["P0001", "P0002",
                                                                          "P0003"])}
                        if rng.random() < 0.5:
                            body["store_id"] = rng.choice(["S01", "S02"])
                        if rng.random() < 0.1:
                            body["plot"] = True
                        r = session.post(server.url + "/forecast", json=body, timeout=60)
                    elif kind == "series":
                        r = session.get(server.url + "/series", timeout=60,
                                        params={"limit": rng.randint(1, 10)})
                    else:
                        r = session.get(server.url + "/", timeout=60)
                    if r.status_code != 200:
                        errors.append(f"{kind} {r.status_code} {r.text[:200]}")
                except requests.RequestException as error:
                    errors.append(f"{kind} {error!r}")
                latencies.append(time.perf_counter() - started)
                counts[kind] += 1

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        retrain(server, seed=21)  # first retrain: warms imports, torch, Prophet
        time.sleep(5)
        baseline = snapshot(server)
        started = time.monotonic()
        second_at = started + SOAK_SECONDS / 3
        second_done = False
        while time.monotonic() - started < SOAK_SECONDS:
            if not second_done and time.monotonic() >= second_at:
                retrain(server, seed=22)
                second_done = True
            time.sleep(1)
        if not second_done:
            retrain(server, seed=22)
        stop.set()
        for thread in threads:
            thread.join(60)
        time.sleep(2)
        final = snapshot(server)
    finally:
        stop.set()
        server.stop()
    total = sum(counts.values())
    latencies.sort()
    report = {
        "seconds": SOAK_SECONDS, "requests": total, "errors": len(errors), **counts,
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1),
        "processes": {pid: {"before": baseline[pid], "after": final.get(pid)}
                      for pid in baseline},
    }
    print(f"\nsoak: {report}")
    (tmp_path.parent / "soak-report.txt").write_text(repr(report))
    assert errors == [], errors[:10]
    assert set(final) == set(baseline), "a gunicorn worker was replaced (crash or timeout)"
    for pid, before in baseline.items():
        after = final[pid]
        assert after["rss_kb"] < before["rss_kb"] * 1.10, (pid, before, after)
        assert after["threads"] <= before["threads"] + 2, (pid, before, after)
        assert after["fds"] <= before["fds"] + 3, (pid, before, after)
