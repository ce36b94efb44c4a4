"""Hostile and odd requests (issue 11): every answer is standard JSON in the one error shape
with a 4xx that says what to change; overflowing numbers never reach a body as NaN/Infinity."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from restock.web.jsonbody import dumps_finite
from webtools import GOOD_CSV, csv_upload, parse_sse, wait_job


def strict_json(text: str) -> Any:
    """Parse as a browser would: NaN and Infinity are not JSON."""
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in a JSON body: {text[:300]}")
    return json.loads(text, parse_constant=refuse)


def error_of(response: Any, status: int) -> dict[str, Any]:
    text = response.get_data(as_text=True)
    assert response.status_code == status, text[:500]
    assert response.mimetype == "application/json"
    body = strict_json(text)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# -- non-finite numbers ------------------------------------------------------------------

def test_the_json_provider_writes_null_for_non_finite_floats(app: Flask) -> None:
    body = {"a": math.inf, "b": [math.nan, 1.5, -math.inf], "c": {"d": (math.inf,)}}
    assert strict_json(app.json.dumps(body)) == {"a": None, "b": [None, 1.5, None],
                                                "c": {"d": [None]}}
    assert dumps_finite({"x": 2.0}) == '{"x": 2.0}'
    with app.test_request_context():
        from flask import jsonify
        assert strict_json(jsonify(mean=math.inf).get_data(as_text=True)) == {"mean": None}


def test_series_with_an_overflowing_mean_is_valid_json(client: FlaskClient, app: Flask) -> None:
    """Two stored quantities of 1e308 average to inf in SQL (the parser may refuse such
    rows now; rows stored earlier, or by another writer, must still read back)."""
    assert client.post("/retrain", data=csv_upload()).status_code == 202
    store = app.extensions["restock"].store
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE sales SET quantity = 1e308"))
    response = client.get("/series")
    assert response.status_code == 200
    item = strict_json(response.get_data(as_text=True))["items"][0]
    assert item["mean"] is None and item["rows"] == 2


def test_job_events_and_status_with_non_finite_numbers_are_valid_json(
        make_app: Callable[..., Flask]) -> None:
    def task(params: dict[str, Any], on_event: Callable[[dict], None]) -> dict[str, Any]:
        on_event({"stage": "backtest", "progress": 0.5, "message": "m", "mase": math.inf})
        return {"model_version": "v-x", "metrics": {"mase": math.nan}}

    client = make_app(task=task).test_client()
    job_id = client.post("/retrain", data=csv_upload()).get_json()["job_id"]
    wait_job(client, job_id, "succeeded")
    stream = client.get(f"/jobs/{job_id}/events").get_data(as_text=True)
    lines = stream.splitlines()
    for line in lines:
        if line.startswith("data:"):
            strict_json(line[5:])
    events = [e for e in parse_sse(lines) if "event" in e]
    assert [e["data"].get("mase") for e in events if e["data"].get("stage") == "backtest"] \
        == [None]
    assert events[-1]["data"]["metrics"] == {"mase": None}
    strict_json(client.get(f"/jobs/{job_id}").get_data(as_text=True))


@pytest.mark.parametrize("costs, field", [
    ({"ordering_cost": 1e308, "holding_cost": 1e-308}, "ordering_cost"),
    ({"ordering_cost": 10.0, "holding_cost": 1e-308}, "holding_cost"),
    ({"ordering_cost": 1e300, "holding_cost": 1.0}, "ordering_cost"),
    ({"on_hand": 1e308}, "on_hand"),
])
def test_inventory_inputs_that_overflow_are_a_422_naming_the_field(
        trained_app: Flask, costs: dict[str, float], field: str) -> None:
    response = trained_app.test_client().post("/forecast", json={"days": 7, **costs})
    error = error_of(response, 422)
    assert error["code"] == "invalid_request"
    assert field in error["message"], error["message"]
    assert [field] in [p["loc"] for p in error["details"]["problems"]]


def test_the_largest_accepted_costs_give_a_finite_plan(trained_app: Flask) -> None:
    response = trained_app.test_client().post("/forecast", json={
        "days": 7, "ordering_cost": 1e12, "holding_cost": 1e-9, "on_hand": -1e15})
    text = response.get_data(as_text=True)
    assert response.status_code == 200, text[:500]
    inventory = strict_json(text)["inventory"]
    assert inventory["eoq"] is not None and math.isfinite(inventory["eoq"])


def test_an_overflowing_eoq_is_refused_by_the_domain_naming_the_costs() -> None:
    from restock import inventory
    from restock.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError) as caught:
        inventory.eoq(1e6, 1e308, 1e-308)
    assert "ordering_cost" in caught.value.message and "holding_cost" in caught.value.message
    assert all(math.isfinite(v) for v in caught.value.details.values()
               if isinstance(v, float))


# -- malformed requests ------------------------------------------------------------------

def test_a_file_under_another_field_name_is_a_400_that_says_which(client: FlaskClient,
                                                                  app: Flask) -> None:
    error = error_of(client.post("/retrain", data={
        "data": (io.BytesIO(GOOD_CSV), "f.csv", "text/csv")}), 400)
    assert error["message"] == "send the CSV as the multipart field 'file' (got field 'data')"
    error = error_of(client.post("/retrain", data={"file": [
        (io.BytesIO(GOOD_CSV), "f.csv", "text/csv"),
        (io.BytesIO(GOOD_CSV), "g.csv", "text/csv")]}), 400)
    assert "got 2 files" in error["message"]
    error = error_of(client.post("/retrain", data={
        **csv_upload(), "extra": (io.BytesIO(GOOD_CSV), "g.csv", "text/csv")}), 400)
    assert "'extra'" in error["message"]
    assert app.extensions["restock"].store.stats()["rows"] == 0
    # a plain text field under an unknown name stays a schema error naming it
    error = error_of(client.post("/retrain", data={**csv_upload(), "colour": "red"}), 422)
    assert "colour" in error["message"]


@pytest.mark.parametrize("body", [
    "[" * 1000 + "]" * 1000,              # 2 KB, 1,000 levels
    '{"a":' * 50_000 + "1" + "}" * 50_000,
    '{"days": NaN}',
    '{"days": 7, "on_hand": Infinity}',
])
def test_json_that_is_too_deep_or_not_standard_is_a_400(client: FlaskClient, body: str) -> None:
    error = error_of(client.post("/forecast", data=body, content_type="application/json"), 400)
    assert error["message"].startswith("the request body is not valid JSON: ")
    assert "nested too deeply" in error["message"] or "not a JSON value" in error["message"]


def test_a_double_slash_is_a_json_404_not_a_redirect(client: FlaskClient) -> None:
    for path in ("/jobs//events", "/jobs/x//events", "/models//activate"):
        response = client.open(path, method="POST" if "activate" in path else "GET")
        assert error_of(response, 404)["code"] == "not_found", path


def test_a_413_states_the_size_and_the_limit(make_app: Callable[..., Flask]) -> None:
    app = make_app(max_upload_mb=0.5)
    big = GOOD_CSV + b"2024-01-03,p1,s1,1\n" * 60_000  # ~1.1 MB
    error = error_of(app.test_client().post("/retrain", data=csv_upload(big)), 413)
    assert error["code"] == "payload_too_large"
    assert error["message"].startswith("the upload is 1.1 MB; the limit is "
                                       "RESTOCK_MAX_UPLOAD_MB = 0.5 MB"), error["message"]
    assert error["details"] == {"size_mb": 1.1, "limit_mb": 0.5}


# -- on_error=skip -----------------------------------------------------------------------

def test_skipped_rows_are_listed_with_line_column_and_problem(client: FlaskClient) -> None:
    raw = GOOD_CSV + b"2024-01-03,p1,s1,-1\nnot-a-date,p1,s1,2\n"
    response = client.post("/retrain", data=csv_upload(raw, on_error="skip"))
    assert response.status_code == 202, response.get_data(as_text=True)
    upload = response.get_json()["upload"]
    assert upload["inserted"] == 2 and upload["skipped"] == 2
    assert {(p["row"], p["column"]) for p in upload["skipped_problems"]} == {
        (4, "quantity"), (5, "date")}
    assert all(p["problem"] for p in upload["skipped_problems"])


def test_skipped_problems_are_capped_at_100_and_skipped_counts_all(
        client: FlaskClient) -> None:
    raw = GOOD_CSV + b"".join(b"2024-02-%02d,p%d,s1,-1\n" % (1 + i % 28, i)
                              for i in range(150))
    upload = client.post("/retrain", data=csv_upload(raw, on_error="skip")).get_json()["upload"]
    assert upload["skipped"] == 150 and len(upload["skipped_problems"]) == 100
    assert upload["skipped_problems"][0]["row"] == 4


def test_response_models_serialise_non_finite_numbers_as_null() -> None:
    """The spectree path: views returning a model are dumped by pydantic, not app.json."""
    from restock.web.schemas import ForecastResponse

    body = ForecastResponse.model_validate({
        "model_version": "v", "selection": {}, "frequency": "D", "history": [],
        "forecast": [{"date": "2024-01-01", "yhat": math.inf, "yhat_lower": None,
                      "yhat_upper": math.nan}],
        "inventory": {"eoq": math.inf, "levels": [-math.inf]}, "warnings": []})
    dumped = strict_json(body.model_dump_json())
    assert dumped["forecast"][0]["yhat"] is None and dumped["inventory"] == {
        "eoq": None, "levels": [None]}
