"""Policy simulation: would the recommended reorder points have kept their promise?

A model version's backtest holds, per series, rolling-origin windows: what the model would
have forecast from each cutoff (``backtest_yhat``) and what was then sold (``backtest_y``).
This module replays an inventory policy over those windows, period by period, as if the
planner had followed it:

- the periods are the union of the series' windows (each window starts ``step_size``
  periods after the previous one, :func:`restock.models.ensemble.backtest_step`), ending at
  the series' last observed period;
- at period ``t`` the policy is planned from the forecast of the *latest window whose first
  period is not after t* (made at that window's cutoff), from its step at ``t`` onwards,
  never from a later window: the replay uses only forecasts that existed at that time;
- each period: arrivals come in, demand is served from stock (the rest is backordered and
  served when stock arrives), then the inventory position (on hand + on order) is
  reviewed (every period, or every ``review_period_days``; every policy is planned for a
  review period of at least one period, :func:`replayed_policy`) and, at or below the reorder
  point, an order brings it up to the max level; it arrives ``lead`` periods later (at the
  end of period ``t + lead``, so the lead time's demand is exposed, as the reorder point
  assumes). The lead time is fixed, or drawn per order from a normal law with the policy's
  spread (``numpy`` generator seeded with ``seed``, the same draws for every policy);
- each policy starts at its own max level (order-up-to) with nothing on order, as if its
  previous order had just arrived.

Three policies run on the same demand (:data:`POLICIES`):

- ``restock``: the plan serving gives (:func:`restock.inventory.plan_for_daily_demand`),
  with sigma from the backtest residuals as :func:`restock.serving.aggregation.error_sigma`
  computes it, taken at the forecast's age (a forecast ``a`` periods old covers the lead
  time with its steps ``a + 1 ..``; :func:`restock_sigma`). The sigma uses every window's
  residuals (the error scale the version publishes); only the *forecasts* are restricted
  to what was known at each period;
- ``seed``: the original design's rule, the same forecast but the safety stock from the
  standard deviation of the history before the simulated period;
- ``min_max``: no forecast and no safety stock: min = average historical demand over the
  lead time plus review period, max = min + ``cover_days`` of it.

Measured per series and pooled over the selection: cycle service level (replenishment
cycles, delimited by order arrivals, without a stockout; the trailing cycle included),
fill rate (demand served from stock when asked / demand), stockout periods, average on
hand at the end of a period (units, and value with a unit cost) and orders placed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from restock import inventory
from restock.calendar import frequency_of
from restock.errors import InvalidParameterError, UnknownSeriesError
from restock.models.ensemble import backtest_step
from restock.models.intervals import sigma_per_step
from restock.plotting import render_simulation_png
from restock.query import MAX_COST, Filter, ForecastQuery, InventoryPolicy, _Declared
from restock.serving import aggregation, selection
from restock.snapshot import Snapshot

POLICIES = ("restock", "seed", "min_max")
#: series replayed per request at most (each is a Python loop over its periods)
MAX_SERIES = 500
MAX_SEED = 2**32 - 1


class SimulationOptions(_Declared):
    """Which series to replay (the filters of a forecast request, declared there) and the
    simulation's own options; the policy is an ``InventoryPolicy``."""

    product_id: Filter = ForecastQuery.model_fields["product_id"]
    store_id: Filter = ForecastQuery.model_fields["store_id"]
    category: Filter = ForecastQuery.model_fields["category"]
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the lead-time draws")
    unit_cost: float | None = Field(None, gt=0, le=MAX_COST,
                                    description="cost of one unit: average stock as value")
    start: date | None = Field(None, description="first simulated day (default: backtest's)")
    end: date | None = Field(None, description="last simulated day (default: backtest's)")
    plot: bool = Field(False, description="render a PNG chart; its URL comes back as plot_url")

    @model_validator(mode="after")
    def _ordered(self) -> "SimulationOptions":
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError("start must not be after end")
        return self


# -------------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Windows:
    """One series' backtest windows laid out on its simulated periods ``0 .. span - 1``."""

    starts: np.ndarray  # [W] first period of each window
    columns: list[np.ndarray]  # per window, its backtest columns in step order
    steps: list[np.ndarray]  # per window, the horizon step of each of those columns
    span: int


def windows_of(backtest_steps: np.ndarray, actual: np.ndarray) -> Windows | None:
    """The windows a series was backtested in (columns where its actual is known).

    Columns are ordered by (cutoff, step) (:func:`restock.snapshot.from_frames`), so a
    window begins wherever the step does not increase. None: never backtested.
    """
    steps = np.asarray(backtest_steps, dtype=np.int64)
    if not steps.size:
        return None
    begins = np.flatnonzero(np.r_[True, steps[1:] <= steps[:-1]])
    groups = np.split(np.arange(steps.size), begins[1:])
    kept = [g[~np.isnan(actual[g])] for g in groups]
    kept = [g for g in kept if g.size]
    if not kept:
        return None
    horizon = int(steps.max())
    stride = backtest_step(horizon)
    starts = np.arange(len(kept)) * stride
    span = int(max(s + int(steps[g].max()) for s, g in zip(starts, kept)))
    return Windows(starts, kept, [steps[g] for g in kept], span)


def spread_actuals(windows: Windows, actual: np.ndarray) -> np.ndarray:
    """Demand per simulated period from the windows' actuals (overlaps hold the same sale)."""
    demand = np.full(windows.span, np.nan)
    for start, columns, steps in zip(windows.starts, windows.columns, windows.steps):
        demand[start + steps - 1] = actual[columns]
    return np.nan_to_num(np.clip(demand, 0.0, None))


def forecast_at(windows: Windows, predicted: np.ndarray, t: int) -> tuple[np.ndarray, int]:
    """The forecast known at period ``t`` and its age in periods: the latest window starting
    at or before ``t``, from its step at ``t`` on (empty past its horizon)."""
    window = int(np.searchsorted(windows.starts, t, side="right")) - 1
    if window < 0:
        raise ValueError(f"period {t} is before the first backtest window")
    age = t - int(windows.starts[window])
    ahead = windows.steps[window] >= age + 1
    return np.clip(np.nan_to_num(predicted[windows.columns[window][ahead]]), 0.0, None), age


# --------------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Levels:
    """A policy's reorder point and max level at each simulated period."""

    reorder: np.ndarray
    top: np.ndarray


def _plan(path: np.ndarray, days_per_period: float, sigma_daily: float,
          policy: InventoryPolicy) -> inventory.InventoryPlan:
    spans = np.full(len(path), max(1, round(days_per_period)))
    daily = inventory.spread_over_days(path, spans) if len(path) else np.zeros(1)
    return inventory.plan_for_daily_demand(
        date.min, daily, sigma_daily, service_level=policy.service_level,
        lead_time_days=policy.lead_time_days, lead_time_std_days=policy.lead_time_std_days,
        review_period_days=policy.review_period_days, ordering_cost=policy.ordering_cost,
        holding_cost=policy.holding_cost, cover_days=policy.cover_days,
        target_fill_rate=policy.target_fill_rate)


def forecast_levels(windows: Windows, predicted: np.ndarray, sigma_daily: np.ndarray,
                    days_per_period: float, policy: InventoryPolicy) -> Levels:
    """Reorder point and max level per period, planned from the forecast known then.

    ``sigma_daily[a]`` is the daily error sigma of a forecast ``a`` periods old (the last
    value serves older ones): one value is the same sigma whatever the age.
    """
    plans = []
    for t in range(windows.span):
        path, age = forecast_at(windows, predicted, t)
        sigma = float(sigma_daily[min(age, len(sigma_daily) - 1)])
        plans.append(_plan(path, days_per_period, sigma, policy))
    return Levels(np.array([p.reorder_point for p in plans]),
                  np.array([p.max_level for p in plans]))


def min_max_levels(span: int, average: float, days_per_period: float,
                   policy: InventoryPolicy) -> Levels:
    """The plain rule: min = average demand over lead time + review, max = min + cover."""
    plan = _plan(np.array([average]), days_per_period, 0.0, policy)
    return Levels(np.full(span, plan.reorder_point), np.full(span, plan.max_level))


# ----------------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class Replay:
    """What happened, period by period, under one policy."""

    demand: np.ndarray
    served: np.ndarray  # from stock, in the period the demand came
    on_hand: np.ndarray  # end of period; negative = backorders
    ordered: np.ndarray  # quantity ordered at the end of each period
    arrived: np.ndarray  # quantity received at the start of each period
    stockout: np.ndarray  # bool: some demand of the period was not served from stock
    cycles: int
    cycles_without_stockout: int

    @property
    def orders(self) -> int:
        return int((self.ordered > 0).sum())


def lead_periods(count: int, policy: InventoryPolicy, days_per_period: float,
                 rng: np.random.Generator) -> np.ndarray:
    """``count`` lead times in whole periods (at least 1): fixed, or normal draws in days."""
    days = np.full(count, policy.lead_time_days)
    if policy.lead_time_std_days > 0:
        days = rng.normal(policy.lead_time_days, policy.lead_time_std_days, count)
    return np.maximum(1, np.ceil(np.clip(days, 0.0, None) / days_per_period - 1e-9)).astype(int)


def replay(demand: np.ndarray, levels: Levels, leads: np.ndarray, review_every: int = 1,
           start_stock: float | None = None) -> Replay:
    """Run the policy over ``demand``; the ``k``-th order takes ``leads[k]`` periods.

    ``start_stock`` defaults to the first max level. An order placed at the end of
    period ``t`` with lead ``L`` is received at the start of period ``t + L + 1``.
    """
    n = len(demand)
    stock = float(levels.top[0] if start_stock is None else start_stock)
    served, on_hand, ordered, arrived = (np.zeros(n) for _ in range(4))
    due = np.zeros(n + 1)
    on_order, placed = 0.0, 0
    cycles, good, short_in_cycle = 0, 0, False
    for t in range(n):
        if due[t] > 0:
            cycles, good, short_in_cycle = cycles + 1, good + (not short_in_cycle), False
            stock += due[t]
            on_order -= due[t]
            arrived[t] = due[t]
        served[t] = min(max(stock, 0.0), demand[t])
        short_in_cycle |= served[t] < demand[t] - 1e-9
        stock -= demand[t]
        on_hand[t] = stock
        position = stock + on_order
        if t % review_every == 0 and position <= levels.reorder[t] \
                and levels.top[t] > position:
            quantity = float(levels.top[t] - position)
            ordered[t] = quantity
            on_order += quantity
            arrival = t + int(leads[placed]) + 1
            placed += 1
            if arrival < n:
                due[arrival] += quantity
    cycles, good = cycles + 1, good + (not short_in_cycle)  # the trailing cycle
    return Replay(np.asarray(demand, float), served, on_hand, ordered, arrived,
                  served < np.asarray(demand) - 1e-9, cycles, good)


def metrics(runs: list[Replay], target: float, unit_cost: float | None) -> dict[str, Any]:
    """Pooled figures of ``runs`` (one per series): fill rate and CSL against the target."""
    demand = sum(float(r.demand.sum()) for r in runs)
    served = sum(float(r.served.sum()) for r in runs)
    cycles = sum(r.cycles for r in runs)
    good = sum(r.cycles_without_stockout for r in runs)
    periods = max((len(r.demand) for r in runs), default=0)
    average = sum(float(np.clip(r.on_hand, 0.0, None).mean()) for r in runs if len(r.on_hand))
    fill = served / demand if demand > 0 else None
    csl = good / cycles if cycles else None
    return {
        "target_service_level": target,
        "cycle_service_level": _round(csl), "fill_rate": _round(fill),
        "csl_vs_target": _round(None if csl is None else csl - target),
        "fill_rate_vs_target": _round(None if fill is None else fill - target),
        "cycles": cycles, "stockout_periods": int(sum(int(r.stockout.sum()) for r in runs)),
        "periods": periods, "demand": _round(demand), "served_from_stock": _round(served),
        "average_on_hand": _round(average),
        "average_on_hand_value": _round(None if unit_cost is None else average * unit_cost),
        "orders": sum(r.orders for r in runs),
    }


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


# ------------------------------------------------------------------------------ a selection


def restock_sigma(snapshot: Snapshot, row: int, ages: int, lead_time_days: float,
                  days_per_period: float) -> np.ndarray:
    """restock's daily error sigma for a forecast of each age ``0 .. ages - 1`` periods.

    Serving plans from a fresh forecast: the RMS backtest error of steps ``1 .. L`` (the
    lead time in periods, :func:`restock.serving.aggregation.error_sigma`). A forecast ``a``
    periods old covers the lead time with its steps ``a + 1 .. a + L``, whose errors are
    larger; age 0 is exactly serving's sigma.
    """
    lead = max(1, math.ceil(lead_time_days / days_per_period))
    residual = aggregation.series_residuals(snapshot, np.array([row]))[0]
    per_step = sigma_per_step(snapshot.backtest_steps, residual, ages + lead)
    return np.array([inventory.sigma_daily_from_period(float(np.mean(per_step[a:a + lead])),
                                                       days_per_period) for a in range(ages)])


@dataclass(frozen=True)
class SeriesRun:
    """One series' simulated dates and its replay under each policy."""

    row: int
    dates: list[str]
    runs: dict[str, Replay]


def simulate_series(snapshot: Snapshot, row: int, policy: InventoryPolicy,
                    options: SimulationOptions) -> SeriesRun | None:
    """Replay every policy for series ``row``; None when it was never backtested.

    The replay looks at stock once a period, so each policy is planned for a review period
    of at least one period (:func:`replayed_policy`).
    """
    policy = replayed_policy(policy, frequency_of(snapshot.freq).days_per_period)
    actual = np.asarray(snapshot.backtest_y[row], dtype=float)
    predicted = np.asarray(snapshot.backtest_yhat[row], dtype=float)
    windows = windows_of(snapshot.backtest_steps, actual)
    if windows is None:
        return None
    days_per_period = frequency_of(snapshot.freq).days_per_period
    history = np.asarray(snapshot.history[row], dtype=float)
    observed = np.flatnonzero(~np.isnan(history))
    end = int(observed[-1]) if observed.size else len(history) - 1
    first = end - windows.span + 1  # history position of simulated period 0
    dates = [snapshot.history_dates[first + t] if first + t >= 0 else "" for t in
             range(windows.span)]
    before = history[:max(first, 0)]
    before = before[~np.isnan(before)]
    if not before.size:  # no history before the backtest: the backtest's own actuals
        before = spread_actuals(windows, actual)

    sigma_restock = restock_sigma(snapshot, row, windows.span, policy.lead_time_days,
                                  days_per_period)
    sigma_seed = np.array([inventory.sigma_daily_from_period(float(np.std(before)),
                                                             days_per_period)])
    levels = {
        "restock": forecast_levels(windows, predicted, sigma_restock, days_per_period, policy),
        "seed": forecast_levels(windows, predicted, sigma_seed, days_per_period, policy),
        "min_max": min_max_levels(windows.span, float(np.mean(before)), days_per_period,
                                  policy)}

    keep = np.ones(windows.span, bool)
    if options.start is not None:
        keep &= np.array([d >= options.start.isoformat() for d in dates])
    if options.end is not None:
        keep &= np.array([bool(d) and d <= options.end.isoformat() for d in dates])
    chosen = np.flatnonzero(keep)
    if not chosen.size:
        return SeriesRun(row, [], {})
    low, high = int(chosen[0]), int(chosen[-1]) + 1
    periods = high - low
    leads_fixed = math.ceil(policy.lead_time_days / days_per_period - 1e-9)
    if leads_fixed >= periods:
        raise InvalidParameterError(
            f"lead_time_days {policy.lead_time_days:g} is {leads_fixed} periods, not shorter "
            f"than the simulated period ({periods} periods, {dates[low]} to {dates[high - 1]}):"
            " no order could arrive in it", {"parameter": "lead_time_days",
                                              "value": policy.lead_time_days,
                                              "simulated_periods": periods})
    review = max(1, round(policy.review_period_days / days_per_period))
    demand = spread_actuals(windows, actual)[low:high]
    runs = {}
    for name, level in levels.items():
        leads = lead_periods(periods, policy, days_per_period, np.random.default_rng(options.seed))
        runs[name] = replay(demand, Levels(level.reorder[low:high], level.top[low:high]),
                            leads, review)
    return SeriesRun(row, dates[low:high], runs)


def replayed_policy(policy: InventoryPolicy, days_per_period: float) -> InventoryPolicy:
    """``policy`` with a review period of at least one period of the data.

    Sales are known per period, so the replay reviews stock at the end of a period, after a
    whole period's demand: a policy planned for continuous review would then order up to a
    period's demand late, and its safety stock would look too small when it is the
    bucketing that is at fault (monthly data: half a month of demand short on average).
    Planning for the review the replay really does keeps the test fair; with daily data it
    adds one day to the protection interval.
    """
    review = max(policy.review_period_days, days_per_period)
    return policy.model_copy(update={"review_period_days": review})


def simulate(snapshot: Snapshot, version: str, policy: InventoryPolicy,
             options: SimulationOptions) -> tuple[dict[str, Any], list[SeriesRun]]:
    """The simulation report for a selection, and its replays (for the chart).

    Raises ``UnknownSeriesError`` (unknown filter values), ``NoBacktestError`` (nothing
    selected was backtested, or not in the date range) and ``InvalidParameterError`` (too
    many series, a lead time as long as the period).
    """
    chosen = selection.select(snapshot, options.product_id, options.store_id,
                              options.category)
    if len(chosen.rows) > MAX_SERIES:
        raise InvalidParameterError(
            f"the selection holds {len(chosen.rows)} series; simulate at most {MAX_SERIES} "
            "at once (filter by product, store or category)",
            {"parameter": "selection", "series": int(len(chosen.rows))})
    done = [simulate_series(snapshot, int(row), policy, options) for row in chosen.rows]
    skipped = [str(snapshot.uids[row]) for row, run in zip(chosen.rows, done) if run is None]
    ran = [run for run in done if run is not None and run.dates]
    if not ran:
        where = "" if options.start is None and options.end is None else \
            f" between {options.start or 'the start'} and {options.end or 'the end'}"
        raise NoBacktestError(
            f"no backtest period for the selection{where}: the model version has no "
            "out-of-sample forecasts to replay (too short a history, or outside the range)",
            {"filters": {k: v for k, v in chosen.filters.items() if v},
             "start": str(options.start) if options.start else None,
             "end": str(options.end) if options.end else None})
    target = policy.service_level
    report = {
        "model_version": version,
        "frequency": snapshot.freq,
        "selection": {**chosen.filters, "series": len(ran)},
        "period": {"start": min(r.dates[0] for r in ran), "end": max(r.dates[-1] for r in ran),
                   "periods": max(len(r.dates) for r in ran)},
        "policy": replayed_policy(policy, frequency_of(snapshot.freq).days_per_period)
        .model_dump(),
        "seed": options.seed,
        "unit_cost": options.unit_cost,
        "total": {name: metrics([r.runs[name] for r in ran], target, options.unit_cost)
                  for name in POLICIES},
        "series": [{"unique_id": str(snapshot.uids[r.row]),
                    "start": r.dates[0], "end": r.dates[-1],
                    **{name: metrics([r.runs[name]], target, options.unit_cost)
                       for name in POLICIES}} for r in ran],
        "skipped": skipped,
    }
    return report, ran


class NoBacktestError(UnknownSeriesError):
    """Nothing in the selection (or the date range) has backtest forecasts to replay.

    An ``UnknownSeriesError`` (404) with its own code: the filters name nothing that can
    be simulated, as an unknown product names nothing that can be forecast.
    """

    code = "no_backtest"


def chart(report: dict[str, Any], runs: list[SeriesRun]) -> bytes:
    """The PNG of a simulation: per policy, the selection's on hand, orders and stockout
    periods per date (series summed on the dates they share)."""
    dates = sorted({d for run in runs for d in run.dates})
    position = {d: i for i, d in enumerate(dates)}
    on_hand, ordered, stockout = {}, {}, {}
    for name in POLICIES:
        on_hand[name], ordered[name] = np.zeros(len(dates)), np.zeros(len(dates))
        stockout[name] = np.zeros(len(dates), bool)
        for run in runs:
            at = np.array([position[d] for d in run.dates])
            replayed = run.runs[name]
            np.add.at(on_hand[name], at, replayed.on_hand)
            np.add.at(ordered[name], at, replayed.ordered)
            stockout[name][at] |= replayed.stockout
    chosen = {k: v for k, v in report["selection"].items() if isinstance(v, list) and v}
    title = ", ".join(f"{k}={','.join(v)}" for k, v in chosen.items()) or "All products"
    return render_simulation_png(np.array(dates, dtype="datetime64[D]"), on_hand, ordered,
                                 stockout, title=f"Policy simulation: {title}")
