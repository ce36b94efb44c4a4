"""Every error path answers the one JSON shape with its status; auth, limits, CORS, headers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from webtools import GOOD_CSV, csv_upload


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "/work/" not in text and "<html" not in text.lower()
    return body["error"]


@pytest.mark.parametrize("method, path, kwargs, status, code", [
    ("post", "/forecast", {"data": "{not json", "content_type": "application/json"},
     400, "bad_request"),
    ("get", "/jobs/x/events", {"headers": {"Last-Event-ID": "abc"}}, 400, "invalid_parameter"),
    ("get", "/no/such/page", {}, 404, "not_found"),
    ("get", "/jobs/00000000-0000-0000-0000-000000000000", {}, 404, "job_not_found"),
    ("delete", "/jobs/00000000-0000-0000-0000-000000000000", {}, 404, "job_not_found"),
    ("get", "/jobs/nope/events", {}, 404, "job_not_found"),
    ("get", "/plots/../../etc/passwd.png", {}, 404, "not_found"),
    ("get", "/plots/0123456789abcdef0123456789abcdef.png", {}, 404, "plot_not_found"),
    ("post", "/models/nope/activate", {}, 404, "model_not_found"),
    ("delete", "/", {}, 405, "method_not_allowed"),
    ("get", "/retrain", {}, 405, "method_not_allowed"),
    ("post", "/forecast", {"json": {}}, 409, "no_model"),
    ("post", "/forecast", {"data": "days=3", "content_type": "text/plain"},
     415, "unsupported_media_type"),
    ("post", "/retrain", {"json": {"file": "x"}}, 415, "unsupported_media_type"),
    ("post", "/retrain", {"data": csv_upload(b"PK\x03\x04zip", "sales.xlsx",
                                             "application/octet-stream")},
     415, "unsupported_media_type"),
    ("post", "/retrain", {"data": csv_upload(b"\x1f\x8b\x08\x00gzipped", "sales.csv")},
     415, "unsupported_file"),
    ("post", "/retrain", {"data": {"weights": "auto"}}, 422, "invalid_request"),
    ("post", "/retrain", {"data": csv_upload(weights="heavy")}, 422, "invalid_request"),
    ("post", "/forecast", {"json": {"days": 3, "periods": 2}}, 422, "invalid_request"),
    ("post", "/forecast", {"json": {"lead_time": 3}}, 422, "invalid_request"),
    ("post", "/forecast", {"json": {"service_level": 1.5}}, 422, "invalid_request"),
    ("post", "/forecast", {"json": [1, 2]}, 422, "invalid_request"),
])
def test_error_paths(client: FlaskClient, method: str, path: str, kwargs: dict[str, Any],
                     status: int, code: str) -> None:
    assert_error(getattr(client, method)(path, **kwargs), status, code)


def test_method_not_allowed_keeps_the_allow_header(client: FlaskClient) -> None:
    response = client.put("/forecast", json={})
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_bad_csv_content_lists_row_problems_and_stores_nothing(
        client: FlaskClient, app: Flask) -> None:
    raw = GOOD_CSV + b"2024-01-03,p1,s1,-1\nnot-a-date,p1,s1,2\n"
    error = assert_error(client.post("/retrain", data=csv_upload(raw)), 422, "invalid_data")
    problems = error["details"]["problems"]
    assert {(p["row"], p["column"]) for p in problems} == {(4, "quantity"), (5, "date")}
    assert error["details"]["total"] == 2
    assert app.extensions["restock"].store.stats()["rows"] == 0


def test_beyond_the_model_horizon_is_a_400(trained_app: Flask) -> None:
    response = trained_app.test_client().post("/forecast", json={"days": 5000})
    assert_error(response, 400, "invalid_parameter")


def test_unknown_series_is_a_404_with_suggestions(trained_app: Flask) -> None:
    client = trained_app.test_client()
    product = client.get("/series").get_json()["items"][0]["product_id"]
    error = assert_error(client.post("/forecast", json={"product_id": product + "x"}),
                         404, "unknown_series")
    assert error["details"]["unknown"] == [product + "x"]


def test_cancelling_a_finished_job_is_a_409(client: FlaskClient, step_task: Any) -> None:
    step_task.release.set()
    job_id = client.post("/retrain", data=csv_upload()).get_json()["job_id"]
    from webtools import wait_job
    wait_job(client, job_id, "succeeded")
    assert_error(client.delete(f"/jobs/{job_id}"), 409, "job_conflict")


def test_upload_over_the_limit_is_a_413(make_app: Callable[..., Flask]) -> None:
    app = make_app(max_upload_mb=0.01)
    big = GOOD_CSV + b"2024-01-03,p1,s1,1\n" * 2000
    response = app.test_client().post("/retrain", data=csv_upload(big))
    assert_error(response, 413, "payload_too_large")
    assert app.extensions["restock"].store.stats()["rows"] == 0


def test_unexpected_errors_are_a_500_without_internals(app: Flask, client: FlaskClient) -> None:
    with app.extensions["restock"].store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE sales"))
    error = assert_error(client.get("/series"), 500, "internal_error")
    assert "sales" not in error["message"] and error["details"]["request_id"]


def test_tokens_protect_everything_but_health_and_the_page(
        make_app: Callable[..., Flask]) -> None:
    client = make_app(api_tokens=("s3cret-one", "s3cret-two")).test_client()
    for path in ("/", "/healthz", "/ui", "/static/retrain.css"):
        assert client.get(path).status_code == 200, path
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-one"},
                    {"Authorization": "Basic s3cret-one"}):
        response = client.get("/series", headers=headers)
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(client.post("/retrain", data=csv_upload()), 401, "unauthorized")
    for token in ("s3cret-one", "s3cret-two"):
        ok = client.get("/series", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200


def test_rate_limits_are_json_429s_and_tighter_on_retrain(
        make_app: Callable[..., Flask], step_task: Any) -> None:
    step_task.release.set()
    client = make_app(ratelimit_default="5 per minute",
                      ratelimit_retrain="2 per minute").test_client()
    assert [client.post("/retrain", data=csv_upload()).status_code for _ in range(3)] == \
        [202, 202, 429]
    response = client.post("/retrain", data=csv_upload())
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    assert [client.get("/series").status_code for _ in range(6)] == [200] * 5 + [429]
    assert all(client.get("/healthz").status_code == 200 for _ in range(10))


def test_cors_allows_only_listed_origins_without_credentials(
        make_app: Callable[..., Flask]) -> None:
    client = make_app(cors_origins=("https://planner.example",),
                      api_tokens=("tok",)).test_client()
    preflight = client.options("/forecast", headers={
        "Origin": "https://planner.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://planner.example"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    other = client.get("/", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_no_cors_headers_without_an_allow_list(client: FlaskClient) -> None:
    response = client.get("/", headers={"Origin": "https://planner.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_security_headers_and_request_ids(client: FlaskClient,
                                          caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="restock.web.access"):
        response = client.get("/", headers={"X-Request-ID": "trace-123"})
        forged = client.get("/", headers={"X-Request-ID": "bad id; INJECTED=1"})
    assert response.headers["X-Request-ID"] == "trace-123"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert len(forged.headers["X-Request-ID"]) == 32 and "INJECTED" not in forged.headers[
        "X-Request-ID"]
    lines = [r.getMessage() for r in caplog.records if r.name == "restock.web.access"]
    assert any("GET / 200" in line and "rid=trace-123" in line for line in lines)
    assert not any("INJECTED" in line for line in lines)
