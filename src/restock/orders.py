"""A supplier's constraints on a suggested order, and the explanation of every order.

The inventory maths (:func:`restock.inventory.replenishment_levels`) ends at an order-up-to
level; the raw order is that level minus the inventory position (on hand + on order) when
the position is at or below the reorder point. A supplier then has a say, applied here in
this order, each step from the previous one's quantity:

1. **minimum order quantity** (``moq``): a smaller order is raised to it;
2. **order multiple** (case pack): the order is rounded *up* to a multiple;
3. **cap**: at most ``max_order_qty``, and at most ``max_stock`` - inventory position; with
   a multiple the cap is rounded *down* to a multiple so the order stays whole cases.

A cap that would leave less than the smallest allowed order while an order is needed
keeps that smallest order: an order the maths asks for is never silently turned into
zero. The smallest allowed order is the ``moq`` rounded up to whole cases, at least one
case; without a case pack, the ``moq`` or one unit (the order itself if it is less), and
never more than ``max_order_qty``, the supplier's hard limit (an upload checks that the
``moq`` in whole cases fits under it, :class:`restock.query.OrderConstraints`).

Each step that changed the quantity adds its warning code (``order_raised_to_moq``,
``order_rounded_to_multiple``, ``order_capped``) and a step to the order's explanation.

Pure numpy over [N] arrays, one row per series: ``/forecast`` runs it for one series and
``/plan`` for thousands, so the two answers cannot differ. A constraint that is not set is
NaN (``moq`` NaN counts as 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from restock.inventory import make_warning
from restock.query import MULTIPLE_SLACK, round_up_to_multiple

#: the warning code of each constraint step, in the order the steps apply
STEP_CODES = ("order_raised_to_moq", "order_rounded_to_multiple", "order_capped")


@dataclass(frozen=True)
class ConstrainedOrders:
    """The quantity after each step ([N] arrays) and which steps changed it."""

    raw: np.ndarray  # order-up-to level - inventory position where an order is needed, else 0
    after_moq: np.ndarray
    after_multiple: np.ndarray
    quantity: np.ndarray  # after the cap: the suggested order
    cap: np.ndarray  # the cap that applied (inf: none), after rounding down to the multiple
    cap_by: np.ndarray  # which bound set the cap: "max_order_qty" or "max_stock"
    changed: dict[str, np.ndarray]  # STEP_CODES -> bool [N]


def constrain(raw: np.ndarray, position: np.ndarray, *, moq: np.ndarray,
              order_multiple: np.ndarray, max_order_qty: np.ndarray,
              max_stock: np.ndarray) -> ConstrainedOrders:
    """The suggested orders after the supplier's constraints (see the module docstring);
    ``raw`` is 0 where no order is needed, and stays 0."""
    raw = np.asarray(raw, dtype=float)
    needed = raw > 0
    floor_qty = np.nan_to_num(np.asarray(moq, dtype=float), nan=0.0)
    multiple = np.asarray(order_multiple, dtype=float)
    cased = needed & np.isfinite(multiple)
    with np.errstate(invalid="ignore", divide="ignore"):  # rows without a multiple: masked
        def up(values: np.ndarray) -> np.ndarray:
            return np.where(cased, round_up_to_multiple(values, multiple), values)

        raised = needed & (raw < floor_qty)
        after_moq = np.where(raised, floor_qty, raw)
        after_multiple = up(after_moq)
        by_order = np.nan_to_num(np.asarray(max_order_qty, dtype=float), nan=np.inf)
        by_stock = np.nan_to_num(np.asarray(max_stock, dtype=float) - position, nan=np.inf)
        cap = np.minimum(by_order, by_stock)
        cap = np.where(cased & np.isfinite(cap),
                       np.floor(cap / multiple + MULTIPLE_SLACK) * multiple, cap)
        # the smallest order allowed (module docstring): whole cases hold max_order_qty
        # by the upload's check, a unit may not (max_order_qty 0.5 of a kilo)
        smallest = np.where(cased, up(np.maximum(floor_qty, multiple)),
                            np.minimum(np.maximum(floor_qty, np.minimum(after_multiple, 1.0)),
                                       by_order))
    over = needed & (after_multiple > cap)
    quantity = np.where(over, np.minimum(after_multiple, np.maximum(cap, smallest)),
                        after_multiple)
    rounded = cased & (after_multiple > after_moq * (1 + MULTIPLE_SLACK))
    return ConstrainedOrders(
        raw=raw, after_moq=after_moq, after_multiple=after_multiple, quantity=quantity,
        cap=cap, cap_by=np.where(by_order <= by_stock, "max_order_qty", "max_stock"),
        changed=dict(zip(STEP_CODES, (raised, rounded, over))))


def constraint_warnings(orders: ConstrainedOrders, row: int = 0) -> list[dict[str, str]]:
    """One row's constraint warnings in the shape every layer shows (``/forecast``)."""
    found = []
    if orders.changed["order_raised_to_moq"][row]:
        found.append(make_warning(
            "order_raised_to_moq", "info",
            f"The order of {orders.raw[row]:,.2f} was raised to the minimum order quantity "
            f"{orders.after_moq[row]:,.2f}."))
    if orders.changed["order_rounded_to_multiple"][row]:
        found.append(make_warning(
            "order_rounded_to_multiple", "info",
            f"The order was rounded up from {orders.after_moq[row]:,.2f} to "
            f"{orders.after_multiple[row]:,.2f}, a whole number of order multiples."))
    if orders.changed["order_capped"][row]:
        found.append(make_warning(
            "order_capped", "warning", _cap_text(orders, row)))
    return found


def _cap_text(orders: ConstrainedOrders, row: int) -> str:
    cap, quantity, by = float(orders.cap[row]), float(orders.quantity[row]), orders.cap_by[row]
    if quantity > cap:
        return (f"{by} allows at most {max(cap, 0.0):,.2f}, less than the smallest allowed "
                f"order; the order is kept at {quantity:,.2f} (check {by} against the "
                "reorder point)")
    return f"The order of {orders.after_multiple[row]:,.2f} was capped at {quantity:,.2f} by {by}."


def explanations(levels: dict[str, np.ndarray], orders: ConstrainedOrders,
                 policy: dict[str, np.ndarray], on_hand: np.ndarray, on_order: np.ndarray,
                 ) -> list[list[dict[str, Any]]]:
    """Each row's order, step by step: demand over lead time and review period, + safety
    stock (the reorder point), + order quantity (the order-up-to level), - inventory
    position (the raw order), then each constraint step that changed it. Every step is
    ``{"step", "quantity", "text"}`` with ``quantity`` the running figure after it.

    ``levels`` is what ``replenishment_levels`` returned, ``policy`` the per-row
    ``lead_time_days``, ``review_period_days``, ``service_level`` and ``cover_days``, and
    ``target_fill_rate`` when one sized the safety stock instead."""
    count = len(orders.raw)

    def column(values: Any) -> list[Any]:
        return np.broadcast_to(np.asarray(values), (count,)).tolist()

    fill = policy.get("target_fill_rate")
    sized_for = [f"{'empirical, ' if method == 'empirical' else ''}"
                 + (f"fill rate {fill:g}" if fill is not None else f"service level {level:g}")
                 for method, level in zip(column(levels.get("safety_stock_method", "normal")),
                                          column(policy["service_level"]))]
    rows = zip(sized_for, *map(column, (
        policy["lead_time_days"], policy["review_period_days"],
        policy["cover_days"], levels["demand_over_protection_interval"], levels["safety_stock"],
        levels["reorder_point"], levels["order_quantity"], levels["eoq"], levels["max_level"],
        on_hand, on_order, levels["inventory_position"], levels["order_now"], orders.raw,
        orders.after_moq, orders.after_multiple, orders.quantity, orders.cap, orders.cap_by,
        *(orders.changed[code] for code in STEP_CODES))))
    out = []
    for (sizing, lead, review, cover, demand, safety, rop, size, eoq, top, stock, ordered,
         position, now, raw, moq, cased, final, cap, cap_by, raised, rounded, capped) in rows:
        how = "EOQ" if math.isfinite(eoq) else f"{cover:g} days of demand"
        steps = [
            _step("demand_over_protection_interval", demand,
                  f"expected demand over lead time {lead:g} d + review period {review:g} d: "
                  f"{demand:,.2f}"),
            _step("reorder_point", rop, f"+ safety stock {safety:,.2f} ({sizing}) = "
                                        f"reorder point {rop:,.2f}"),
            _step("order_up_to_level", top, f"+ order quantity {size:,.2f} ({how}) = "
                                            f"order-up-to level {top:,.2f}"),
        ]
        if math.isnan(stock):
            steps.append(_step("order", None, "on hand unknown: no order suggested"))
        elif not now:
            steps.append(_step("order", 0.0, f"inventory position {position:,.2f} (on hand "
                                             f"{stock:,.2f} + on order {ordered:,.2f}) is above "
                                             f"the reorder point: no order"))
        else:
            steps.append(_step("order", raw, f"- inventory position {position:,.2f} (on hand "
                                             f"{stock:,.2f} + on order {ordered:,.2f}) = order "
                                             f"{raw:,.2f}"))
        if raised:
            steps.append(_step("order_raised_to_moq", moq,
                               f"raised to the minimum order quantity: {moq:,.2f}"))
        if rounded:
            steps.append(_step("order_rounded_to_multiple", cased,
                               f"rounded up to whole order multiples: {cased:,.2f}"))
        if capped:
            steps.append(_step("order_capped", final,
                               f"capped by {cap_by} at {final:,.2f}" if final <= cap else
                               f"{cap_by} leaves room for {max(cap, 0.0):,.2f}, below the "
                               f"smallest allowed order: kept {final:,.2f}"))
        out.append(steps)
    return out


def _step(step: str, quantity: float | None, text: str) -> dict[str, Any]:
    return {"step": step, "quantity": None if quantity is None else round(quantity, 6),
            "text": text}


def explanation_text(steps: list[dict[str, Any]]) -> str:
    """An explanation as one CSV cell: its steps' texts joined by ``; ``."""
    return "; ".join(step["text"] for step in steps)
