"""The replenishment plan: each row is /forecast's inventory for that series, urgency order,
filters, ABC/XYZ classes."""

from __future__ import annotations

import numpy as np
import pytest

from restock.errors import InvalidParameterError, UnknownSeriesError
from restock.query import ForecastQuery, InventoryPolicy
from restock.serving import ForecastService
from restock.serving.plans import COLUMNS, abc_classes, variation, xyz_classes
from tests.conftest import Trained, ask

#: the plan column -> the forecast's inventory field it must equal
SAME_AS_FORECAST = {
    "on_hand": "on_hand", "avg_daily_demand": "avg_daily_demand",
    "protection_interval_days": "protection_interval_days",
    "demand_over_protection_interval": "demand_over_protection_interval",
    "safety_stock": "safety_stock", "safety_stock_method": "safety_stock_method",
    "reorder_point": "reorder_point",
    "order_up_to_level": "max_level", "days_of_cover": "days_of_cover",
    "stockout_date": "stockout_date", "order_now": "order_now",
    "suggested_order_qty": "suggested_order_qty",
}
POLICIES = [{}, {"service_level": 0.99, "lead_time_days": 12.5, "lead_time_std_days": 2,
                 "review_period_days": 7, "cover_days": 10},
            {"lead_time_days": 40, "ordering_cost": 50, "holding_cost": 2},
            {"target_fill_rate": 0.97, "lead_time_days": 3}]


@pytest.fixture
def service(trained: Trained) -> ForecastService:
    return ForecastService(trained.settings, trained.store, trained.registry)


@pytest.mark.parametrize("policy", POLICIES)
def test_every_row_is_the_forecast_of_its_series(service: ForecastService,
                                                 policy: dict) -> None:
    rows = service.plan(ForecastQuery(), InventoryPolicy(**policy)).records()
    assert len(rows) == 6  # 3 products x 2 stores, no total
    for row in rows:
        inventory = ask(service, product_id=row["product_id"], store_id=row["store_id"],
                        **policy)["inventory"]
        for column, field in SAME_AS_FORECAST.items():
            expected = inventory[field]
            if isinstance(expected, float):  # both rounded to 6 places from the same maths
                expected = pytest.approx(expected, rel=1e-9, abs=1e-6)
            assert row[column] == expected, column
        assert row["inventory_position"] == row["on_hand"]


def test_rows_are_sorted_by_urgency(service: ForecastService) -> None:
    # with the default policy some demo series are under their reorder point, some not
    rows = service.plan(ForecastQuery(), InventoryPolicy()).records()
    ordering = [not row["order_now"] for row in rows]
    assert ordering == sorted(ordering) and True in ordering and False in ordering
    for flag in (True, False):
        cover = [row["days_of_cover"] for row in rows if row["order_now"] is flag]
        assert cover == sorted(cover, key=lambda c: float("inf") if c is None else c)


def test_filters_are_those_of_forecast(service: ForecastService) -> None:
    rows = service.plan(ForecastQuery(store_id="S01", product_id=["P0001", "P0002"]),
                        InventoryPolicy()).records()
    assert {(r["product_id"], r["store_id"]) for r in rows} == {("P0001", "S01"),
                                                                  ("P0002", "S01")}
    category = rows[0]["category"]
    by_category = service.plan(ForecastQuery(category=category), InventoryPolicy()).records()
    assert by_category and {r["category"] for r in by_category} == {category}
    with pytest.raises(UnknownSeriesError) as caught:
        service.plan(ForecastQuery(product_id="P0O01"), InventoryPolicy())
    assert "P0001" in caught.value.details["suggestions"]["P0O01"]
    with pytest.raises(InvalidParameterError):
        service.plan(ForecastQuery(), InventoryPolicy(on_hand=5))


def test_csv_has_the_stable_header_and_one_line_per_series(service: ForecastService) -> None:
    plan = service.plan(ForecastQuery(), InventoryPolicy())
    lines = plan.csv().splitlines()
    assert lines[0].split(",") == list(COLUMNS)
    assert len(lines) == 1 + len(plan)
    first = dict(zip(COLUMNS, lines[1].split(",")))
    assert first["order_now"] in ("yes", "no", "")


def test_abc_by_cumulative_share() -> None:
    # shares 50, 25, 10, 8, 5, 2 %: A covers the first 80 % (the item crossing it too)
    volume = np.array([10.0, 50, 2, 25, 8, 5, 0])
    assert abc_classes(volume).tolist() == ["A", "A", "C", "A", "B", "B", "C"]
    assert abc_classes(np.zeros(3)).tolist() == ["C", "C", "C"]


def test_xyz_by_coefficient_of_variation() -> None:
    cv = np.array([0.0, 0.5, 0.51, 1.0, 1.2, np.nan])
    assert xyz_classes(cv).tolist() == ["X", "X", "Y", "Y", "Z", "Z"]


def test_variation_ignores_periods_before_the_start() -> None:
    nan = np.nan
    history = np.array([[10, 10, 10, 10], [nan, nan, 5, 15], [0, 0, 0, 20], [nan, 0, 0, 0]],
                       dtype=float)
    cv = variation(history)
    assert cv[:3] == pytest.approx([0.0, 0.5, 75 ** 0.5 / 5]) and np.isnan(cv[3])
    assert xyz_classes(cv).tolist() == ["X", "X", "Z", "Z"]


def test_rows_whose_history_ran_out_of_stock_say_so(service: ForecastService,
                                                    trained: Trained) -> None:
    rows = trained.store.query()
    out = rows.assign(out=rows["on_hand"] == 0).groupby(["product_id", "store_id"])["out"].any()
    flagged = {(r["product_id"], r["store_id"]): "stockouts_in_history" in r["warnings"]
               for r in service.plan(ForecastQuery(), InventoryPolicy()).records()}
    assert flagged == out.to_dict() and any(flagged.values()) and not all(flagged.values())


def test_intermittent_rows_are_planned_empirically_as_their_warning_says(
        service: ForecastService) -> None:
    rows = service.plan(ForecastQuery(), InventoryPolicy()).records()
    methods = {(r["product_id"], r["store_id"]): r["safety_stock_method"] for r in rows}
    assert set(methods.values()) == {"normal", "empirical"}  # P0003 sells on a third of days
    for row in rows:
        warned = "intermittent_demand" in row["warnings"]
        assert warned == (row["safety_stock_method"] == "empirical")
        answer = ask(service, product_id=row["product_id"], store_id=row["store_id"])
        assert warned == ("intermittent_demand" in {w["code"] for w in answer["warnings"]})
