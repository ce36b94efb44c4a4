"""Intermittent demand: reorder points from the empirical distribution of protection-interval
demand (hand-computed quantiles), and fill-rate targets for both methods."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from restock.inventory import (
    EMPIRICAL_MIN_BLOCKS,
    block_sums,
    intermittent,
    plan_for_daily_demand,
    safety_stock_for_fill_rate,
)
from restock.errors import InvalidParameterError

#: 20 days, 16 of them without a sale; its 19 two-day sums, sorted, are eleven 0s and
#: 2, 2, 3, 3, 4, 4, 5, 5 (total 28)
LUMPY = np.array([0, 0, 3, 0, 0, 0, 5, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 4, 0, 0], float)
#: a flat forecast whose two-day demand is the history's mean two-day sum, 28 / 19
PATH = np.full(30, 14 / 19)


def plan(path=PATH, history=LUMPY, **policy):
    return plan_for_daily_demand(date(2025, 1, 1), path, 1.0, lead_time_days=2.0,
                                 history=history, **policy)


def test_intermittent_is_more_than_half_zero_periods() -> None:
    rows = np.array([[0, 0, 1, np.nan], [0, 1, 1, 0], [np.nan] * 4])
    assert intermittent(rows).tolist() == [True, False, False]


def test_block_sums_take_the_last_period_pro_rata_and_skip_missing_ones() -> None:
    sums = block_sums(np.array([[1, 2, 3, 4], [np.nan, 2, 3, 4]]), np.array([1.5, 2.0]))
    assert sums[0, :3].tolist() == [2.0, 3.5, 5.0] and np.isnan(sums[0, 3])
    assert np.isnan(sums[1, 0]) and sums[1, 1:3].tolist() == [5.0, 7.0]
    assert np.isnan(sums[1, 3])


@pytest.mark.parametrize(("level", "expected"), [(0.8, 4.0), (0.9, 5.0), (0.55, 0.0),
                                                 (0.6, 2.0)])
def test_the_reorder_point_is_the_service_level_quantile_of_the_block_sums(
        level: float, expected: float) -> None:
    # the smallest s with P(D <= s) >= level: sorted sum number ceil(19 * level)
    result = plan(service_level=level)
    assert result.safety_stock_method == "empirical"
    assert result.reorder_point == pytest.approx(expected)
    assert result.safety_stock == pytest.approx(expected - 28 / 19)
    assert result.to_dict()["z"] is None and result.to_dict()["safety_stock_method"] == \
        "empirical"
    shortage = np.mean(np.maximum(np.sort(block_sums(LUMPY[None], np.array([2.0]))[0, :19])
                                  - expected, 0))
    assert result.expected_shortage_per_cycle == pytest.approx(shortage)


def test_the_block_sums_are_scaled_to_the_forecast() -> None:
    assert plan(path=2 * PATH, service_level=0.8).reorder_point == pytest.approx(8.0)


def test_a_fill_rate_target_interpolates_the_empirical_shortage() -> None:
    # Q = 30 days x 14/19 = 420/19; allowed shortage 5 % of it = 21/19. The mean shortage
    # above s in [0, 2] is (28 - 8 s) / 19 (eight sums above), so s = 7 / 8
    result = plan(target_fill_rate=0.95)
    assert result.order_quantity == pytest.approx(420 / 19)
    assert result.reorder_point == pytest.approx(0.875)
    assert result.expected_shortage_per_cycle == pytest.approx(21 / 19)
    assert result.fill_rate == pytest.approx(0.95)
    assert result.target_fill_rate == 0.95


def test_smooth_or_short_histories_keep_the_normal_formula() -> None:
    smooth = plan(history=LUMPY + 1, service_level=0.9)
    none = plan(history=None, service_level=0.9)
    assert smooth.safety_stock_method == none.safety_stock_method == "normal"
    assert smooth.reorder_point == none.reorder_point
    short = LUMPY[: EMPIRICAL_MIN_BLOCKS]  # 9 two-day blocks
    assert plan(history=short).safety_stock_method == "normal"
    assert plan(history=LUMPY[: EMPIRICAL_MIN_BLOCKS + 1]).safety_stock_method == "empirical"


def test_a_normal_fill_rate_target_is_reached_and_overrides_the_service_level() -> None:
    for level in (0.6, 0.99):
        result = plan(history=None, service_level=level, target_fill_rate=0.98)
        assert result.fill_rate == pytest.approx(0.98, abs=1e-9)
        assert result.safety_stock == pytest.approx(safety_stock_for_fill_rate(
            0.98, result.order_quantity, result.sigma_protection_interval))
        assert result.z == pytest.approx(result.safety_stock / result.sigma_protection_interval)
    with pytest.raises(InvalidParameterError, match="target_fill_rate"):
        plan(target_fill_rate=1.0)


def test_a_history_that_never_sold_keeps_the_normal_formula() -> None:
    """All-zero blocks have no shape to scale to a positive forecast: scaling them would put
    the reorder point at 0 below the expected demand."""
    result = plan(history=np.zeros(60), service_level=0.9)
    assert result.safety_stock_method == "normal"
    assert result.reorder_point > result.demand_over_protection_interval


def test_a_fill_rate_target_without_demand_keeps_the_service_level() -> None:
    """No forecast demand, no order quantity: the fill-rate solve has nothing to size for
    (it used to run to its bracket, z = 10); the service level's z stands."""
    level = plan(np.zeros(30), history=None, service_level=0.95)
    target = plan(np.zeros(30), history=None, service_level=0.95, target_fill_rate=0.98)
    assert target.z == pytest.approx(level.z) and target.safety_stock == level.safety_stock
