"""Cross-site requests and DNS rebinding (issue 11): with no token set, a page of another
origin must not change anything, and the server answers only to its own host names."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from restock.cli.serve import with_bind_host_allowed
from restock.config import Settings
from webtools import csv_upload

EVIL = "http://evil.example"


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return body["error"]


def test_a_foreign_origin_cannot_change_anything(trained_app: Flask) -> None:
    client = trained_app.test_client()
    s = trained_app.extensions["restock"]
    version = s.registry.current()
    rows = s.store.stats()["rows"]
    foreign = {"Origin": EVIL}
    attempts = [
        client.post(f"/models/{version}/activate", headers=foreign),
        client.post("/models/nope/activate", headers=foreign),  # refused before the lookup
        client.post("/retrain", data=csv_upload(), headers=foreign),
        client.delete("/jobs/00000000-0000-0000-0000-000000000000", headers=foreign),
        client.post("/forecast", json={"days": 7, "plot": True}, headers=foreign),
        client.put("/forecast", json={}, headers={"Origin": "null"}),
        client.post("/retrain", data=csv_upload(), headers={"Origin": "http://[::1"}),
        client.post("/retrain", data=csv_upload(), headers={"Sec-Fetch-Site": "cross-site"}),
    ]
    for answer in attempts:
        error = error_of(answer, 403, "cross_origin_refused")
        assert "RESTOCK_CORS_ORIGINS" in error["message"] or "no Origin" in error["message"]
    assert s.store.stats()["rows"] == rows and s.registry.current() == version
    assert not list(s.settings.plots_dir.glob("*.png"))
    # reading is not refused (the browser keeps the answer from a foreign page: no CORS)
    read = client.get("/series", headers=foreign)
    assert read.status_code == 200 and "Access-Control-Allow-Origin" not in read.headers


def test_same_origin_allow_listed_origins_and_clients_without_origin_work(
        make_app: Callable[..., Flask]) -> None:
    planner = "https://planner.example"
    client = make_app(cors_origins=(planner,)).test_client()
    for headers in ({}, {"Origin": "http://localhost"}, {"Origin": planner},
                    {"Origin": planner.upper() + "/"},
                    {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}):
        answer = client.post("/retrain", data=csv_upload(), headers=headers)
        assert answer.status_code == 202, (headers, answer.get_data(as_text=True))
    allowed = client.post("/forecast", json={"days": 7}, headers={"Origin": planner})
    assert allowed.status_code == 409  # past the check: no model yet
    assert allowed.headers["Access-Control-Allow-Origin"] == planner
    # the same host on another port is another origin
    other_port = client.post("/retrain", data=csv_upload(),
                             headers={"Origin": "http://localhost:3000"})
    error_of(other_port, 403, "cross_origin_refused")


def test_only_allowed_host_names_are_answered(client: FlaskClient) -> None:
    for base in ("http://evil.example", "http://evil.example:8000", "http://127.0.0.2",
                 "http://localhost.evil.example"):
        for path in ("/data/export.csv", "/", "/no/such/page"):
            error = error_of(client.get(path, base_url=base), 400, "disallowed_host")
            assert "RESTOCK_ALLOWED_HOSTS" in error["message"]
    for base in ("http://localhost", "http://LOCALHOST:5000", "http://127.0.0.1:8000",
                 "http://[::1]:8000"):
        assert client.get("/series", base_url=base).status_code == 200, base
    # liveness answers any name: probes address a container by its IP
    assert client.get("/healthz", base_url="http://10.1.2.3:8000").status_code == 200


def test_allowed_hosts_setting_names_subdomains_and_star(
        make_app: Callable[..., Flask]) -> None:
    client = make_app(allowed_hosts=(".example.com", "planner.test")).test_client()
    for base, status in (("http://example.com", 200), ("http://api.example.com:8000", 200),
                         ("http://planner.test", 200), ("http://badexample.com", 400),
                         ("http://localhost", 400)):
        assert client.get("/series", base_url=base).status_code == status, base
    anyone = make_app(allowed_hosts=("*",)).test_client()
    assert anyone.get("/series", base_url="http://whatever.example").status_code == 200


def test_serve_adds_its_bind_host_to_the_default(caplog: pytest.LogCaptureFixture) -> None:
    default = Settings.from_env({"home": "h"}, environ={})
    assert set(with_bind_host_allowed(default, "10.0.0.5").allowed_hosts) == {
        "localhost", "127.0.0.1", "::1", "10.0.0.5"}
    explicit = default.with_overrides(allowed_hosts=("shop.example",))
    assert with_bind_host_allowed(explicit, "10.0.0.5").allowed_hosts == ("shop.example",)
    with caplog.at_level(logging.WARNING, logger="restock.serve"):
        assert with_bind_host_allowed(default, "0.0.0.0").allowed_hosts == ()
    assert "RESTOCK_ALLOWED_HOSTS" in caplog.text
    env = Settings.from_env(environ={"RESTOCK_ALLOWED_HOSTS": "a.example, .b.example"})
    assert env.allowed_hosts == ("a.example", ".b.example")
