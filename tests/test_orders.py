"""Supplier constraints on an order (restock.orders): each step, its order, its warning code,
never a silent zero, and the explanation that lists them."""

from __future__ import annotations

import numpy as np
import pytest

from restock import orders

NAN = np.nan


def codes(result: orders.ConstrainedOrders) -> list[list[str]]:
    """Each row's warning codes, in step order."""
    flags = np.stack([result.changed[code] for code in orders.STEP_CODES], axis=1).tolist()
    return [[code for code, hit in zip(orders.STEP_CODES, row) if hit] for row in flags]


def constrain(raw: float, position: float = 0.0, moq: float = NAN, multiple: float = NAN,
              max_order: float = NAN, max_stock: float = NAN) -> tuple[float, list[str]]:
    result = orders.constrain(np.array([raw]), np.array([position]), moq=np.array([moq]),
                              order_multiple=np.array([multiple]),
                              max_order_qty=np.array([max_order]),
                              max_stock=np.array([max_stock]))
    return float(result.quantity[0]), codes(result)[0]


@pytest.mark.parametrize("given, expected", [
    ({"raw": 37.5}, (37.5, [])),  # no constraint: the maths' order
    ({"raw": 3, "moq": 10}, (10, ["order_raised_to_moq"])),
    ({"raw": 13, "moq": 10}, (13, [])),
    ({"raw": 13, "multiple": 12}, (24, ["order_rounded_to_multiple"])),
    ({"raw": 24, "multiple": 12}, (24, [])),  # already whole cases
    ({"raw": 0.1 + 0.2, "multiple": 0.1}, (pytest.approx(0.3), [])),  # float error is no case
    ({"raw": 3, "moq": 10, "multiple": 12},
     (12, ["order_raised_to_moq", "order_rounded_to_multiple"])),
    ({"raw": 100, "max_order": 50}, (50, ["order_capped"])),
    ({"raw": 100, "max_order": 50, "multiple": 12},  # 108, then capped to whole cases
     (48, ["order_rounded_to_multiple", "order_capped"])),
    ({"raw": 50, "position": 80, "max_stock": 100}, (20, ["order_capped"])),
    ({"raw": 50, "position": 80, "max_stock": 100, "max_order": 10}, (10, ["order_capped"])),
    ({"raw": 0, "moq": 10, "multiple": 6, "max_stock": 0}, (0, [])),  # no order needed
])
def test_each_constraint_in_order(given: dict, expected: tuple) -> None:
    assert constrain(**given) == expected


@pytest.mark.parametrize("given, expected", [
    ({"raw": 30, "position": 120, "max_stock": 100}, 1),  # one unit
    ({"raw": 30, "position": 120, "max_stock": 100, "multiple": 6}, 6),  # one case
    ({"raw": 30, "position": 120, "max_stock": 100, "moq": 10, "multiple": 6}, 12),
    ({"raw": 100, "position": 70, "max_stock": 100, "moq": 40}, 40),  # cap below the moq
    ({"raw": 5, "multiple": 12, "max_order": 10}, 12),  # a cap under one case
])
def test_a_cap_never_turns_a_needed_order_into_zero(given: dict, expected: float) -> None:
    quantity, codes = constrain(**given)
    assert quantity == expected and "order_capped" in codes


def test_a_cap_never_raises_an_order() -> None:
    # 0.5 units needed, 0.2 of room: the smallest allowed (one unit) would be more
    assert constrain(0.5, position=0.8, max_stock=1.0) == (0.5, ["order_capped"])


@pytest.mark.parametrize("given, expected", [
    # cases of 0.3 under a max of 1: three cases, not "one unit" rounded up to four (1.2)
    ({"raw": 144, "multiple": 0.3, "max_order": 1}, 0.9),
    # no case pack, a max under one unit (kilos): the max, not one unit
    ({"raw": 144, "max_order": 0.5}, 0.5),
    ({"raw": 30, "position": 120, "max_stock": 100, "multiple": 0.3}, 0.3),  # one case
    ({"raw": 30, "position": 120, "max_stock": 100, "max_order": 0.5}, 0.5),
])
def test_the_smallest_order_kept_never_breaks_max_order_qty(given: dict, expected: float) -> None:
    quantity, codes = constrain(**given)
    assert quantity == pytest.approx(expected) and "order_capped" in codes
    assert quantity <= given.get("max_order", np.inf) + 1e-12


def test_warnings_and_explanation_name_each_step() -> None:
    levels = {"demand_over_protection_interval": np.array([70.0]),
              "safety_stock": np.array([10.0]), "reorder_point": np.array([80.0]),
              "order_quantity": np.array([300.0]), "eoq": np.array([NAN]),
              "max_level": np.array([380.0]), "inventory_position": np.array([40.0]),
              "order_now": np.array([True])}
    result = orders.constrain(np.array([340.0]), np.array([40.0]), moq=np.array([NAN]),
                              order_multiple=np.array([48.0]), max_order_qty=np.array([NAN]),
                              max_stock=np.array([350.0]))
    assert result.quantity.tolist() == [288.0]  # 340 -> 384 (8 cases) -> cap 310 -> 6 cases
    assert codes(result) == [["order_rounded_to_multiple", "order_capped"]]
    steps = orders.explanations(
        levels, result, {"lead_time_days": np.array([7.0]), "review_period_days": 0.0,
                         "service_level": 0.95, "cover_days": 30.0},
        np.array([30.0]), np.array([10.0]))[0]
    assert [s["step"] for s in steps] == [
        "demand_over_protection_interval", "reorder_point", "order_up_to_level", "order",
        "order_rounded_to_multiple", "order_capped"]
    assert [s["quantity"] for s in steps] == [70, 80, 380, 340, 384, 288]
    assert "on hand 30.00 + on order 10.00" in steps[3]["text"]
    assert "30 days of demand" in steps[2]["text"]
    assert [w["code"] for w in orders.constraint_warnings(result)] == [
        "order_rounded_to_multiple", "order_capped"]
    assert orders.explanation_text(steps).count("; ") == len(steps) - 1
    assert "(service level 0.95)" in steps[1]["text"]
    # what sized the safety stock is what the step names
    sized = orders.explanations(
        {**levels, "safety_stock_method": np.array(["empirical"])}, result,
        {"lead_time_days": 7.0, "review_period_days": 0.0, "service_level": 0.95,
         "cover_days": 30.0, "target_fill_rate": 0.98}, np.array([30.0]), np.array([10.0]))[0]
    assert "(empirical, fill rate 0.98)" in sized[1]["text"]
