"""Progress streams on a real ``restock serve`` do not hold its request threads.

Forty open streams against 2 workers x 2 threads: before, the first four held every
thread until their retrain ended and ``GET /`` waited behind them. The retrains here are
long (a 30 s pause, then 500 LSTM epochs) and only end when the test cancels them, so a server whose streams
hold threads fails these tests at their first request (a generous timeout, not a timing
assertion). The limits and the head (CORS, auth, request id) are checked on the detached
path too.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from webtools import Server, parse_sse, wait_for

pytestmark = pytest.mark.timeout(600)

#: generous: an answer takes milliseconds; only a server out of threads comes near it
PROMPT = 20.0
#: keep each retrain running while the test works with it: it pauses 30 s at its first
#: backtest event (then goes on with 500 epochs); a cancel takes effect at the event after
HOLD = {"RESTOCK_TEST_PAUSE_AT_STAGE": "backtest", "RESTOCK_TEST_PAUSE_SECONDS": "30"}


@pytest.fixture
def home(trained_home: Path, tmp_path: Path) -> Path:
    """A private copy of the session's trained home: forecasts answer from the start."""
    copy = tmp_path / "home"
    shutil.copytree(trained_home, copy, ignore=shutil.ignore_patterns("jobs.lock"))
    return copy


class Reader:
    """One client following a job's events on its own thread, keeping every line."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, args=(url, headers or {}),
                                       daemon=True)
        self.thread.start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            response = requests.get(url, stream=True, timeout=300, headers=headers)
            self.status, self.headers = response.status_code, dict(response.headers)
            for line in response.iter_lines(decode_unicode=True):
                self.lines.append(line)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error

    def events(self) -> list[dict[str, Any]]:
        return [e for e in parse_sse(list(self.lines)) if "event" in e]


def open_raw_stream(server: Server, path: str, headers: dict[str, str]) -> socket.socket:
    """A stream opened on a bare socket, read up to its first event (a tab to close)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode())
    received = b""
    while b"id: 1" not in received:
        data = sock.recv(65536)
        assert data, received
        received += data
    assert received.startswith(b"HTTP/1.1 200 "), received
    return sock


def upload(server: Server, raw: bytes, **kwargs: Any) -> requests.Response:
    return requests.post(server.url + "/retrain", timeout=PROMPT,
                         files={"file": ("sales.csv", raw, "text/csv")}, **kwargs)


@pytest.fixture
def server(home: Path) -> Iterator[Server]:
    running = Server(home, workers=2, threads=2, RESTOCK_LSTM_EPOCHS="500",
                     RESTOCK_RATELIMIT_DEFAULT="100000 per minute", **HOLD)
    yield running
    running.stop()


def test_more_open_streams_than_threads_leave_the_api_answering(server: Server,
                                                                demo_csv: bytes) -> None:
    running = upload(server, demo_csv).json()["job_id"]
    queued = upload(server, demo_csv).json()["job_id"]
    readers = [Reader(f"{server.url}/jobs/{job_id}/events")
               for job_id in [running, queued] * 20]  # 40 streams, 4 request threads
    wait_for(lambda: all(r.events() for r in readers), 60, "every stream's first event")
    assert {r.status for r in readers} == {200}
    # the job runner picks the first job up on its own time: cancel it once it runs
    wait_for(lambda: requests.get(f"{server.url}/jobs/{running}", timeout=PROMPT)
             .json()["status"] == "running", 60, "the first job to start")

    with requests.Session() as session:
        for _ in range(5):
            health = session.get(server.url + "/", timeout=PROMPT)
            assert health.status_code == 200
            forecast = session.post(server.url + "/forecast", timeout=PROMPT,
                                    json={"product_id": "P0001", "days": 7})
            assert forecast.status_code == 200, forecast.text
            assert forecast.json()["model_version"] == health.json()["model_version"]

    assert requests.delete(f"{server.url}/jobs/{queued}", timeout=PROMPT).status_code == 200
    assert requests.delete(f"{server.url}/jobs/{running}", timeout=PROMPT).status_code == 202
    for reader in readers:
        reader.thread.join(120)
        assert not reader.thread.is_alive() and reader.error is None, reader.error
        events = reader.events()
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["event"] == "error" and events[-1]["data"]["code"] == "cancelled"
    log = server.log.read_text()
    assert "Traceback" not in log and "Socket error" not in log, log[-4000:]


def test_detached_streams_keep_auth_cors_and_their_limits(home: Path,
                                                          demo_csv: bytes) -> None:
    token, origin = "s3cret-token", "https://shop.example"
    server = Server(home, workers=1, threads=2, RESTOCK_LSTM_EPOCHS="500",
                    RESTOCK_RATELIMIT_DEFAULT="100000 per minute", RESTOCK_API_TOKENS=token,
                    RESTOCK_CORS_ORIGINS=origin, RESTOCK_MAX_STREAMS_PER_CLIENT="3", **HOLD)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        job_id = upload(server, demo_csv, headers=auth).json()["job_id"]
        url = f"{server.url}/jobs/{job_id}/events"
        denied = requests.get(url, timeout=PROMPT)
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"

        leaving = open_raw_stream(server, f"/jobs/{job_id}/events", auth)
        readers = [Reader(url, {**auth, "Origin": origin, "X-Request-ID": f"stream-{n}"})
                   for n in range(2)]
        wait_for(lambda: all(r.events() for r in readers), 60, "the streams' first event")
        for n, reader in enumerate(readers):
            assert reader.headers["Content-Type"].startswith("text/event-stream")
            assert reader.headers["Access-Control-Allow-Origin"] == origin
            assert reader.headers["X-Request-ID"] == f"stream-{n}"
            assert reader.headers["X-Job-ID"] == job_id
            assert reader.headers["Cache-Control"] == "no-cache"

        crowded = requests.get(url, headers=auth, timeout=PROMPT)
        assert crowded.status_code == 429, crowded.text
        assert crowded.json()["error"]["code"] == "too_many_streams"
        assert "Retry-After" in crowded.headers

        leaving.close()  # the tab is closed: the broadcaster notices and frees its slot

        def admitted() -> Reader | None:
            reader = Reader(url, auth)
            wait_for(lambda: reader.status is not None, PROMPT, "an answer")
            if reader.status == 200:
                return reader
            reader.thread.join(PROMPT)
            return None

        replacement = wait_for(admitted, 30, "a stream admitted after one closed",
                               interval=0.3)
        assert requests.delete(url.removesuffix("/events"), headers=auth,
                               timeout=PROMPT).status_code == 202
        for reader in [*readers, replacement]:
            reader.thread.join(120)
            assert reader.events()[-1]["data"]["code"] == "cancelled"
    finally:
        server.stop()
