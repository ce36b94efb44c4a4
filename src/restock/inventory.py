"""Inventory planning from a demand forecast: pure functions, no I/O.

A safety stock is only as good as its error estimate, so everything here starts from the
forecast (expected demand) and ``sigma_daily``, the standard deviation of the *daily*
forecast error measured on the backtest, rather than from the spread of the history.

Formulas (S. Chopra & P. Meindl, *Supply Chain Management*, ch. "Managing uncertainty in a
supply chain: safety inventory"; E. Silver, D. Pyke & R. Peterson, *Inventory Management and
Production Planning and Scheduling*, ch. 7):

- demand over an interval of ``P`` days has standard deviation
  ``sigma_P = sqrt(P * sigma_d^2 + d^2 * sigma_L^2)`` (independent daily errors, lead time
  with standard deviation ``sigma_L`` days, average daily demand ``d``);
- cycle service level (CSL, probability of no stockout in a replenishment cycle):
  ``safety_stock = z * sigma_P`` with ``z = Phi^-1(CSL)``;
- fill rate: expected shortage per cycle ``ESC = sigma_P * G(k)`` with ``k = ss / sigma_P``
  and the unit normal loss ``G(k) = phi(k) - k * (1 - Phi(k))``; ``fill_rate = 1 - ESC / Q``;
- reorder point ``= expected demand over P + safety_stock``;
- periodic review every ``R`` days: stock found at a review must last until the order of
  the *next* review arrives, so the protection interval is ``P = R + L`` (SPP's (R, s, S)
  system) and the reorder point is then the (R, S) order-up-to level
  ``expected demand over (R + L) + safety_stock`` (:func:`order_up_to_level`). With
  ``R = 0`` (continuous review) ``P = L`` and everything reduces to the issue's
  lead-time formulas;
- EOQ ``= sqrt(2 K D / h)`` (K per order, D demand per year, h holding cost per unit per
  year);
- min = reorder point, max = reorder point + order quantity (EOQ when ordering and holding
  costs are both given, else ``cover_days`` of average demand).

Intermittent demand (``intermittent``: zero in more than ``INTERMITTENT_ZERO_SHARE`` of
the recent periods, the one definition the ``intermittent_demand`` warning uses too) is
not normal: most lead times see no demand, a few see a lump, and ``d +/- z sigma`` both
overstates the typical need and understates the lump. For such a series, when its history
is given, the reorder point is read off the **empirical distribution** of demand over the
protection interval (:func:`empirical_reorder_points`) instead: the sums of every block of
``P`` consecutive days (``P / days_per_period`` periods, the last one pro rata) of its own
recent history, scaled so that their mean is the forecast demand over ``P`` (the shape
comes from the history, the level from the forecast). The reorder point is the
service-level quantile of those sums (the smallest ``s`` with ``P(D <= s) >= CSL``), and
the safety stock is ``s`` minus expected demand, which can be negative (a lumpy item's
quantile can sit below its mean). Overlapping blocks use every period and need no random
draws, so the answer is deterministic. The lead time's spread is not in the blocks (they
are ``P`` days long); a series with fewer than ``EMPIRICAL_MIN_BLOCKS`` blocks keeps the
normal formula. ``safety_stock_method`` says which method each answer used.

A **fill-rate target** (``target_fill_rate``) replaces the service level when given: the
reorder point is the smallest one whose expected shortage per cycle is at most
``(1 - target) * Q``, from the normal loss function (``k`` solved by bisection; ``z``
reports ``k``) or from the same empirical block sums (their mean shortage above ``s``).

Conventions of :func:`plan_inventory`:

- Per-day demand: each forecast row's quantity is spread evenly over the calendar days from
  its date up to the next row's date (the last row spans one period of ``freq``), so daily,
  weekly (any weekday) and month-start monthly forecasts all become a daily path. Demand
  over the lead time is the integral of that path over the first ``L`` days (fractional days
  allowed); beyond the horizon the path continues at the horizon's average daily demand.
- ``sigma_daily`` is per day. Backtest errors of weekly or monthly periods convert with
  :func:`sigma_daily_from_period` (``sigma_period / sqrt(days_per_period)``, independent
  daily errors).
- The inventory position is ``on_hand`` + ``on_order`` (stock ordered, not yet received):
  the reorder decision and the order compare it with the levels, while ``days_of_cover``
  counts on hand only (an open order's arrival day is not known). When on hand is
  unknown, ``days_of_cover``, ``stockout_date``, ``order_now`` and ``suggested_order_qty``
  are null, never guessed.
- Zero demand: with zero sigma the safety stock, reorder point and levels are all zero;
  cover is infinite, reported as null ``days_of_cover`` and ``stockout_date``.
- Negative forecast values are treated as zero demand (demand cannot be negative; the
  serving layer reports the clipping as a warning).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import ndtr

from restock.errors import InvalidParameterError
from restock.query import SERVICE_LEVEL_ABOVE, SERVICE_LEVEL_MAX

_NORMAL = NormalDist()

DAYS_PER_YEAR = 365.0
#: beyond a century of cover there is no stockout date worth showing
MAX_COVER_DAYS = 36_500.0
#: a series with more zero periods than this share of its recent history is intermittent
INTERMITTENT_ZERO_SHARE = 0.5
#: fewer protection-interval blocks of history than this: too few for a quantile
EMPIRICAL_MIN_BLOCKS = 10

Severity = Literal["info", "warning", "critical"]


# ---------------------------------------------------------------------------- validation


def _invalid(name: str, value: Any, requirement: str) -> InvalidParameterError:
    shown = value if isinstance(value, (int, float, str, type(None))) else repr(value)
    return InvalidParameterError(
        f"{name} {requirement} (got {value!r})", {"parameter": name, "value": shown}
    )


def _finite(name: str, value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _invalid(name, value, "must be a number") from None
    if not math.isfinite(number):
        raise _invalid(name, value, "must be a finite number")
    return number


def _non_negative(name: str, value: float) -> float:
    number = _finite(name, value)
    if number < 0:
        raise _invalid(name, value, "must be >= 0")
    return number


def _positive(name: str, value: float) -> float:
    number = _finite(name, value)
    if number <= 0:
        raise _invalid(name, value, "must be > 0")
    return number


def _service_level(value: float, name: str = "service_level") -> float:
    number = _finite(name, value)
    if not SERVICE_LEVEL_ABOVE < number <= SERVICE_LEVEL_MAX:
        raise _invalid(name, value,
                       f"must be above {SERVICE_LEVEL_ABOVE} and at most {SERVICE_LEVEL_MAX}")
    return number


# ------------------------------------------------------------------------- building blocks


def z_for_service_level(service_level: float) -> float:
    """The standard normal quantile ``Phi^-1(CSL)``: safety stock in units of sigma."""
    return _NORMAL.inv_cdf(_service_level(service_level))


def demand_std_over_interval(
    sigma_daily: float,
    interval_days: float,
    avg_daily_demand: float = 0.0,
    lead_time_std_days: float = 0.0,
) -> float:
    """Standard deviation of demand over ``interval_days``: ``sqrt(P sigma_d^2 + d^2 sigma_L^2)``.

    Forecast error grows with the square root of the interval (independent daily errors);
    an uncertain lead time adds ``d * sigma_L`` because a late delivery means more days of
    demand to cover. Any consistent time unit works (the Chopra & Meindl examples use weeks).
    """
    sigma = _non_negative("sigma_daily", sigma_daily)
    interval = _positive("interval_days", interval_days)
    demand = _non_negative("avg_daily_demand", avg_daily_demand)
    lead_std = _non_negative("lead_time_std_days", lead_time_std_days)
    return math.sqrt(interval * sigma**2 + demand**2 * lead_std**2)


def safety_stock(
    sigma_daily: float,
    lead_time_days: float,
    *,
    service_level: float,
    avg_daily_demand: float = 0.0,
    lead_time_std_days: float = 0.0,
) -> float:
    """Safety stock for a cycle service level: ``z * sqrt(L sigma_d^2 + d^2 sigma_L^2)``.

    For periodic review pass ``lead_time_days = R + L`` (the protection interval).
    """
    sigma_interval = demand_std_over_interval(
        sigma_daily, lead_time_days, avg_daily_demand, lead_time_std_days
    )
    return z_for_service_level(service_level) * sigma_interval


def reorder_point(demand_over_lead_time: float, safety_stock: float) -> float:
    """Order when the inventory position falls to expected lead-time demand plus safety stock."""
    return _non_negative("demand_over_lead_time", demand_over_lead_time) + _non_negative(
        "safety_stock", safety_stock
    )


def order_up_to_level(demand_over_review_and_lead_time: float, safety_stock: float) -> float:
    """Periodic review target: expected demand over ``R + L`` plus safety stock over ``R + L``.

    An order placed at a review must last until the order of the *next* review arrives,
    ``R + L`` days later; hence the longer protection interval.
    """
    return _non_negative(
        "demand_over_review_and_lead_time", demand_over_review_and_lead_time
    ) + _non_negative("safety_stock", safety_stock)


def unit_normal_loss(k: float) -> float:
    """``G(k) = phi(k) - k (1 - Phi(k))``: expected shortage per unit of sigma at ``k`` sigmas."""
    k = _finite("k", k)
    return _NORMAL.pdf(k) - k * (1.0 - _NORMAL.cdf(k))


def cycle_service_level(safety_stock: float, sigma_lead_time: float) -> float:
    """Probability of no stockout in a cycle, ``Phi(ss / sigma_L)``, for a given safety stock.

    With no uncertainty (``sigma_lead_time = 0``) a non-negative safety stock never runs out.
    """
    ss = _finite("safety_stock", safety_stock)
    sigma = _non_negative("sigma_lead_time", sigma_lead_time)
    if sigma == 0:
        return 1.0 if ss >= 0 else 0.0
    return _NORMAL.cdf(ss / sigma)


def expected_shortage_per_cycle(safety_stock: float, sigma_lead_time: float) -> float:
    """ESC ``= sigma_L * G(ss / sigma_L)``: units short per replenishment cycle, on average."""
    ss = _finite("safety_stock", safety_stock)
    sigma = _non_negative("sigma_lead_time", sigma_lead_time)
    if sigma == 0:
        return max(-ss, 0.0)
    return sigma * unit_normal_loss(ss / sigma)


def fill_rate(expected_shortage: float, order_quantity: float) -> float:
    """Fraction of demand served from stock: ``1 - ESC / Q`` (each cycle sees ``Q`` units)."""
    esc = _non_negative("expected_shortage", expected_shortage)
    quantity = _positive("order_quantity", order_quantity)
    return max(0.0, 1.0 - esc / quantity)


def safety_stock_for_fill_rate(
    target_fill_rate: float, order_quantity: float, sigma_lead_time: float
) -> float:
    """The smallest safety stock whose fill rate reaches ``target_fill_rate``.

    Solves ``sigma_L * G(k) = (1 - fill_rate) * Q`` for ``k`` by bisection (``G`` is strictly
    decreasing) and returns ``k * sigma_L``. The result can be negative: with large orders a
    high fill rate is reached with less than the expected lead-time demand on hand.
    """
    target = _finite("target_fill_rate", target_fill_rate)
    if not 0 < target < 1:
        raise _invalid("target_fill_rate", target_fill_rate, "must be strictly between 0 and 1")
    quantity = _positive("order_quantity", order_quantity)
    sigma = _non_negative("sigma_lead_time", sigma_lead_time)
    if sigma == 0:
        return 0.0
    return float(k_for_normal_loss(np.array([(1.0 - target) * quantity / sigma]))[0]) * sigma


def unit_normal_loss_rows(k: np.ndarray) -> np.ndarray:
    """:func:`unit_normal_loss` of every element (scipy's ``ndtr`` is ``Phi``)."""
    k = np.asarray(k, dtype=float)
    return np.exp(-0.5 * k**2) / math.sqrt(2.0 * math.pi) - k * (1.0 - ndtr(k))


def k_for_normal_loss(wanted: np.ndarray) -> np.ndarray:
    """The smallest ``k`` with ``G(k) <= wanted``, element-wise, by bisection (``G`` is
    strictly decreasing); ``k`` stays within [-10, 10], which brackets any useful target
    (``G(-10) ~ 10``, ``G(10) ~ 7.7e-25``)."""
    wanted = np.asarray(wanted, dtype=float)
    low, high = np.full(wanted.shape, -10.0), np.full(wanted.shape, 10.0)
    for _ in range(100):
        middle = (low + high) / 2
        above = unit_normal_loss_rows(middle) > wanted
        low, high = np.where(above, middle, low), np.where(above, high, middle)
    return high


def eoq(annual_demand: float, ordering_cost: float, holding_cost: float) -> float:
    """Economic order quantity ``sqrt(2 K D / h)``: balances ordering against holding costs.

    ``ordering_cost`` K per order, ``annual_demand`` D per year, ``holding_cost`` h per unit
    per year (any common time unit works).
    """
    demand = _non_negative("annual_demand", annual_demand)
    k = _positive("ordering_cost", ordering_cost)
    h = _positive("holding_cost", holding_cost)
    quantity = math.sqrt(2.0 * k * demand / h)
    if not math.isfinite(quantity):
        raise InvalidParameterError(
            f"ordering_cost {k:g} over holding_cost {h:g} makes the EOQ overflow; "
            "give costs in a realistic range", {"parameter": "ordering_cost", "value": k,
                                                "holding_cost": h})
    return quantity


def min_max_levels(reorder_point: float, order_quantity: float) -> tuple[float, float]:
    """``(min, max)`` = ``(reorder point, reorder point + order quantity)``."""
    rop = _non_negative("reorder_point", reorder_point)
    return rop, rop + _non_negative("order_quantity", order_quantity)


def demand_over_days(daily_demand: Sequence[float] | np.ndarray, days: float) -> float:
    """Expected demand over the first ``days`` days of a daily path (fractional days pro rata).

    Past the end of the path demand continues at the path's average daily rate, so a lead
    time longer than the forecast horizon still gets a sensible estimate.
    """
    path = np.asarray(daily_demand, dtype=float)
    span = _non_negative("days", days)
    return float(demand_over_days_rows(path[None, :], span)[0])


def days_of_cover(on_hand: float, daily_demand: Sequence[float] | np.ndarray) -> float | None:
    """Days until cumulative expected demand uses up ``on_hand`` (linear within a day).

    ``None`` means infinite cover (no demand at all). Past the horizon the path continues at
    its average rate. Nothing on hand (or backorders) gives 0.
    """
    stock = _finite("on_hand", on_hand)
    path = np.asarray(daily_demand, dtype=float)
    cover = float(days_of_cover_rows(np.array([stock]), path[None, :])[0])
    return None if math.isnan(cover) else cover


def stockout_date(start: date | pd.Timestamp, cover_days: float | None) -> date | None:
    """The calendar day on which expected demand first exceeds the stock (``None``: never).

    Day 0 is ``start`` (the first forecast day), so 2.5 days of cover run out on day 2.
    """
    if cover_days is None or cover_days > MAX_COVER_DAYS:
        return None  # a slow mover's stock outlasts any planning horizon (and the calendar)
    cover = _non_negative("days_of_cover", cover_days)
    first = start.date() if isinstance(start, datetime) else start  # a Timestamp is one too
    return first + timedelta(days=math.floor(cover))


def suggested_order(on_hand: float, reorder_point: float, max_level: float) -> tuple[bool, float]:
    """``(order_now, quantity)``: at or below the reorder point, order up to the max level.

    Nothing is ordered when the max level is not above the stock (e.g. zero demand), so
    ``order_now`` is true exactly when the suggested quantity is positive.
    """
    stock = _finite("on_hand", on_hand)
    rop = _non_negative("reorder_point", reorder_point)
    top = _non_negative("max_level", max_level)
    if stock <= rop and top > stock:
        return True, top - stock
    return False, 0.0


def sigma_daily_from_period(sigma_period: float, days_per_period: float) -> float:
    """Per-day error sigma from a per-period one: ``sigma_period / sqrt(days_per_period)``.

    Assumes independent daily errors, the same assumption that makes the lead-time sigma
    grow with ``sqrt(L)``; a weekly backtest sigma of 70 is a daily sigma of ~26.5.
    """
    sigma = _non_negative("sigma_period", sigma_period)
    return sigma / math.sqrt(_positive("days_per_period", days_per_period))


def daily_demand_path(
    forecast: pd.DataFrame, freq: str | None = None
) -> tuple[pd.Timestamp, np.ndarray]:
    """``(first day, expected demand per day)`` from a forecast of any period length.

    Each row's ``yhat`` is spread evenly over the days from its date to the next row's; the
    last row spans one period of ``freq`` (inferred from the dates when not given; the
    previous gap, or one day, when pandas cannot infer it). Negative values count as zero.
    """
    if not isinstance(forecast, pd.DataFrame) or not {"date", "yhat"} <= set(forecast.columns):
        raise _invalid("forecast", type(forecast).__name__, "must be a DataFrame with date, yhat")
    if forecast.empty:
        raise _invalid("forecast", "empty", "must have at least one row")
    dates = pd.DatetimeIndex(pd.to_datetime(forecast["date"])).normalize()
    values = forecast["yhat"].to_numpy(dtype=float)
    order = np.argsort(dates.asi8, kind="stable")
    dates, values = dates[order], values[order]
    days = dates.asi8 // 86_400_000_000_000
    gaps = np.diff(days)
    if (gaps <= 0).any():
        raise _invalid("forecast", "duplicate dates", "must have one row per date")
    last_span = _last_period_days(dates, gaps, freq)
    spans = np.append(gaps, last_span).astype(int)
    return dates[0], spread_over_days(values, spans)


def spread_over_days(values: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Expected demand per day: each period's quantity spread evenly over its ``spans`` days.

    Negative values count as zero. The serving layer calls this directly with the spans
    its snapshot stores, so a request builds the daily path without pandas; ``values``
    may be [N, periods], one series per row (a plan).
    """
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).all():
        raise _invalid("forecast", "non-finite yhat", "must have finite yhat values")
    return np.repeat(np.clip(values, 0.0, None) / spans, spans, axis=-1)


def _last_period_days(dates: pd.DatetimeIndex, gaps: np.ndarray, freq: str | None) -> int:
    if freq is None and len(dates) >= 3:
        freq = pd.infer_freq(dates)
    if freq is not None:
        try:
            offset = pd.tseries.frequencies.to_offset(freq)
        except (TypeError, ValueError):
            raise _invalid("freq", freq, "must be a pandas frequency such as D, W or MS") from None
        return max(1, ((dates[-1] + offset) - dates[-1]).days)
    return int(gaps[-1]) if gaps.size else 1


# ------------------------------------------------------------------ many series at once


def demand_over_days_rows(paths: np.ndarray, days: np.ndarray | float) -> np.ndarray:
    """:func:`demand_over_days` of every row of ``paths`` ([N, D]) over its own ``days``
    (one number or one per row): what a plan of thousands of series runs."""
    paths = np.asarray(paths, dtype=float)
    count, size = paths.shape
    span = np.broadcast_to(np.asarray(days, dtype=float), (count,))
    if size == 0:
        return np.zeros(count)
    cumulative = np.concatenate([np.zeros((count, 1)), np.cumsum(paths, axis=1)], axis=1)
    index = np.arange(count)
    whole = np.minimum(np.floor(span).astype(np.int64), size)
    partial = np.where(whole < size, paths[index, np.minimum(whole, size - 1)], 0.0)
    inside = cumulative[index, whole] + (span - whole) * partial
    beyond = cumulative[:, -1] + (span - size) * paths.mean(axis=1)
    return np.where(span <= size, inside, beyond)


def days_of_cover_rows(on_hand: np.ndarray, paths: np.ndarray) -> np.ndarray:
    """:func:`days_of_cover` of every row; NaN where the cover is infinite (no demand) or
    the stock unknown (NaN)."""
    paths = np.asarray(paths, dtype=float)
    stock = np.asarray(on_hand, dtype=float)
    count, size = paths.shape
    if size == 0:
        return np.full(count, np.nan)
    cumulative = np.cumsum(paths, axis=1)
    index = np.arange(count)
    # the first day whose cumulative demand exceeds the stock (demand is never negative)
    day = (cumulative <= stock[:, None]).sum(axis=1)
    before = np.where(day > 0, cumulative[index, np.maximum(day - 1, 0)], 0.0)
    last = np.minimum(day, size - 1)
    with np.errstate(all="ignore"):  # the rows these divisions fail for are masked below
        within = day + (stock - before) / paths[index, last]
        past = size + (stock - cumulative[:, -1]) / paths.mean(axis=1)
    cover = np.where(day >= size, past, within)
    cover = np.where(stock <= 0, 0.0, cover)
    return np.where((cumulative[:, -1] <= 0) | np.isnan(stock), np.nan, cover)


def replenishment_levels(
    paths: np.ndarray,
    sigma_daily: np.ndarray,
    on_hand: np.ndarray,
    *,
    service_level: float | np.ndarray,
    lead_time_days: float | np.ndarray,
    lead_time_std_days: float | np.ndarray,
    review_period_days: float | np.ndarray,
    ordering_cost: float | np.ndarray | None,
    holding_cost: float | np.ndarray | None,
    cover_days: float | np.ndarray,
    on_order: float | np.ndarray = 0.0,
    target_fill_rate: float | None = None,
    history: np.ndarray | None = None,
    days_per_period: float = 1.0,
) -> dict[str, np.ndarray]:
    """The plan's levels for N series at once: the one implementation of the formulas
    in the module docstring that both a single forecast and a whole plan run.

    ``paths`` is expected demand per day [N, D], ``sigma_daily``, ``on_hand`` and
    ``on_order`` [N] (NaN on hand: unknown stock; the order compares the inventory
    position, on hand + on order). Every policy value is one number or one per row (so item
    settings can later override a row's lead time or service level); they are validated
    declarations, not checked again. ``order_now``/``suggested_order_qty`` are False/0
    where the stock is unknown and ``days_of_cover`` NaN (the callers show ``None``).
    ``history`` [N, T] is each series' recent demand per period of ``days_per_period``
    days (NaN before it starts): with it, intermittent series get the empirical method.
    """
    paths = np.asarray(paths, dtype=float)
    count = paths.shape[0]
    level = np.broadcast_to(np.asarray(service_level, dtype=float), (count,))
    distinct, where = np.unique(level, return_inverse=True)
    z = np.array([z_for_service_level(float(v)) for v in distinct])[where.reshape(-1)]
    lead = np.asarray(lead_time_days, dtype=float)
    protection = lead + np.asarray(review_period_days, dtype=float)
    avg_daily = paths.mean(axis=1) if paths.shape[1] else np.zeros(count)
    sigma = np.asarray(sigma_daily, dtype=float)
    lead_std = np.asarray(lead_time_std_days, dtype=float)
    sigma_p = np.sqrt(protection * sigma**2 + avg_daily**2 * lead_std**2)
    demand_protection = demand_over_days_rows(paths, protection)
    if ordering_cost is None or holding_cost is None:
        economic = np.full(count, np.nan)
        quantity = np.asarray(cover_days, dtype=float) * avg_daily
    else:
        economic = np.sqrt(2.0 * np.asarray(ordering_cost, dtype=float)
                           * (avg_daily * DAYS_PER_YEAR) / np.asarray(holding_cost, dtype=float))
        quantity = economic
    safety = safety_stock_rows(z, sigma_p, demand_protection, level, target_fill_rate,
                               np.broadcast_to(quantity, (count,)), history,
                               np.broadcast_to(protection, (count,)) / days_per_period)
    z, ss, rop = safety["z"], safety["safety_stock"], safety["reorder_point"]
    top = rop + quantity
    stock = np.asarray(on_hand, dtype=float)
    position = stock + np.asarray(on_order, dtype=float)
    order_now = (position <= rop) & (top > position)  # False for NaN (unknown) stock
    return {
        "z": z, "avg_daily_demand": avg_daily, "sigma_protection_interval": sigma_p,
        "safety_stock": ss, "demand_over_lead_time": demand_over_days_rows(paths, lead),
        "demand_over_protection_interval": demand_protection, "reorder_point": rop,
        "eoq": economic, "order_quantity": np.broadcast_to(quantity, (count,)),
        "max_level": top, "days_of_cover": days_of_cover_rows(stock, paths),
        "inventory_position": np.broadcast_to(position, (count,)), "order_now": order_now,
        "suggested_order_qty": np.where(order_now, top - position, 0.0),
        "expected_shortage_per_cycle": safety["expected_shortage_per_cycle"],
        "safety_stock_method": safety["safety_stock_method"],
    }


def intermittent(history: np.ndarray) -> np.ndarray:
    """Per row of ``history`` [N, T] (NaN before a series starts): zero in more than
    ``INTERMITTENT_ZERO_SHARE`` of its periods. False for a row without any period."""
    history = np.asarray(history, dtype=float)
    observed = (~np.isnan(history)).sum(axis=-1)
    with np.errstate(all="ignore"):
        share = (history == 0).sum(axis=-1) / observed
    return np.where(observed > 0, share > INTERMITTENT_ZERO_SHARE, False)


def safety_stock_rows(
    z: np.ndarray, sigma_p: np.ndarray, demand_protection: np.ndarray,
    service_level: np.ndarray, target_fill_rate: float | None, quantity: np.ndarray,
    history: np.ndarray | None, protection_periods: np.ndarray,
) -> dict[str, np.ndarray]:
    """``z``, safety stock, reorder point, expected shortage per cycle and the method of
    each row: the normal formula (for the service level, or for ``target_fill_rate``),
    then the empirical method for the intermittent rows of ``history`` that have enough
    of it (module docstring)."""
    count = len(sigma_p)
    if target_fill_rate is not None:
        with np.errstate(all="ignore"):  # sigma 0: any k; the safety stock is 0 anyway
            wanted = (1.0 - target_fill_rate) * quantity / sigma_p
        # no order quantity (no forecast demand): a fill rate of nothing says nothing, so
        # the service level's z stands (the bisection would run to its bracket, k = 10)
        z = np.where(quantity > 0,
                     np.where(sigma_p > 0,
                              k_for_normal_loss(np.nan_to_num(wanted, posinf=1e300)), 0.0), z)
    ss = z * sigma_p
    with np.errstate(all="ignore"):
        esc = np.where(sigma_p > 0, sigma_p * unit_normal_loss_rows(ss / sigma_p),
                       np.maximum(-ss, 0.0))
    rop = demand_protection + ss
    method = np.full(count, "normal", dtype=object)
    if history is not None:
        chosen = np.flatnonzero(intermittent(history))
        if chosen.size:
            found = empirical_reorder_points(
                history[chosen], protection_periods[chosen], demand_protection[chosen],
                service_level[chosen], target_fill_rate, quantity[chosen])
            usable = np.isfinite(found["reorder_point"])
            rows = chosen[usable]
            rop[rows] = found["reorder_point"][usable]
            esc[rows] = found["expected_shortage_per_cycle"][usable]
            ss[rows] = rop[rows] - demand_protection[rows]
            z = z.astype(float, copy=True)
            z[rows] = np.nan  # no normal quantile behind an empirical one
            method[rows] = "empirical"
    return {"z": z, "safety_stock": ss, "reorder_point": rop,
            "expected_shortage_per_cycle": esc, "safety_stock_method": method}


def empirical_reorder_points(
    history: np.ndarray, periods: np.ndarray, demand_protection: np.ndarray,
    service_level: np.ndarray, target_fill_rate: float | None, quantity: np.ndarray,
) -> dict[str, np.ndarray]:
    """Reorder point and expected shortage per cycle of each row from the empirical
    distribution of its demand over the protection interval (module docstring).

    ``history`` [N, T] per period (NaN before the start), ``periods`` [N] the interval in
    periods (fractional: the last period pro rata), ``demand_protection`` [N] the forecast
    demand over it, which the block sums are scaled to. NaN where a row has fewer than
    ``EMPIRICAL_MIN_BLOCKS`` blocks or sold nothing in them (the normal formula then).
    """
    blocks = block_sums(history, periods)  # [N, K], NaN where a block is incomplete
    valid = np.isfinite(blocks)
    count = valid.sum(axis=1)
    with np.errstate(all="ignore"):
        mean = np.where(valid, blocks, 0.0).sum(axis=1) / count
        scale = np.where(mean > 0, demand_protection / mean, 0.0)
    scaled = np.sort(np.where(valid, blocks * scale[:, None], np.inf), axis=1)  # NaN last
    rows = np.arange(len(blocks))
    last = np.maximum(count - 1, 0)
    if target_fill_rate is None:
        # the smallest s with P(D <= s) >= CSL: the inverted-CDF quantile
        rank = np.clip(np.ceil(service_level * count).astype(np.int64) - 1, 0, last)
        rop = scaled[rows, rank] if scaled.shape[1] else np.full(len(blocks), np.nan)
    else:
        rop = _fill_rate_points(scaled, count, (1.0 - target_fill_rate) * quantity)
    with np.errstate(all="ignore"):
        excess = np.maximum(scaled - rop[:, None], 0.0)  # inf (no block) where invalid
        shortage = np.where(np.isinf(excess), 0.0, excess).sum(axis=1) / count
    # a history that sold nothing in any block has no shape to scale to the forecast
    enough = (count >= EMPIRICAL_MIN_BLOCKS) & (mean > 0)
    return {"reorder_point": np.where(enough, rop, np.nan),
            "expected_shortage_per_cycle": np.where(enough, shortage, np.nan)}


def block_sums(history: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Every row's sums of ``periods`` consecutive periods (its own, fractional: the
    whole ones plus that fraction of the next), one per start, NaN where a block reaches
    a missing period or past the end. [N, T].

    Rows sharing an interval (one policy: all of them) are done together by slicing,
    which is ten times faster than gathering per row."""
    history = np.asarray(history, dtype=float)
    count, size = history.shape
    out = np.full((count, size), np.nan)
    filled = np.nan_to_num(history)
    cumulative = np.concatenate([np.zeros((count, 1)), np.cumsum(filled, axis=1)], axis=1)
    missing = np.concatenate([np.zeros((count, 1)), np.cumsum(np.isnan(history), axis=1)],
                             axis=1)
    periods = np.broadcast_to(np.asarray(periods, dtype=float), (count,))
    for value in np.unique(periods).tolist():
        whole = math.floor(value)
        part = value - whole
        span = whole + (part > 0)  # periods each block touches
        if span == 0 or span > size:
            continue
        starts = size - span + 1
        rows = np.flatnonzero(periods == value)
        every = len(rows) == count
        total = cumulative if every else cumulative[rows]
        gaps = missing if every else missing[rows]
        sums = total[:, whole:whole + starts] - total[:, :starts]
        if part:
            sums += part * (filled if every else filled[rows])[:, whole:whole + starts]
        complete = gaps[:, span:span + starts] - gaps[:, :starts] == 0
        out[rows, :starts] = np.where(complete, sums, np.nan)
    return out


def _fill_rate_points(scaled: np.ndarray, count: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per row of sorted block sums ``scaled`` (``count`` finite ones first, then inf),
    the smallest ``s`` whose mean shortage ``mean(max(D - s, 0))`` is at most ``allowed``:
    that shortage falls linearly between consecutive sums, so ``s`` is interpolated."""
    finite = np.where(np.isinf(scaled), 0.0, scaled)
    k = np.maximum(count, 1)[:, None]
    total = finite.sum(axis=1, keepdims=True)
    upto = np.cumsum(finite, axis=1)
    position = np.arange(scaled.shape[1])[None, :]
    above = k - 1 - position  # sums strictly after position j (ties make it a bound)
    shortage = (total - upto - above * finite) / k  # mean shortage at s = sorted[j]
    shortage = np.where(position < count[:, None], shortage, 0.0)
    first = np.argmax(shortage <= allowed[:, None], axis=1)  # the first j meeting it
    rows = np.arange(len(scaled))
    at, level = shortage[rows, first], finite[rows, first]
    before = np.where(first > 0, shortage[rows, np.maximum(first - 1, 0)], total[:, 0] / k[:, 0])
    lower = np.where(first > 0, finite[rows, np.maximum(first - 1, 0)], 0.0)
    with np.errstate(all="ignore"):  # between the previous sum (or 0) and this one
        slope = (before - at) / (level - lower)
        point = np.where(slope > 0, lower + (before - allowed) / slope, level)
    return np.clip(np.minimum(point, level), 0.0, None)


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class InventoryPlan:
    """Everything an inventory planner acts on, for one selection's forecast.

    Quantities are in units of the forecast, times in days. Fields that need ``on_hand``
    are ``None`` when it is unknown; ``days_of_cover``/``stockout_date`` are ``None`` when
    there is no demand (infinite cover); ``eoq`` is ``None`` without both costs.
    """

    service_level: float
    z: float
    lead_time_days: float
    lead_time_std_days: float
    review_period_days: float
    protection_interval_days: float
    avg_daily_demand: float
    demand_over_lead_time: float
    demand_over_protection_interval: float
    sigma_daily: float
    sigma_protection_interval: float
    safety_stock: float
    reorder_point: float
    min_level: float
    max_level: float
    order_quantity: float
    eoq: float | None
    on_hand: float | None
    on_order: float | None
    inventory_position: float | None
    days_of_cover: float | None
    stockout_date: date | None
    order_now: bool | None
    suggested_order_qty: float | None
    expected_shortage_per_cycle: float
    fill_rate: float | None
    target_fill_rate: float | None = None
    safety_stock_method: str = "normal"  # "normal" or "empirical" (intermittent demand)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values: plain floats (6 decimals), ISO dates, ``None`` for unknowns."""
        out: dict[str, Any] = {}
        for key in _PLAN_FIELDS:
            value = getattr(self, key)
            if isinstance(value, date):
                out[key] = value.isoformat()
            elif isinstance(value, (bool, str)) or value is None:
                out[key] = value
            else:
                number = float(value)
                out[key] = round(number, 6) if math.isfinite(number) else None
        return out


#: field names in declaration order (``asdict`` deep-copies; every field is a plain value)
_PLAN_FIELDS = tuple(f.name for f in fields(InventoryPlan))


def plan_inventory(
    forecast: pd.DataFrame, sigma_daily: float, *, freq: str | None = None, **policy: Any
) -> InventoryPlan:
    """The inventory plan for a forecast (``date``, ``yhat``) and a daily error sigma.

    ``freq`` is the forecast's pandas frequency (inferred when omitted); see the module
    docstring for how periods become days. ``policy`` is the keyword arguments of
    :func:`plan_for_daily_demand` (service level, lead time, costs, ...).
    """
    start, path = daily_demand_path(forecast, freq)
    return plan_for_daily_demand(start, path, sigma_daily, **policy)


def plan_for_daily_demand(
    start: date,
    path: np.ndarray,
    sigma_daily: float,
    *,
    service_level: float = 0.95,
    lead_time_days: float = 7.0,
    lead_time_std_days: float = 0.0,
    review_period_days: float = 0.0,
    on_hand: float | None = None,
    ordering_cost: float | None = None,
    holding_cost: float | None = None,
    cover_days: float = 30.0,
    on_order: float | None = None,
    target_fill_rate: float | None = None,
    history: np.ndarray | None = None,
    days_per_period: float = 1.0,
) -> InventoryPlan:
    """The inventory plan for expected demand per day (``path``, from day ``start`` on).

    ``ordering_cost`` is per order and ``holding_cost`` per unit per year; giving only one
    of them is an error rather than a silent fallback to ``cover_days``. Arrays only: this
    is what a forecast request runs (see :func:`spread_over_days`). ``history`` (demand
    per period of ``days_per_period`` days, NaN before the start) lets an intermittent
    series use the empirical method; ``target_fill_rate`` replaces the service level.
    """
    sigma = _non_negative("sigma_daily", sigma_daily)
    level = _service_level(service_level)
    lead = _positive("lead_time_days", lead_time_days)
    lead_std = _non_negative("lead_time_std_days", lead_time_std_days)
    review = _non_negative("review_period_days", review_period_days)
    cover = _positive("cover_days", cover_days)
    stock = None if on_hand is None else _finite("on_hand", on_hand)
    ordered = 0.0 if on_order is None else _non_negative("on_order", on_order)
    if (ordering_cost is None) != (holding_cost is None):
        missing = "holding_cost" if holding_cost is None else "ordering_cost"
        raise _invalid(missing, None, "is needed too: EOQ uses both ordering and holding cost")
    if ordering_cost is not None and holding_cost is not None:
        _positive("ordering_cost", ordering_cost)  # before the arrays take their square root
        _positive("holding_cost", holding_cost)
    if target_fill_rate is not None:
        target = _finite("target_fill_rate", target_fill_rate)
        if not 0 < target < 1:
            raise _invalid("target_fill_rate", target_fill_rate,
                           "must be strictly between 0 and 1")

    rows = replenishment_levels(
        path[None, :], np.array([sigma]), np.array([np.nan if stock is None else stock]),
        service_level=level, lead_time_days=lead, lead_time_std_days=lead_std,
        review_period_days=review, ordering_cost=ordering_cost, holding_cost=holding_cost,
        cover_days=cover, on_order=ordered, target_fill_rate=target_fill_rate,
        history=None if history is None else np.asarray(history, dtype=float)[None, :],
        days_per_period=_positive("days_per_period", days_per_period))
    method = str(rows.pop("safety_stock_method")[0])
    one = {name: float(values[0]) for name, values in rows.items()}
    avg_daily, z, sigma_p, ss = (one[k] for k in ("avg_daily_demand", "z",
                                                   "sigma_protection_interval", "safety_stock"))
    rop, quantity, high = one["reorder_point"], one["order_quantity"], one["max_level"]
    economic = (None if ordering_cost is None or holding_cost is None  # checks the costs
                else eoq(avg_daily * DAYS_PER_YEAR, ordering_cost, holding_cost))
    esc = one["expected_shortage_per_cycle"]
    fill = 1.0 if esc == 0 else (fill_rate(esc, quantity) if quantity > 0 else None)
    cover_left = None if stock is None or math.isnan(one["days_of_cover"]) \
        else one["days_of_cover"]
    order_now, order_qty = ((None, None) if stock is None
                            else (bool(one["order_now"]), one["suggested_order_qty"]))
    return InventoryPlan(
        service_level=level,
        z=z,
        lead_time_days=lead,
        lead_time_std_days=lead_std,
        review_period_days=review,
        protection_interval_days=lead + review,
        avg_daily_demand=avg_daily,
        demand_over_lead_time=one["demand_over_lead_time"],
        demand_over_protection_interval=one["demand_over_protection_interval"],
        sigma_daily=sigma,
        sigma_protection_interval=sigma_p,
        safety_stock=ss,
        reorder_point=rop,
        min_level=rop,
        max_level=high,
        order_quantity=quantity,
        eoq=economic,
        on_hand=stock,
        on_order=ordered,
        inventory_position=None if stock is None else one["inventory_position"],
        days_of_cover=cover_left,
        stockout_date=stockout_date(start, cover_left),
        order_now=order_now,
        suggested_order_qty=order_qty,
        expected_shortage_per_cycle=esc,
        fill_rate=fill,
        target_fill_rate=target_fill_rate,
        safety_stock_method=method,
    )


# ----------------------------------------------------------------------------- warnings


def make_warning(code: str, severity: Severity, message: str) -> dict[str, str]:
    """One warning in the shape every layer shows: ``{code, severity, message}``."""
    return {"code": code, "severity": severity, "message": message}


def inventory_warnings(plan: InventoryPlan) -> list[dict[str, str]]:
    """The inventory warnings of a plan: ``stockout_before_lead_time``, ``below_reorder_point``.

    A stockout expected before a replenishment ordered today can arrive is ``critical``
    (ordering now no longer prevents it); stock under the reorder point is a ``warning``.
    Without ``on_hand`` neither can be judged, so there are none.
    """
    if plan.on_hand is None:
        return []
    found = []
    if plan.days_of_cover is not None and plan.days_of_cover < plan.lead_time_days:
        when = plan.stockout_date.isoformat() if plan.stockout_date else "soon"
        found.append(
            make_warning(
                "stockout_before_lead_time",
                "critical",
                f"Projected stockout on {when}, {plan.days_of_cover:.1f} days from now, "
                f"before an order placed today can arrive ({plan.lead_time_days:g} days).",
            )
        )
    position = plan.inventory_position  # on hand + on order, known with on hand
    if position is not None and position < plan.reorder_point:
        found.append(
            make_warning(
                "below_reorder_point",
                "warning",
                f"The inventory position {position:,.0f} is below the reorder point "
                f"{plan.reorder_point:,.0f}; order {plan.suggested_order_qty or 0:,.0f} units.",
            )
        )
    return found
