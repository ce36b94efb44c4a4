"""GET /plan: JSON and CSV, the /forecast filters and policy, bad input as 4xx."""

from __future__ import annotations

import csv
import io

import pytest
from flask import Flask

from restock.serving.plans import COLUMNS


def test_json_rows_equal_forecast_for_the_same_series_and_policy(trained_app: Flask) -> None:
    client = trained_app.test_client()
    policy = {"service_level": 0.98, "lead_time_days": 10, "review_period_days": 7}
    response = client.get("/plan", query_string={**policy, "store_id": "S02"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    answer = response.get_json()
    assert answer["series"] == 3 and answer["abc_basis"] == "volume"
    assert answer["policy"]["lead_time_days"] == 10
    for row in answer["rows"]:
        assert list(row) == list(COLUMNS) and row["store_id"] == "S02"
        inventory = client.post("/forecast", json={
            **policy, "product_id": row["product_id"], "store_id": "S02"}).get_json()["inventory"]
        assert row["suggested_order_qty"] == inventory["suggested_order_qty"]
        assert row["order_now"] == inventory["order_now"]
        assert row["reorder_point"] == pytest.approx(inventory["reorder_point"], abs=1e-6)
        assert row["order_up_to_level"] == pytest.approx(inventory["max_level"], abs=1e-6)
        assert row["stockout_date"] == inventory["stockout_date"]


@pytest.mark.parametrize("how", [{"query_string": {"format": "csv"}},
                                 {"headers": {"Accept": "text/csv"}}])
def test_csv_by_format_or_accept(trained_app: Flask, how: dict) -> None:
    response = trained_app.test_client().get("/plan", **how)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 6 and list(rows[0]) == list(COLUMNS)
    json_rows = trained_app.test_client().get("/plan").get_json()["rows"]
    assert [(r["product_id"], r["store_id"]) for r in rows] == \
        [(r["product_id"], r["store_id"]) for r in json_rows]  # the same urgency order


def test_repeated_filters_select_several(trained_app: Flask) -> None:
    response = trained_app.test_client().get(
        "/plan?product_id=P0001&product_id=P0003&store_id=S01")
    assert {r["product_id"] for r in response.get_json()["rows"]} == {"P0001", "P0003"}


def test_unknown_series_is_404_with_suggestions(trained_app: Flask) -> None:
    response = trained_app.test_client().get("/plan", query_string={"product_id": "P00O1"})
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert "P0001" in error["details"]["suggestions"]["P00O1"]


@pytest.mark.parametrize("query", [
    {"service_level": 1.5}, {"lead_time_days": 0}, {"lead_time_days": "soon"},
    {"ordering_cost": 10},  # EOQ needs holding_cost too: the declaration's own rule
    {"days": 10, "periods": 3}, {"on_hand": 5}, {"history": 3}, {"format": "xml"},
])
def test_bad_input_is_422_naming_the_field(trained_app: Flask, query: dict) -> None:
    response = trained_app.test_client().get("/plan", query_string=query)
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_data(as_text=True)
    assert next(iter(query)) in body or "holding_cost" in body
