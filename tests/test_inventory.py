"""Inventory formulas: Chopra & Meindl test vectors, properties, validation, the plan."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from restock.errors import InvalidParameterError
from restock.inventory import (
    InventoryPlan,
    cycle_service_level,
    days_of_cover,
    demand_over_days,
    demand_std_over_interval,
    eoq,
    expected_shortage_per_cycle,
    fill_rate,
    inventory_warnings,
    min_max_levels,
    order_up_to_level,
    plan_inventory,
    reorder_point,
    safety_stock,
    safety_stock_for_fill_rate,
    sigma_daily_from_period,
    stockout_date,
    suggested_order,
    unit_normal_loss,
    z_for_service_level,
)


def daily_forecast(value: float = 10.0, days: int = 60, start: str = "2024-01-01") -> pd.DataFrame:
    return pd.DataFrame({"date": pd.date_range(start, periods=days), "yhat": value})


# --------------------------------------------------------- Chopra & Meindl test vectors


def test_safety_stock_weekly_csl_090_and_reorder_point() -> None:
    # D = 2500/week, sigma_D = 500, L = 2 weeks, CSL 0.90 -> ss 906, ROP 5906
    ss = safety_stock(500, 2, service_level=0.90)
    assert ss == pytest.approx(906, abs=0.5)
    assert reorder_point(2500 * 2, ss) == pytest.approx(5906, abs=0.5)


def test_safety_stock_weekly_csl_095() -> None:
    assert safety_stock(500, 2, service_level=0.95) == pytest.approx(1163, abs=0.5)


def test_safety_stock_with_lead_time_uncertainty() -> None:
    # D = 2500/day, sigma_D = 500, L = 7 days, sigma_L = 7 days, CSL 0.90 -> 22,491
    ss = safety_stock(500, 7, service_level=0.90, avg_daily_demand=2500, lead_time_std_days=7)
    assert ss == pytest.approx(22_491, abs=1)


def test_csl_and_fill_rate_from_reorder_point() -> None:
    # D = 250/week, sigma 150, L = 2 weeks, Q = 1000, ROP = 600
    demand_lead = 250 * 2
    ss = 600 - demand_lead
    sigma_lead = demand_std_over_interval(150, 2)
    assert ss == 100
    assert cycle_service_level(ss, sigma_lead) == pytest.approx(0.68, abs=0.005)
    esc = expected_shortage_per_cycle(ss, sigma_lead)
    assert esc == pytest.approx(43.86, abs=0.005)
    assert fill_rate(esc, 1000) == pytest.approx(0.96, abs=0.005)


def test_eoq_vector() -> None:
    assert eoq(1300, 8, 0.225) == pytest.approx(304.05, abs=0.005)


def test_safety_stock_for_fill_rate_inverts_fill_rate() -> None:
    sigma_lead = demand_std_over_interval(150, 2)
    ss = safety_stock_for_fill_rate(0.95614, 1000, sigma_lead)
    assert ss == pytest.approx(100, abs=0.5)  # the vector above, read backwards
    assert fill_rate(expected_shortage_per_cycle(ss, sigma_lead), 1000) == pytest.approx(0.95614)


def test_safety_stock_for_fill_rate_can_be_negative_for_large_orders() -> None:
    assert safety_stock_for_fill_rate(0.9, 10_000, 100) < 0
    assert safety_stock_for_fill_rate(0.99, 100, 0) == 0


# ------------------------------------------------------------------------- small pieces


def test_z_and_unit_normal_loss() -> None:
    assert z_for_service_level(0.95) == pytest.approx(1.644854, abs=1e-6)
    assert unit_normal_loss(0) == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert unit_normal_loss(-5) == pytest.approx(5, abs=1e-5)  # G(k) ~ -k for very low k


def test_no_uncertainty_means_no_shortage() -> None:
    assert cycle_service_level(0, 0) == 1.0
    assert expected_shortage_per_cycle(0, 0) == 0.0
    assert expected_shortage_per_cycle(-3, 0) == 3.0


def test_order_up_to_and_min_max() -> None:
    assert order_up_to_level(140, 20) == 160
    assert min_max_levels(100, 300) == (100, 400)


def test_demand_over_days_fractional_and_beyond_horizon() -> None:
    path = np.array([1.0, 2.0, 3.0])
    assert demand_over_days(path, 2) == 3.0
    assert demand_over_days(path, 2.5) == 4.5
    assert demand_over_days(path, 5) == 6.0 + 2 * 2.0  # continues at the mean rate
    assert demand_over_days(np.array([]), 5) == 0.0


def test_days_of_cover_and_stockout_date() -> None:
    path = np.array([10.0, 10.0, 20.0, 20.0])
    assert days_of_cover(25, path) == pytest.approx(2.25)
    assert days_of_cover(20, path) == pytest.approx(2.0)  # exactly used up at the end of day 1
    assert days_of_cover(0, path) == 0.0
    assert days_of_cover(-5, path) == 0.0
    assert days_of_cover(75, path) == pytest.approx(4 + 15 / 15)  # past horizon at mean 15/day
    assert days_of_cover(10, np.zeros(4)) is None
    assert stockout_date(date(2024, 1, 1), 2.25) == date(2024, 1, 3)
    assert stockout_date(date(2024, 1, 1), 2.0) == date(2024, 1, 3)
    assert stockout_date(date(2024, 1, 1), None) is None


def test_suggested_order() -> None:
    assert suggested_order(50, 80, 380) == (True, 330)
    assert suggested_order(80, 80, 380) == (True, 300)
    assert suggested_order(81, 80, 380) == (False, 0.0)
    assert suggested_order(0, 0, 0) == (False, 0.0)  # no demand: nothing to order


def test_sigma_conversion() -> None:
    assert sigma_daily_from_period(70, 7) == pytest.approx(70 / math.sqrt(7))


# ---------------------------------------------------------------------- property tests

levels = st.floats(min_value=0.5001, max_value=0.9998)
lead_times = st.floats(min_value=0.01, max_value=365)
sigmas = st.floats(min_value=0, max_value=1e4)
demands = st.floats(min_value=0, max_value=1e4)
lead_stds = st.floats(min_value=0, max_value=30)


@given(levels, levels, lead_times, sigmas, demands, lead_stds)
def test_safety_stock_and_rop_monotone_in_service_level(
    a: float, b: float, lead: float, sigma: float, demand: float, lead_std: float
) -> None:
    low, high = sorted((a, b))
    kwargs = {"avg_daily_demand": demand, "lead_time_std_days": lead_std}
    ss_low = safety_stock(sigma, lead, service_level=low, **kwargs)
    ss_high = safety_stock(sigma, lead, service_level=high, **kwargs)
    assert ss_low <= ss_high
    assert reorder_point(demand * lead, ss_low) <= reorder_point(demand * lead, ss_high)


@given(levels, lead_times, lead_times, sigmas, demands, lead_stds)
def test_safety_stock_and_rop_monotone_in_lead_time(
    level: float, a: float, b: float, sigma: float, demand: float, lead_std: float
) -> None:
    short, long = sorted((a, b))
    kwargs = {"service_level": level, "avg_daily_demand": demand, "lead_time_std_days": lead_std}
    ss_short = safety_stock(sigma, short, **kwargs)
    ss_long = safety_stock(sigma, long, **kwargs)
    assert ss_short <= ss_long
    assert reorder_point(demand * short, ss_short) <= reorder_point(demand * long, ss_long)


@given(levels, lead_times, lead_times)
def test_plan_monotone_in_service_level_and_lead_time(level: float, a: float, b: float) -> None:
    forecast = daily_forecast(value=12.0, days=30)
    short, long = sorted((a, b))
    at_short = plan_inventory(forecast, 4.0, service_level=level, lead_time_days=short)
    at_long = plan_inventory(forecast, 4.0, service_level=level, lead_time_days=long)
    assert at_short.safety_stock <= at_long.safety_stock
    assert at_short.reorder_point <= at_long.reorder_point
    higher = plan_inventory(forecast, 4.0, service_level=min(level + 0.01, 0.9998),
                            lead_time_days=short)
    assert at_short.reorder_point <= higher.reorder_point


@given(levels, lead_times, lead_stds, st.floats(min_value=0, max_value=1e6))
def test_zero_demand_and_sigma_give_zero_stock(
    level: float, lead: float, lead_std: float, on_hand: float
) -> None:
    plan = plan_inventory(
        daily_forecast(value=0.0), 0.0, service_level=level, lead_time_days=lead,
        lead_time_std_days=lead_std, on_hand=on_hand,
    )
    assert plan.safety_stock == 0
    assert plan.reorder_point == 0
    assert plan.max_level == 0
    assert plan.days_of_cover is None and plan.stockout_date is None
    assert plan.order_now is False and plan.suggested_order_qty == 0
    assert plan.fill_rate == 1.0
    assert inventory_warnings(plan) == []


@given(st.one_of(st.floats(max_value=0.5), st.floats(min_value=0.9999, exclude_min=True),
                 st.just(math.nan)))
def test_service_level_out_of_range_is_rejected(level: float) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        safety_stock(1.0, 7, service_level=level)
    assert caught.value.details["parameter"] == "service_level"


@given(st.floats(max_value=0))
def test_non_positive_lead_time_is_rejected(lead: float) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        plan_inventory(daily_forecast(), 1.0, lead_time_days=lead)
    assert caught.value.details["parameter"] == "lead_time_days"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"lead_time_std_days": -1}, "lead_time_std_days"),
        ({"review_period_days": -1}, "review_period_days"),
        ({"cover_days": 0}, "cover_days"),
        ({"on_hand": math.inf}, "on_hand"),
        ({"ordering_cost": 0, "holding_cost": 1}, "ordering_cost"),
        ({"ordering_cost": 10, "holding_cost": -1}, "holding_cost"),
        ({"ordering_cost": 10}, "holding_cost"),
        ({"holding_cost": 1}, "ordering_cost"),
        ({"freq": "FOO"}, "freq"),
    ],
)
def test_plan_rejects_bad_parameters(kwargs: dict, parameter: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        plan_inventory(daily_forecast(), 1.0, **kwargs)
    assert caught.value.details["parameter"] == parameter
    assert parameter in caught.value.message


@pytest.mark.parametrize("sigma", [-1.0, math.nan, "a lot"])
def test_bad_sigma_is_rejected(sigma: object) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        plan_inventory(daily_forecast(), sigma)  # type: ignore[arg-type]
    assert caught.value.details["parameter"] == "sigma_daily"


@pytest.mark.parametrize(
    "forecast",
    [
        pd.DataFrame({"date": [], "yhat": []}),
        pd.DataFrame({"date": ["2024-01-01", "2024-01-01"], "yhat": [1.0, 2.0]}),
        pd.DataFrame({"date": ["2024-01-01"], "yhat": [math.nan]}),
        pd.DataFrame({"ds": ["2024-01-01"], "y": [1.0]}),
    ],
)
def test_bad_forecast_is_rejected(forecast: pd.DataFrame) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        plan_inventory(forecast, 1.0)
    assert caught.value.details["parameter"] == "forecast"


def test_eoq_and_fill_rate_validate_costs_and_quantity() -> None:
    with pytest.raises(InvalidParameterError, match="holding_cost"):
        eoq(100, 5, 0)
    with pytest.raises(InvalidParameterError, match="order_quantity"):
        fill_rate(1, 0)
    with pytest.raises(InvalidParameterError, match="target_fill_rate"):
        safety_stock_for_fill_rate(1.0, 100, 10)


# ----------------------------------------------------------------------------- the plan


def test_plan_on_daily_forecast() -> None:
    plan = plan_inventory(daily_forecast(10.0), 3.0, on_hand=50, lead_time_days=7)
    assert plan.avg_daily_demand == 10
    assert plan.demand_over_lead_time == 70
    assert plan.safety_stock == pytest.approx(1.644854 * 3 * math.sqrt(7), rel=1e-6)
    assert plan.reorder_point == pytest.approx(70 + plan.safety_stock)
    assert plan.min_level == plan.reorder_point
    assert plan.order_quantity == 300  # 30 days of cover
    assert plan.eoq is None
    assert plan.max_level == pytest.approx(plan.reorder_point + 300)
    assert plan.days_of_cover == 5
    assert plan.stockout_date == date(2024, 1, 6)
    assert plan.order_now is True
    assert plan.suggested_order_qty == pytest.approx(plan.max_level - 50)
    sigma_lead = 3 * math.sqrt(7)
    assert plan.expected_shortage_per_cycle == pytest.approx(
        expected_shortage_per_cycle(plan.safety_stock, sigma_lead)
    )
    assert plan.fill_rate == pytest.approx(1 - plan.expected_shortage_per_cycle / 300)


def test_plan_uses_eoq_when_both_costs_given() -> None:
    plan = plan_inventory(daily_forecast(10.0), 3.0, ordering_cost=50, holding_cost=2)
    assert plan.eoq == pytest.approx(math.sqrt(2 * 50 * 3650 / 2))
    assert plan.order_quantity == plan.eoq
    assert plan.max_level == pytest.approx(plan.reorder_point + plan.eoq)


def test_plan_without_on_hand_leaves_stock_metrics_null() -> None:
    plan = plan_inventory(daily_forecast(), 2.0)
    assert plan.on_hand is None
    assert plan.days_of_cover is None and plan.stockout_date is None
    assert plan.order_now is None and plan.suggested_order_qty is None
    assert inventory_warnings(plan) == []


def test_plan_with_lead_time_uncertainty_and_review_period() -> None:
    base = plan_inventory(daily_forecast(10.0), 3.0, lead_time_days=7)
    uncertain = plan_inventory(daily_forecast(10.0), 3.0, lead_time_days=7, lead_time_std_days=2)
    assert uncertain.safety_stock == pytest.approx(
        1.644854 * math.sqrt(7 * 9 + 100 * 4), rel=1e-6
    )
    periodic = plan_inventory(daily_forecast(10.0), 3.0, lead_time_days=7, review_period_days=7)
    assert periodic.protection_interval_days == 14
    assert periodic.demand_over_lead_time == 70
    assert periodic.demand_over_protection_interval == 140
    assert periodic.safety_stock == pytest.approx(base.safety_stock * math.sqrt(2))
    assert periodic.reorder_point == pytest.approx(
        order_up_to_level(140, periodic.safety_stock)
    )


def test_plan_weekly_forecast_spreads_each_week_over_its_days() -> None:
    weekly = pd.DataFrame(
        {"date": pd.date_range("2024-01-05", periods=8, freq="W-FRI"), "yhat": 70.0}
    )
    plan = plan_inventory(weekly, 2.0, lead_time_days=10, on_hand=35)
    assert plan.avg_daily_demand == pytest.approx(10)
    assert plan.demand_over_lead_time == pytest.approx(100)
    assert plan.days_of_cover == pytest.approx(3.5)
    assert plan.stockout_date == date(2024, 1, 8)


def test_plan_monthly_forecast_uses_calendar_days() -> None:
    monthly = pd.DataFrame(
        {"date": pd.date_range("2024-01-01", periods=3, freq="MS"), "yhat": [310.0, 290.0, 310.0]}
    )
    plan = plan_inventory(monthly, 1.0, lead_time_days=40, on_hand=320)
    assert plan.avg_daily_demand == pytest.approx(10)  # 910 units over 91 days
    assert plan.demand_over_lead_time == pytest.approx(400)
    assert plan.stockout_date == date(2024, 2, 2)  # 310 in January, the 10 left on Feb 1


def test_single_row_forecast_needs_freq_for_its_length() -> None:
    one = pd.DataFrame({"date": ["2024-01-05"], "yhat": [70.0]})
    assert plan_inventory(one, 1.0).avg_daily_demand == 70
    assert plan_inventory(one, 1.0, freq="W-FRI").avg_daily_demand == pytest.approx(10)


def test_negative_forecast_counts_as_zero_demand() -> None:
    forecast = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=2), "yhat": [-5.0, 4.0]})
    assert plan_inventory(forecast, 0.0, lead_time_days=2).demand_over_lead_time == 4


def test_to_dict_is_json_safe() -> None:
    plan = plan_inventory(daily_forecast(10.0), 3.0, on_hand=np.float64(50))
    data = plan.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["stockout_date"] == "2024-01-06"
    assert data["eoq"] is None and data["order_now"] is True
    assert set(data) == {f for f in InventoryPlan.__dataclass_fields__}
    assert all(type(v) in (float, bool, str, type(None)) for v in data.values())


# ----------------------------------------------------------------------------- warnings


def test_warnings_stockout_before_lead_time_and_below_reorder_point() -> None:
    plan = plan_inventory(daily_forecast(10.0), 3.0, on_hand=50, lead_time_days=7)
    found = {w["code"]: w for w in inventory_warnings(plan)}
    assert set(found) == {"stockout_before_lead_time", "below_reorder_point"}
    assert found["stockout_before_lead_time"]["severity"] == "critical"
    assert "2024-01-06" in found["stockout_before_lead_time"]["message"]
    assert found["below_reorder_point"]["severity"] == "warning"
    assert all(set(w) == {"code", "severity", "message"} for w in found.values())


def test_warnings_only_below_reorder_point() -> None:
    plan = plan_inventory(daily_forecast(10.0), 3.0, on_hand=80, lead_time_days=7)
    assert [w["code"] for w in inventory_warnings(plan)] == ["below_reorder_point"]


def test_no_warnings_with_enough_stock() -> None:
    plan = plan_inventory(daily_forecast(10.0), 3.0, on_hand=500, lead_time_days=7)
    assert inventory_warnings(plan) == []
    assert plan.order_now is False


def test_a_slow_mover_with_centuries_of_cover_has_no_stockout_date() -> None:
    """Cover beyond the calendar used to overflow pd.Timedelta (a 500 on /forecast)."""
    import pandas as pd

    from restock.inventory import plan_inventory

    forecast = pd.DataFrame({"date": pd.date_range("2026-01-01", periods=30),
                             "yhat": [0.02] * 30})
    plan = plan_inventory(forecast, 0.1, on_hand=2500.0)
    assert plan.days_of_cover > 100_000 and plan.stockout_date is None
    assert plan_inventory(forecast, 0.1, on_hand=1e308).stockout_date is None
