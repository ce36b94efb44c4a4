"""A real ``restock serve`` (gunicorn, 2 workers) read by a real HTTP client.

Covers what the test client cannot: SSE through gunicorn (heartbeats, reconnect with
Last-Event-ID), a real retrain end to end, cancellation, zero-downtime model swaps while
requests keep coming, and chunked uploads over the size limit.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from restock.data.demo import write_demo_csv
from webtools import Server, free_port, parse_sse, wait_for  # noqa: F401 - names kept for importers

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "home", RESTOCK_MAX_UPLOAD_MB="1",
                     RESTOCK_RATELIMIT_DEFAULT="100000 per minute")
    yield running
    running.stop()


def read_events(response: requests.Response, stop_after: int | None = None
                ) -> list[dict[str, Any]]:
    """Parse an SSE response line by line; stop early after ``stop_after`` events."""
    lines: list[str] = []
    seen = 0
    for line in response.iter_lines(decode_unicode=True):
        lines.append(line)
        if line.startswith("id:"):
            seen += 1
        if stop_after is not None and line == "" and seen >= stop_after:
            break
    response.close()
    return parse_sse(lines)


def only_events(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in items if "event" in e]


def upload(server: Server, raw: bytes, **kwargs: Any) -> requests.Response:
    return requests.post(server.url + "/retrain", files={"file": ("sales.csv", raw, "text/csv")},
                         timeout=60, **kwargs)


def test_retrain_stream_resume_heartbeat_and_zero_downtime(server: Server,
                                                           demo_csv: bytes) -> None:
    # 1. a streamed retrain (the seed's behaviour): POST with Accept: text/event-stream,
    #    read a few events, drop the connection, resume from the last id seen
    first = upload(server, demo_csv, headers={"Accept": "text/event-stream"}, stream=True)
    assert first.status_code == 200
    job_id = first.headers["X-Job-ID"]
    head = only_events(read_events(first, stop_after=3))
    assert [e["id"] for e in head] == [1, 2, 3]
    resumed = requests.get(f"{server.url}/jobs/{job_id}/events", stream=True, timeout=300,
                           headers={"Last-Event-ID": str(head[-1]["id"])})
    tail = only_events(read_events(resumed))
    events = head + tail
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["event"] == "done", events[-1]
    stages = [e["data"].get("stage") for e in events[:-1]]
    assert stages[0] == "queued" and "lstm" in stages and stages[-1] == "done"
    done = events[-1]["data"]
    version_one = done["model_version"]
    assert done["metrics"]
    assert requests.get(server.url + "/", timeout=5).json()["model_version"] == version_one

    # 2. a second retrain while clients keep forecasting: every answer is a 200, from the
    #    old version while the new one trains, from the new one once it is active, and no
    #    client ever goes back to the old version after the new one answered
    answers: list[tuple[float, float, int, str | None]] = []  # (start, end, status, version)
    stop = threading.Event()

    def hammer() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                started = time.monotonic()
                r = session.post(server.url + "/forecast", json={"product_id": "P0001",
                                                                 "days": 7}, timeout=30)
                body = r.json()
                answers.append((started, time.monotonic(), r.status_code,
                                body.get("model_version")))

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        accepted = upload(server, demo_csv)
        assert accepted.status_code == 202
        second_id = accepted.json()["job_id"]
        # 3. a job queued behind it idles: its stream carries heartbeat comments only
        third_id = upload(server, demo_csv).json()["job_id"]
        idle = requests.get(f"{server.url}/jobs/{third_id}/events", stream=True, timeout=30)
        lines = []
        for line in idle.iter_lines(decode_unicode=True):
            lines.append(line)
            if sum(1 for x in lines if x.startswith(":")) >= 2:
                break
        idle.close()
        parsed = parse_sse(lines)
        assert [e["data"]["stage"] for e in only_events(parsed)] == ["queued"]
        assert sum(1 for e in parsed if e.get("comment") == "heartbeat") >= 2
        cancelled = requests.delete(f"{server.url}/jobs/{third_id}", timeout=10)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

        stream = requests.get(f"{server.url}/jobs/{second_id}/events", stream=True,
                              timeout=300)
        lines, read_at = [], []  # when each event's data line arrived
        for line in stream.iter_lines(decode_unicode=True):
            lines.append(line)
            if line.startswith("data:"):
                read_at.append(time.monotonic())
        second = only_events(parse_sse(lines))
        assert len(second) == len(read_at)
        assert second[-1]["event"] == "done", second[-1]
        version_two = second[-1]["data"]["model_version"]
        training_seen = next(t for e, t in zip(second, read_at) if e["data"].get("stage") == "lstm")
        done_seen = read_at[-1]
        time.sleep(1.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert version_two != version_one
    assert [a for a in answers if a[2] != 200] == []
    assert {a[3] for a in answers} <= {version_one, version_two}
    # the old version answered while the new one trained (the pointer moves only after the
    # 'lstm' stage), every request sent after the 'done' event got the new one...
    assert {a[3] for a in answers if a[0] > training_seen and a[1] < done_seen} >= {version_one}
    assert {a[3] for a in answers if a[0] > done_seen} == {version_two}
    # ...and none sent after the first answer of the new version got the old one back
    first_new = min(end for _, end, _, version in answers if version == version_two)
    assert [a for a in answers if a[3] == version_one and a[0] > first_new] == []


def test_cancel_a_running_retrain_over_http(server: Server, demo_csv: bytes) -> None:
    job_id = upload(server, demo_csv).json()["job_id"]
    stream = requests.get(f"{server.url}/jobs/{job_id}/events", stream=True, timeout=300)
    lines = stream.iter_lines(decode_unicode=True)
    seen: list[str] = []
    for line in lines:
        seen.append(line)
        if '"stage":"backtest"' in line:
            break
    response = requests.delete(f"{server.url}/jobs/{job_id}", timeout=10)
    assert response.status_code == 202
    seen.extend(lines)  # the same stream goes on to its final event
    events = only_events(parse_sse(seen))
    assert events[-1]["event"] == "error" and events[-1]["data"]["code"] == "cancelled"
    job = requests.get(f"{server.url}/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "cancelled" and job["model_version"] is None
    health = requests.get(server.url + "/", timeout=10).json()
    assert health["model_version"] is None  # current untouched
    assert requests.get(server.url + "/models", timeout=10).json()["items"] == []


def test_chunked_upload_over_the_limit_is_a_413(server: Server) -> None:
    boundary = "restockboundary"

    def body() -> Iterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n"
               "date,product_id,quantity\r\n").encode()
        for _ in range(300):  # ~3 MB, no Content-Length: the limit is 1 MB
            yield b"2024-01-01,p1,1\r\n" * 600
        yield f"\r\n--{boundary}--\r\n".encode()

    response = requests.post(server.url + "/retrain", data=body(), timeout=30, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    # a declared length over the limit is refused before any of the body is read
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall((f"POST /retrain HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/"
                      f"form-data; boundary={boundary}\r\nContent-Length: {5 << 20}\r\n"
                      "Connection: close\r\n\r\n--restock").encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        reply = b"".join(chunks).decode("latin-1")
    assert reply.startswith("HTTP/1.1 413") and '"payload_too_large"' in reply
    assert requests.get(server.url + "/series", timeout=10).json()["total"] == 0


def raw_reply(port: int, data: bytes) -> tuple[str, dict[str, str], str]:
    """Send bytes as they are; (status line, headers, body) of the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).decode("latin-1").partition("\r\n\r\n")
    status, *lines = head.split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


@pytest.mark.parametrize("garbage, status", [
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
    (b"complete nonsense\r\n\r\n", 400),
    (b"GET / HTTP/7.1\r\nHost: x\r\n\r\n", 400),
    (b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
])
def test_malformed_http_refused_by_gunicorn_gets_the_json_error_shape(
        server: Server, garbage: bytes, status: int) -> None:
    line, headers, body = raw_reply(server.port, garbage)
    assert line.startswith(f"HTTP/1.1 {status} "), (line, body)
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body.encode("latin-1"))
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"} and error["message"], error
    assert error["code"] == {400: "bad_request", 414: "uri_too_long"}[status]
    assert requests.get(server.url + "/healthz", timeout=10).ok


def test_a_retrain_with_process_pools_completes_inside_the_server(tmp_path: Path) -> None:
    """statsforecast's pools start from the fork server: a fork of the threaded, torch-
    loaded web worker left a retrain of 30 series hanging in its AutoCES backtest."""
    path = tmp_path / "many.csv"
    write_demo_csv(path, products=24, stores=1, days=90, seed=2)  # 25 series: pools on
    server = Server(tmp_path / "home", RESTOCK_PROPHET_WORKERS="2")
    try:
        job = upload(server, path.read_bytes()).json()["job_id"]
        ended = wait_for(
            lambda: (requests.get(f"{server.url}/jobs/{job}", timeout=10).json()["status"]
                     in ("succeeded", "failed", "cancelled")) or None,
            500, "the retrain to end")
        assert ended
        state = requests.get(f"{server.url}/jobs/{job}", timeout=10).json()
        assert state["status"] == "succeeded", state
    finally:
        server.stop()
