"""Helpers shared by the web tests: uploads, a driveable job body, SSE parsing."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

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
