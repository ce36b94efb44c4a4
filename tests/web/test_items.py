"""POST/GET /items, and the plan and the forecast with item settings and on order: the same
suggested order for the same series, each constraint a warning and an explanation step."""

from __future__ import annotations

import csv
import io

import pytest
from flask import Flask
from flask.testing import FlaskClient

from restock.web.services import services

ITEMS = (b"product_id,store_id,lead_time_days,review_period_days,moq,order_multiple,"
         b"max_order_qty,max_stock,unit_cost,service_level\n"
         b"P0001,,12,7,500,,,,2.5,0.99\n"  # a large moq
         b"P0001,S02,3,,,,,,,\n"  # S02 gets its own lead time, the rest from P0001's row
         b"P0002,,,,,48,,,1.0,\n"  # cases of 48
         b"P0003,,,,,,30,,4,\n")  # at most 30 per order


def send(client: FlaskClient, body: bytes, name: str = "items.csv"):
    return client.post("/items", data={"file": (io.BytesIO(body), name)},
                       content_type="multipart/form-data")


@pytest.fixture
def client(trained_app: Flask) -> FlaskClient:
    return trained_app.test_client()


def test_upload_then_read_back_as_json_and_csv(client: FlaskClient) -> None:
    assert client.get("/items").get_json() == {"upload": None, "items": []}
    answer = send(client, ITEMS)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["upload"]["rows"] == 4
    body = client.get("/items").get_json()
    first = body["items"][0]
    assert (first["product_id"], first["store_id"], first["moq"], first["order_multiple"]) == \
        ("P0001", None, 500, None)
    assert body["upload"]["filename"] == "items.csv"
    exported = client.get("/items", headers={"Accept": "text/csv"})
    assert exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0]["moq"] == "500" and rows[0]["store_id"] == "" and len(rows) == 4
    assert send(client, exported.get_data()).status_code == 200  # edit and send back
    assert client.get("/items").get_json()["items"] == body["items"]


def test_the_csv_is_formula_safe_and_exact_and_reads_back_the_same(
        client: FlaskClient, trained_app: Flask) -> None:
    store = services(trained_app).store
    store.ingest_bytes(b"date,product_id,store_id,quantity\n2024-01-01,=1+2,-S1,3\n")
    assert send(client, b"product_id,store_id,unit_cost\n=1+2,-S1,0.123456789012345\n"
                ).status_code == 200
    before = client.get("/items").get_json()["items"]
    exported = client.get("/items", headers={"Accept": "text/csv"}).get_data()
    assert exported.splitlines()[1] == b"'=1+2,'-S1,,,,,,,,0.123456789012345,"
    assert send(client, exported).status_code == 200
    assert client.get("/items").get_json()["items"] == before


@pytest.mark.parametrize("body, column", [
    (b"product_id,moq\nP0001,5\nP0404,3\n", "product_id"),
    (b"product_id,moq\nP0001,-3\n", "moq"),
    (b"product_id,order_multiple\nP0001,0\n", "order_multiple"),
    (b"product_id,service_level\nP0001,1.2\n", "service_level"),
])
def test_a_bad_file_is_422_naming_row_and_column_and_keeps_the_settings(
        client: FlaskClient, body: bytes, column: str) -> None:
    assert send(client, ITEMS).status_code == 200
    before = client.get("/items").get_json()
    answer = send(client, body)
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_data"
    assert error["details"]["problems"][-1]["column"] == column
    assert error["details"]["problems"][-1]["row"] >= 2
    assert client.get("/items").get_json() == before


def test_not_a_csv_is_415(client: FlaskClient) -> None:
    assert send(client, ITEMS, "items.xlsx").status_code == 415


def forecast_of(client: FlaskClient, row: dict, **policy: float) -> dict:
    answer = client.post("/forecast", json={"product_id": row["product_id"],
                                            "store_id": row["store_id"], **policy})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


@pytest.mark.parametrize("policy", [{}, {"lead_time_days": 20, "service_level": 0.9}])
def test_plan_and_forecast_give_the_same_constrained_order(client: FlaskClient,
                                                           policy: dict) -> None:
    assert send(client, ITEMS).status_code == 200
    plan = client.get("/plan", query_string=policy).get_json()
    assert plan["abc_basis"] == "revenue"  # every series has a unit cost
    by_series = {(r["product_id"], r["store_id"]): r for r in plan["rows"]}
    for row in plan["rows"]:
        answer = forecast_of(client, row, **policy)
        inventory = answer["inventory"]
        assert row["suggested_order_qty"] == pytest.approx(inventory["suggested_order_qty"])
        assert row["order_qty_before_constraints"] == pytest.approx(
            inventory["order_qty_before_constraints"])
        assert row["lead_time_days"] == inventory["lead_time_days"]
        assert row["service_level"] == inventory["service_level"]
        assert row["explanation"] == inventory["explanation"]
        codes = {w["code"] for w in answer["warnings"]}
        assert {c for c in row["warnings"] if c.startswith("order_")} == \
            {c for c in codes if c.startswith("order_")}
    # precedence: the request's value, else the store's row, else the product's row
    lead = {key: row["lead_time_days"] for key, row in by_series.items()}
    if policy:
        assert set(lead.values()) == {20}
    else:
        assert lead[("P0001", "S01")] == 12 and lead[("P0001", "S02")] == 3
        assert lead[("P0002", "S01")] == 7  # no setting: the default
        assert by_series[("P0001", "S02")]["service_level"] == 0.99  # from P0001's row
        # the demo's stock needs orders of P0001 at S01 (57 units), P0002 and P0003 at S02
        assert set().union(*(row["warnings"] for row in plan["rows"])) >= {
            "order_raised_to_moq", "order_rounded_to_multiple", "order_capped"}
    for row in plan["rows"]:
        if row["order_now"]:
            quantity = row["suggested_order_qty"]
            if row["product_id"] == "P0001":
                assert quantity >= 500
            if row["product_id"] == "P0002":
                assert quantity % 48 == 0
            if row["product_id"] == "P0003":
                assert quantity <= 30 or "order_capped" in row["warnings"]


def test_on_order_enters_the_inventory_position(client: FlaskClient, trained_app: Flask) -> None:
    store = services(trained_app).store
    last = store.query(product_id="P0001", store_id="S01").iloc[-1]
    store.ingest_bytes(
        f"date,product_id,store_id,category,quantity,on_hand,on_order\n"
        f"{last['date']:%Y-%m-%d},P0001,S01,{last['category']},{last['quantity']},"
        f"{last['on_hand']},35\n".encode())
    row = next(r for r in client.get("/plan").get_json()["rows"]
               if (r["product_id"], r["store_id"]) == ("P0001", "S01"))
    assert row["on_order"] == 35 and row["inventory_position"] == pytest.approx(
        row["on_hand"] + 35)
    inventory = forecast_of(client, row)["inventory"]
    assert inventory["on_order"] == 35
    assert inventory["suggested_order_qty"] == pytest.approx(row["suggested_order_qty"])
    # a request's on_order wins over the stored one, and lowers the order by as much
    lower = forecast_of(client, row, on_order=45)["inventory"]
    assert lower["inventory_position"] == pytest.approx(row["on_hand"] + 45)
    if lower["order_now"] and inventory["order_now"]:
        assert lower["suggested_order_qty"] == pytest.approx(
            inventory["suggested_order_qty"] - 10)
    assert client.get("/plan", query_string={"on_order": 3}).status_code == 422


def test_abc_by_volume_unless_every_series_has_a_unit_cost(client: FlaskClient) -> None:
    assert client.get("/plan").get_json()["abc_basis"] == "volume"
    assert send(client, b"product_id,unit_cost\nP0001,3\nP0002,1\n").status_code == 200
    assert client.get("/plan").get_json()["abc_basis"] == "volume"  # P0003 has none
    plan = client.get("/plan", query_string={"product_id": ["P0001", "P0002"]}).get_json()
    assert plan["abc_basis"] == "revenue"


def test_plan_csv_keeps_its_columns_and_explains_in_one_cell(client: FlaskClient) -> None:
    assert send(client, ITEMS).status_code == 200
    text = client.get("/plan", query_string={"format": "csv"}).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[:6] == ["product_id", "store_id", "category", "order_now",
                                 "suggested_order_qty", "on_hand"]
    assert all(r["explanation"].startswith("expected demand over lead time") for r in rows)
