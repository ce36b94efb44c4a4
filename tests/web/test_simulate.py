"""POST /simulate: the three policies replayed on the active version, its chart, and the
clear 4xx of bad input; stored sales and the active model stay as they were."""

from __future__ import annotations

import pytest
from flask import Flask

from restock.simulation import POLICIES
from restock.web.services import services


def test_simulate_reports_every_policy_and_draws_the_chart(trained_app: Flask) -> None:
    client = trained_app.test_client()
    s = services(trained_app)
    before = (s.registry.current(), s.store.data_version())
    answer = client.post("/simulate", json={"service_level": 0.9, "lead_time_std_days": 1,
                                            "unit_cost": 2.5, "seed": 4, "plot": True})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert set(body["total"]) == set(POLICIES)
    restock = body["total"]["restock"]
    assert restock["target_service_level"] == 0.9
    assert 0 <= restock["fill_rate"] <= 1 and 0 <= restock["cycle_service_level"] <= 1
    assert restock["average_on_hand_value"] == pytest.approx(restock["average_on_hand"] * 2.5)
    assert body["period"]["periods"] > 0 and body["model_version"] == before[0]
    png = client.get(body["plot_url"])
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    assert (s.registry.current(), s.store.data_version()) == before  # nothing changed
    again = client.post("/simulate", json={"service_level": 0.9, "lead_time_std_days": 1,
                                           "unit_cost": 2.5, "seed": 4}).get_json()
    assert again["total"] == body["total"]


def test_simulate_bad_input_is_a_clear_4xx(trained_app: Flask) -> None:
    client = trained_app.test_client()
    unknown = client.post("/simulate", json={"product_id": "nope"})
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "unknown_series"
    assert "suggestions" in unknown.get_json()["error"]["details"]
    long_lead = client.post("/simulate", json={"lead_time_days": 1000})
    assert long_lead.status_code == 400
    assert "lead_time_days" in long_lead.get_json()["error"]["message"]
    empty = client.post("/simulate", json={"start": "2001-01-01", "end": "2001-01-31"})
    assert empty.status_code == 404 and empty.get_json()["error"]["code"] == "no_backtest"
    for body, field in (({"seed": -1}, "seed"), ({"unit_cost": 0}, "unit_cost"),
                        ({"start": "2024-02-01", "end": "2024-01-01"}, "start"),
                        ({"lead_time": 3}, "lead_time")):
        refused = client.post("/simulate", json=body)
        assert refused.status_code == 422, body
        assert field in str(refused.get_json()["error"]), body
