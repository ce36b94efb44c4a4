"""Scale-out topologies from real processes: ``restock serve`` and ``restock worker``
subprocesses over the real Redis (broker, result backend, progress streams, rate limits).

Each topology gets its own home (SQLite file or a PostgreSQL schema, models folder) and its
own Redis key prefix (``RESTOCK_REDIS_PREFIX``), so test runs sharing one Redis never see
each other's queues, streams or locks; the prefix's keys are deleted at teardown. Every
process started here is killed in teardown, whatever the test did.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import redis
import requests

TESTS = Path(__file__).parent.parent
sys.path.insert(0, str(TESTS / "web"))  # webtools: the SSE parser of the web tests
from webtools import parse_sse  # noqa: E402


def _root_conftest() -> Any:
    """tests/conftest.py under its own name: ``import conftest`` may find another folder's."""
    spec = importlib.util.spec_from_file_location("restock_tests_root_conftest",
                                                  TESTS / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ROOT = _root_conftest()
if str(Path(__file__).parent.parent / "web") not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent.parent / "web"))
from webtools import free_port, kill_group, wait_for  # noqa: E402,F401 - shared with tests/web
REDIS_URL: str = _ROOT.REDIS_URL
service_unavailable = _ROOT.service_unavailable  # skip here, fail in CI


class Topology:
    """One deployment: a home, a Redis prefix, and the processes started over them."""

    def __init__(self, root: Path, redis_client: redis.Redis, **env: str) -> None:
        self.root = root
        self.home = root / "home"
        self.prefix = "restock-test-" + uuid.uuid4().hex[:10]
        self.redis = redis_client
        self.env = {**os.environ, "RESTOCK_HOME": str(self.home), "RESTOCK_QUEUE": "celery",
                    "RESTOCK_REDIS_URL": REDIS_URL, "RESTOCK_REDIS_PREFIX": self.prefix,
                    "RESTOCK_LSTM_EPOCHS": "2", "RESTOCK_PROPHET_WORKERS": "1",
                    "RESTOCK_RATELIMIT_DEFAULT": "100000 per minute", **env}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.url = ""
        self.server_log = root / "serve.log"

    def _start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        # a session of its own: teardown (and the kill -9 test) can kill the whole tree
        process = subprocess.Popen([sys.executable, "-m", "restock", *args], env=self.env,
                                   stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def start_server(self, workers: int = 2) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        process = self._start(["serve", "--port", str(port), "--workers", str(workers),
                               "--threads", "6", "--heartbeat", "0.3", "--access-log"],
                              self.server_log)

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError("server died:\n" + self.server_log.read_text())
            try:
                return requests.get(self.url + "/healthz", timeout=5).ok
            except requests.RequestException:
                return False

        wait_for(up, 60, "restock serve")

    def start_worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        log = self.root / f"worker-{len(self.processes)}.log"
        process = self._start(["worker", "--concurrency", str(concurrency)], log)
        wait_for(lambda: b" ready." in log.read_bytes() or process.poll() is not None, 60,
                 "restock worker")
        assert process.poll() is None, log.read_text()
        return process

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process and everything it started (``webtools.kill_group``)."""
        kill_group(process)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                pass
            self.kill(process)
        keys = list(self.redis.scan_iter(match=self.prefix + ":*", count=1000))
        if keys:
            self.redis.delete(*keys)

    # -- HTTP helpers ------------------------------------------------------------------

    def upload(self, raw: bytes, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + "/retrain", timeout=60,
                             files={"file": ("sales.csv", raw, "text/csv")}, **kwargs)

    def job(self, job_id: str) -> dict[str, Any]:
        return requests.get(f"{self.url}/jobs/{job_id}", timeout=10).json()

    def current_version(self) -> str | None:
        return requests.get(self.url + "/", timeout=10).json()["model_version"]

    def wait_job(self, job_id: str, statuses: tuple[str, ...], timeout: float = 300
                 ) -> dict[str, Any]:
        return wait_for(lambda: (job := self.job(job_id))["status"] in statuses and job,
                        timeout, f"job {job_id} in {statuses}", interval=0.2)


def read_events(response: requests.Response, stop_after: int | None = None,
                stop_at: str | None = None) -> list[dict[str, Any]]:
    """SSE events of a streamed response; stop after ``stop_after`` events or at the first
    data line containing ``stop_at``; heartbeat comments are dropped."""
    lines: list[str] = []
    seen = 0
    for line in response.iter_lines(decode_unicode=True):
        lines.append(line)
        seen += line.startswith("id:")
        if line == "" and stop_after is not None and seen >= stop_after:
            break
        if stop_at is not None and line.startswith("data:") and stop_at in line:
            lines.append("")
            break
    response.close()
    return [e for e in parse_sse(lines) if "event" in e]
