"""Helpers shared by the web tests: uploads, a driveable job body, SSE parsing."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests
from flask.testing import FlaskClient

GOOD_CSV = b"date,product_id,store_id,quantity\n2024-01-01,p1,s1,3\n2024-01-02,p1,s1,4\n"


def csv_upload(raw: bytes = GOOD_CSV, name: str = "sales.csv",
               mimetype: str = "text/csv", **fields: str) -> dict[str, Any]:
    return {"file": (io.BytesIO(raw), name, mimetype), **fields}


class StepTask:
    """A job body the test drives: emits a progress event per step until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[dict[str, Any]] = []

    def __call__(self, params: dict[str, Any], on_event: Callable[[dict], None]) -> dict:
        self.calls.append(params)
        on_event({"stage": "validate", "progress": 0.05, "message": "checking"})
        while not self.release.wait(0.02):
            on_event({"stage": "lstm", "progress": 0.5, "message": "epoch", "epoch": 1})
        on_event({"stage": "done", "progress": 1.0, "message": "done"})
        return {"model_version": "v-test", "metrics": {"ensemble": {"mase": 0.8}}}


def parse_sse(lines: Iterable[str]) -> list[dict[str, Any]]:
    """SSE text lines -> [{id, event, data}] plus {"comment": ...} for heartbeats."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if current:
                out.append(current)
            current = {}
        elif line.startswith(":"):
            out.append({"comment": line[1:].strip()})
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            current[field] = json.loads(value) if field == "data" else \
                (int(value) if field in ("id", "retry") else value)
    if current:
        out.append(current)
    return out


def wait_job(client: FlaskClient, job_id: str, status: str | tuple[str, ...],
             timeout: float = 10.0, headers: dict[str, str] | None = None) -> dict[str, Any]:
    wanted = (status,) if isinstance(status, str) else status
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/jobs/{job_id}", headers=headers).get_json()
        if body["status"] in wanted:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stayed {body['status']}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started with ``start_new_session`` and everything in its group
    (pool children, fork servers), once: after that the group's id is free, and with pids
    wrapping at 32,768 here (cmdstan starts one process per Prophet fit) a second
    ``killpg`` could hit a newer test server that was given the same number."""
    if getattr(process, "group_killed", False):
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(30)
    process.group_killed = True  # type: ignore[attr-defined]


class Server:
    """A real ``restock serve`` subprocess (gunicorn) over ``home``, up when built.

    It runs in a session of its own, so ``kill()`` (SIGKILL) reaches the master, its
    workers and their Prophet pool at once, as a power cut or the OOM killer would; tests
    must call ``stop()`` (or ``kill()``) in teardown. ``env`` adds ``RESTOCK_*`` variables.
    """

    def __init__(self, home: Path, *, workers: int = 2, threads: int = 6,
                 heartbeat: float = 0.3, access_log: bool = False, **env: str) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / f"serve-{self.port}.log"
        environ = {**os.environ, "RESTOCK_LSTM_EPOCHS": "2", "RESTOCK_PROPHET_WORKERS": "1",
                   **env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "restock", "--home", str(home), "serve", "--port",
             str(self.port), "--workers", str(workers), "--threads", str(threads),
             "--heartbeat", str(heartbeat), *(["--access-log"] if access_log else [])],
            env=environ, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("server did not start:\n" + self.log.read_text())
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the whole process group (master, workers, pool children)."""
        kill_group(self.process)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # whatever is left of the group (a worker stuck in a retrain)


#: the head the broadcaster tests hand over with each socket pair
HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"


class SocketClient:
    """The far end of a detached connection: reads until the server closes it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while chunk_ := self.sock.recv(65536):
            self.data += chunk_

    def body(self) -> tuple[bytes, bool]:
        """The de-chunked body and whether the last (zero) chunk arrived."""
        head, _, rest = self.data.partition(b"\r\n\r\n")
        assert head + b"\r\n\r\n" == HEAD
        body = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                return body, rest == b"\r\n"
            body += rest[:size]
            assert rest[size:size + 2] == b"\r\n"
            rest = rest[size + 2:]
        return body, False

    def events(self) -> list[dict]:
        body, ended = self.body()
        assert ended, "the stream must end with the last chunk"
        return parse_sse(body.decode().split("\n"))


def connect(broadcaster: Any, slots: Any, job_id: str, after_id: int = 0,
            finished: bool = False, client: str = "c") -> SocketClient:
    """A socket pair handed to ``broadcaster`` as a detached stream; its client end."""
    from restock.web.broadcast import Handoff, chunk

    server_side, client_side = socket.socketpair()
    broadcaster.add(Handoff(server_side, HEAD + chunk("retry: 2000\n\n"), job_id, after_id,
                            finished, slots.acquire(client)))
    return SocketClient(client_side)
