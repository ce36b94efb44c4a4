"""The frontend's mock API (frontend/mock/server.mjs) held to the real server's contract.

The mock lets the UIs be worked on without Python, so nothing else would notice it drifting
from the API (it once sent ``stockout_within_lead_time`` where the server says
``stockout_before_lead_time``). A walk through every mock route checks each answer against
what the server's /openapi.json declares for that route and status: a status the server
never answers there fails, and the body must validate against the pydantic model the
document names. Every warning the mock sends must be a code the server emits, with the
server's severity. Needs node; skipped without it (fails under RESTOCK_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import socket
import subprocess
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from restock import inventory
from restock.serving.plans import COLUMNS as PLAN_COLUMNS
from restock.web import schemas
from tests.conftest import service_unavailable

ROOT = Path(__file__).resolve().parents[2]
MOCK = ROOT / "frontend" / "mock" / "server.mjs"
SERVER_SOURCE = ROOT / "src" / "restock"


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """The mock on a free port, training fast (MOCK_SPEED=2 ms between events)."""
    node = shutil.which("node")
    if node is None:
        service_unavailable("node (to run frontend/mock/server.mjs)", FileNotFoundError("node"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([node, str(MOCK), str(port)], env={**os.environ, "MOCK_SPEED": "2"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # printed once the mock listens
    if "mock restock API" not in first:
        proc.kill()
        pytest.fail(f"the mock did not start: {first}{proc.stdout.read()}")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


class Contract:
    """What /openapi.json declares: per route and method, the statuses and their body models."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.routes = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
                       for path in doc["paths"]]

    def check(self, method: str, url: str, answer: requests.Response) -> Any:
        """Fail unless the server could give this answer; returns the parsed body."""
        path = "/" + url.split("/", 3)[3].split("?")[0]
        template = next((t for pattern, t in self.routes if pattern.match(path)), None)
        assert template, f"the mock serves {method} {path}, which the server does not have"
        operation = self.doc["paths"][template].get(method.lower())
        assert operation, f"the mock answers {method} {path}; the server has no {method} there"
        declared = operation["responses"].get(str(answer.status_code))
        assert declared, (f"the mock answers {method} {path} with {answer.status_code}; the "
                          f"server declares {sorted(operation['responses'])}")
        content = declared.get("content", {})
        if "application/json" not in content:
            return None
        assert answer.headers["Content-Type"].startswith("application/json"), answer.headers
        ref = content["application/json"]["schema"]["$ref"]
        model = getattr(schemas, ref.rsplit("/", 1)[1].split(".")[0])
        body = answer.json()
        model.model_validate(body)  # raises, naming the field, when the shapes differ
        return body


@pytest.fixture
def contract(client: FlaskClient) -> Contract:
    return Contract(client.get("/openapi.json").get_json())


def server_warnings() -> set[tuple[str, str]]:
    """Every (code, severity) the server's source can emit: each call whose first two
    arguments are a snake_case literal and a literal severity (``make_warning`` and its
    aliases), wherever the warnings module lives."""
    severities = set(typing.get_args(inventory.Severity))
    found = set()
    for source in SERVER_SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Call) and len(node.args) >= 2:
                code, severity = node.args[0], node.args[1]
                if (isinstance(code, ast.Constant) and isinstance(code.value, str)
                        and re.fullmatch(r"[a-z]+(_[a-z]+)+", code.value)
                        and isinstance(severity, ast.Constant) and severity.value in severities):
                    found.add((code.value, severity.value))
    return found


def test_the_scan_finds_the_servers_warnings() -> None:
    found = server_warnings()
    assert {("stockout_before_lead_time", "critical"), ("below_reorder_point", "warning"),
            ("short_history", "warning")} <= found, found


def follow_events(mock_url: str, events_url: str) -> list[tuple[str, dict[str, Any]]]:
    """The job's stream until its terminal event, as (type, data)."""
    events: list[tuple[str, dict[str, Any]]] = []
    with requests.get(mock_url + events_url, stream=True, timeout=30,
                      headers={"Accept": "text/event-stream"}) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        for block in stream.iter_content(chunk_size=None, decode_unicode=True):
            for raw in block.split("\n\n"):
                fields = dict(line.split(": ", 1) for line in raw.splitlines() if ": " in line)
                if "event" in fields:
                    events.append((fields["event"], json.loads(fields["data"])))
            if events and events[-1][0] in ("done", "error"):
                break
    return events


def test_every_mock_answer_is_one_the_server_declares(mock_url: str, contract: Contract) -> None:
    def call(method: str, path: str, **kwargs: Any) -> Any:
        answer = requests.request(method, mock_url + path, timeout=30, **kwargs)
        return answer.status_code, contract.check(method, answer.url, answer)

    assert call("GET", "/")[0] == 200
    status, page = call("GET", "/series?limit=5&offset=0")
    assert status == 200 and page["items"]
    # every filter combination the UIs send, and the errors the mock fakes
    for body in ({}, {"product_id": "P1", "store_id": "S1", "days": 14, "plot": True},
                 {"product_id": "P2", "on_hand": 0, "lead_time_days": 20},
                 {"category": "drinks", "service_level": 0.99, "on_hand": 10_000}):
        assert call("POST", "/forecast", json=body)[0] == 200
    assert call("POST", "/forecast", json={"product_id": "P6", "store_id": "S2"})[0] == 404
    assert call("POST", "/forecast", data="{", headers={"Content-Type": "application/json"}
                )[0] == 400

    # the accuracy panel's selections: scored, nothing scored yet, an unknown id
    for query in ("", "?product_id=P1&store_id=S1", "?store_id=S2&category=drinks"):
        status, report = call("GET", "/accuracy" + query)
        assert status == 200 and report["versions"][0]["points"], query
    assert call("GET", "/accuracy?category=snacks")[1]["error"]["code"] == "no_scores"
    assert call("GET", "/accuracy?product_id=P9")[0] == 404

    # the simulation section's selections and the errors it shows plainly
    for body in ({}, {"product_id": "P1", "service_level": 0.9, "plot": True},
                 {"category": "drinks", "unit_cost": 2.5, "lead_time_std_days": 1}):
        status, report = call("POST", "/simulate", json=body)
        assert status == 200 and set(report["total"]) == {"restock", "seed", "min_max"}, body
    assert call("POST", "/simulate", json={"category": "snacks"})[1]["error"]["code"] == "no_backtest"
    assert call("POST", "/simulate", json={"lead_time_days": 30})[0] == 400
    assert call("POST", "/simulate", json={"product_id": "P9"})[0] == 404

    # the plan table's selections (JSON and its CSV download) and the errors it shows plainly
    for query in ("", "?store_id=S1&days=14&service_level=0.9", "?category=drinks&category=snacks"):
        status, answer = call("GET", "/plan" + query)
        assert status == 200 and answer is None, query  # the server declares no model for 200
        rows = requests.get(mock_url + "/plan" + query, timeout=30).json()["rows"]
        assert list(rows[0]) == list(PLAN_COLUMNS), query
        urgent = [row["order_now"] is True for row in rows]
        assert urgent == sorted(urgent, reverse=True), query  # order-now rows first
        download = requests.get(mock_url + "/plan" + query, params={"format": "csv"}, timeout=30)
        assert download.headers["Content-Type"].startswith("text/csv"), query
        assert download.text.splitlines()[0] == ",".join(PLAN_COLUMNS)
        assert len(download.text.splitlines()) == len(rows) + 1
    assert call("GET", "/plan?product_id=P9")[0] == 404
    assert call("GET", "/plan?lead_time_days=0")[0] == 422

    csv = b"date,product_id,quantity\n2024-01-01,P1,3\n"
    assert call("POST", "/retrain", files={"file": ("sales.xlsx", csv)})[0] == 415
    assert call("POST", "/retrain", files={"file": ("bad.csv", csv)})[0] == 422
    status, accepted = call("POST", "/retrain", files={"file": ("sales.csv", csv)})
    assert status == 202
    assert call("GET", accepted["status_url"])[0] == 200
    events = follow_events(mock_url, accepted["events_url"])
    assert events[-1][0] == "done", events[-3:]
    deadline = time.monotonic() + 30  # the job's status follows its last event
    while call("GET", accepted["status_url"])[1]["status"] != "succeeded":
        assert time.monotonic() < deadline, "the mock's job never reported succeeded"
        time.sleep(0.05)
    assert call("DELETE", accepted["status_url"])[0] == 409  # already finished
    assert call("GET", "/jobs/nope")[0] == 404

    status, cancelled = call("POST", "/retrain", files={"file": ("sales.csv", csv)})
    assert call("DELETE", cancelled["status_url"])[0] == 202
    assert follow_events(mock_url, cancelled["events_url"])[-1] == (
        "error", {"code": "cancelled", "message": "Cancelled by request"})


def test_every_warning_the_mock_sends_is_one_the_server_emits(mock_url: str) -> None:
    emitted = server_warnings()
    sent = set()
    for body in ({}, {"on_hand": 0, "lead_time_days": 30}, {"on_hand": 1e6},
                 {"product_id": "P2", "store_id": "S1", "on_hand": 0}):  # moq and case pack
        answer = requests.post(mock_url + "/forecast", json=body, timeout=30).json()
        sent |= {(w["code"], w["severity"]) for w in answer["warnings"]}
    for query in ("", "?store_id=S2"):
        answer = requests.get(mock_url + "/accuracy" + query, timeout=30).json()
        sent |= {(w["code"], w["severity"]) for w in answer["warnings"]}
    assert sent, "the mock sends no warnings to check"
    assert {"order_raised_to_moq", "order_rounded_to_multiple"} <= {code for code, _ in sent}
    assert sent <= emitted, f"the server never emits {sorted(sent - emitted)}"
    # a plan row's warnings are codes only: each must be one the server emits
    rows = requests.get(mock_url + "/plan?product_id=P2", timeout=30).json()["rows"]
    codes = {code for row in rows for code in row["warnings"]}
    assert "order_raised_to_moq" in codes, codes
    assert codes <= {code for code, _ in emitted}, codes - {code for code, _ in emitted}
