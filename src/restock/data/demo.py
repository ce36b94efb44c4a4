"""Realistic synthetic retail sales, for `restock demo-data`, demos, tests and benchmarks.

The generator exists so that every part of restock (ingestion, forecasting, inventory
metrics) can be exercised end to end without real data, and so that benchmarks run on data
shaped like a retailer's: many medium sellers and a few fast movers, weekly and yearly
seasonality that differs by category, a mild trend, promotions, holidays, over-dispersed
noise, ~20 % intermittent slow movers and an ``on_hand`` that comes from a replenishment
policy rather than from thin air.

Stockouts beyond the policy's own (``stockouts``, off by default) come from
:func:`inject_stockouts`, which also works on any other sales frame (the benchmarks run it
on the development sets): supply disruptions that empty the shelf for days on end.

Everything is a numpy array of shape (series, days); the only Python loop is the inventory
simulation over days (each step is vectorised over all series), so 1,000,000 rows take
about a second. One ``numpy.random.default_rng(seed)`` drives every draw in a fixed order:
the same arguments always give the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from restock.calendar import DAYS_PER_YEAR
from restock.errors import InvalidParameterError

DEFAULT_END = date(2026, 10, 31)
"""A fixed default end date: ``date.today()`` would make the output change every day."""

COLUMNS = ("date", "product_id", "store_id", "category", "price", "quantity", "on_hand")

INTERMITTENT_SHARE = 0.2
"""Share of products that are Croston-style slow movers (most days zero)."""

STOCKOUT_RUNS_PER_YEAR = 2
"""Supply disruptions a year per series hit by ``stockouts`` (at least one)."""
STOCKOUT_DAYS = (3, 14)
"""Shortest and longest disruption, in days (rows of daily data)."""


@dataclass(frozen=True)
class _Category:
    """How one category sells; the differences are what make per-series models worthwhile."""

    name: str
    weekly: tuple[float, ...]  # Monday..Sunday, relative (normalised to mean 1)
    yearly_amplitude: float  # log-amplitude of the annual cycle
    yearly_peak_doy: int  # day of year of the annual peak
    median_price: float
    december_lift: float  # extra demand reached on Dec 24, ramping up from Dec 1
    new_year_eve: float
    valentines: float
    july_fourth: float
    black_friday: float


_CATEGORIES = (
    _Category("Beverages", (0.90, 0.85, 0.90, 0.95, 1.15, 1.35, 1.00), 0.35, 196, 2.5,
              0.5, 2.2, 1.0, 1.8, 1.1),
    _Category("Snacks", (0.90, 0.85, 0.90, 1.00, 1.20, 1.30, 0.95), 0.10, 200, 3.0,
              0.8, 1.8, 1.6, 1.5, 1.1),
    _Category("Dairy", (1.00, 0.95, 0.95, 1.00, 1.10, 1.20, 0.85), 0.05, 30, 2.0,
              0.4, 1.1, 1.0, 1.0, 1.0),
    _Category("Household", (0.90, 0.90, 0.90, 0.95, 1.05, 1.30, 1.00), 0.05, 90, 6.0,
              0.3, 1.0, 1.0, 1.0, 1.8),
    _Category("Personal Care", (0.95, 0.95, 0.95, 1.00, 1.05, 1.15, 0.95), 0.10, 350, 5.0,
              0.6, 1.0, 1.3, 1.0, 1.6),
    _Category("Garden", (0.75, 0.75, 0.80, 0.85, 1.00, 1.60, 1.45), 0.90, 140, 12.0,
              0.0, 1.0, 1.0, 1.3, 1.2),
    _Category("Winter", (0.90, 0.90, 0.90, 0.95, 1.05, 1.25, 1.05), 0.90, 15, 20.0,
              0.5, 1.0, 1.0, 1.0, 1.4),
)


def generate_demo_sales(
    products: int = 50,
    stores: int = 2,
    days: int = 730,
    seed: int = 7,
    end: date | None = None,
    stockouts: float = 0.0,
) -> pd.DataFrame:
    """Daily sales of ``products`` x ``stores`` series over ``days`` days ending at ``end``.

    Returns the canonical columns ``date`` (datetime64[ns]), ``product_id`` ("P0001"),
    ``store_id`` ("S01"), ``category``, ``price`` (float, promotional price on promo days),
    ``quantity`` (int64 >= 0, units sold) and ``on_hand`` (int64 >= 0, stock at end of day),
    sorted by product_id, store_id, date with unique keys. Sales are censored by stock: a
    day that runs out sells only what was on the shelf, as in a real till history.
    ``stockouts`` (0 to 1) is the share of series that also suffer supply disruptions
    (:func:`inject_stockouts`, ``STOCKOUT_RUNS_PER_YEAR`` of ``STOCKOUT_DAYS``); their draws
    come from a generator of their own, so the rest of the frame is the same as without.
    """
    if not 0 <= stockouts <= 1:
        raise InvalidParameterError(f"stockouts must be between 0 and 1, got {stockouts!r}")
    for name, value in (("products", products), ("stores", stores), ("days", days)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}")
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=pd.Timestamp(end or DEFAULT_END), periods=days, freq="D")

    category = rng.integers(0, len(_CATEGORIES), size=products)
    calendar = _category_calendar(dates)[category]  # (P, D)
    price, lift = _promotions(rng, products, days, category)
    intermittent = rng.random(products) < INTERMITTENT_SHARE

    # Per-product level: log-normal, so most products sell a few units a day and a few
    # sell dozens; slow movers get a low occurrence rate instead (see below).
    level = np.minimum(rng.lognormal(np.log(4.0), 1.0, products), 400.0)
    occurrence = rng.uniform(0.03, 0.25, products)  # slow movers: P(any sale on a day)
    size_mean = rng.uniform(1.0, 3.0, products)  # slow movers: units when they sell
    dispersion = rng.uniform(3.0, 20.0, products)  # negative-binomial shape k
    slope = rng.normal(0.0, 0.10, products)  # log-trend per year: mild growth or decline
    trend = np.exp(slope[:, None] * (np.arange(days) - days + 1) / DAYS_PER_YEAR)

    store_size = np.sort(rng.lognormal(0.0, 0.3, stores))[::-1]
    affinity = rng.lognormal(0.0, 0.15, (products, stores))  # local taste per product x store
    scale = (store_size[None, :] * affinity).reshape(-1, 1)  # (N, 1), product-major

    # Expected demand per series and day; the replenishment planner knows it too (a
    # retailer forecasts its own calendar and promotions), only the noise surprises it.
    rate = np.where(intermittent, occurrence * size_mean, level)[:, None] * calendar * trend
    mean = np.repeat(rate * lift, stores, axis=0) * scale
    per_product_intermittent = np.repeat(intermittent, stores)

    # Demand draws. Regular: gamma-Poisson (negative binomial), over-dispersed like real
    # tills. Slow movers: a sale happens with a seasonal probability, its size is
    # 1 + Poisson, which is the process Croston's method assumes.
    n_series = products * stores
    k = np.repeat(dispersion, stores)[:, None]
    gamma = rng.gamma(k, 1.0 / k, size=(n_series, days))
    regular = rng.poisson(mean * gamma)
    sizes = np.repeat(size_mean, stores)[:, None]
    p_sale = np.minimum(mean / sizes, 0.95)
    sale_size = 1 + rng.poisson(sizes - 1.0, size=(n_series, days))
    slow = np.where(rng.random((n_series, days)) < p_sale, sale_size, 0)
    demand = np.where(per_product_intermittent[:, None], slow, regular)
    del gamma, regular, slow, sale_size, p_sale

    # Demand variance the planner assumes: NB for regular items, compound Bernoulli for
    # slow movers (mean * E[size^2] / E[size]).
    var_per_unit = np.where(
        per_product_intermittent, (sizes[:, 0] - 1.0 + sizes[:, 0] ** 2) / sizes[:, 0], 1.0
    )
    var_quadratic = np.where(per_product_intermittent, 0.0, 1.0 / k[:, 0])
    quantity, on_hand = _simulate_inventory(
        rng, demand, mean, var_per_unit, var_quadratic, products, stores
    )
    del demand, mean

    # Zero-padded ids sort as text in numeric order; the width grows only when it must.
    product_ids = _ids("P", products, 4)
    store_ids = _ids("S", stores, 2)
    category_names = np.array([c.name for c in _CATEGORIES], dtype=object)
    per_product = stores * days
    # np.repeat on object arrays copies references, not strings: 8 bytes a row.
    frame = pd.DataFrame(
        {
            "date": np.tile(dates.values, n_series),
            "product_id": np.repeat(product_ids, per_product),
            "store_id": np.tile(np.repeat(store_ids, days), products),
            "category": np.repeat(category_names[category], per_product),
            "price": np.repeat(price, stores, axis=0).ravel(),
            "quantity": quantity.ravel(),
            "on_hand": on_hand.ravel(),
        },
        columns=list(COLUMNS),
    )
    if not stockouts:
        return frame
    return inject_stockouts(frame, stockouts, seed=seed, length=STOCKOUT_DAYS,
                            runs=max(1, round(STOCKOUT_RUNS_PER_YEAR * days / 365)))


def inject_stockouts(
    frame: pd.DataFrame,
    share: float,
    *,
    seed: int = 0,
    runs: int = 2,
    length: tuple[int, int] = STOCKOUT_DAYS,
    before: Any = None,
) -> pd.DataFrame:
    """``frame`` (canonical columns) with supply disruptions: in ``share`` of its series,
    ``runs`` runs of ``length[0]``..``length[1]`` consecutive rows end with no stock.

    In a run ``on_hand`` is 0 and sales are truncated: the first row keeps a random part of
    its quantity (the shelf emptied during it), the others sell nothing. Rows outside the
    runs keep their ``on_hand`` (NaN, unrecorded, when the frame had none). ``before`` (a
    date) keeps the runs in the rows before it, so a benchmark's hold-out stays untouched.
    Deterministic for a ``seed``: ``numpy.random.default_rng((seed, 1))``, a stream of its
    own. The result is sorted by product_id, store_id, date.
    """
    if not 0 <= share <= 1:
        raise InvalidParameterError(f"share must be between 0 and 1, got {share!r}")
    if not 1 <= length[0] <= length[1] or runs < 0:
        raise InvalidParameterError(f"runs must be >= 0 and 1 <= length[0] <= length[1], got "
                                    f"{runs!r}, {length!r}")
    rng = np.random.default_rng((seed, 1))
    out = frame.sort_values(["product_id", "store_id", "date"], kind="stable",
                            ignore_index=True)
    if "on_hand" not in out:
        out["on_hand"] = np.nan
    series = out.groupby(["product_id", "store_id"], sort=False, dropna=False).ngroup()
    first = np.flatnonzero(np.r_[True, series.to_numpy()[1:] != series.to_numpy()[:-1]])
    eligible = (out["date"] < pd.Timestamp(before)) if before is not None else \
        pd.Series(True, index=out.index)
    room = eligible.groupby(series).sum().to_numpy()
    hit = rng.permutation(len(first))[:round(share * len(first))]
    run_series = np.repeat(np.sort(hit), runs)
    run_length = np.minimum(rng.integers(length[0], length[1] + 1, len(run_series)),
                            room[run_series])
    run_start = (rng.random(len(run_series)) * (room[run_series] - run_length + 1)).astype(
        np.int64)
    starts = first[run_series] + run_start
    rows = np.repeat(starts, run_length) + _ragged_arange(run_length)
    quantity = out["quantity"].to_numpy(copy=True)
    kept = np.floor(quantity[starts] * rng.random(len(starts)))
    quantity[rows] = 0
    quantity[starts] = np.where(run_length > 0, kept, quantity[starts])
    on_hand = out["on_hand"].to_numpy(copy=True)
    on_hand[rows] = 0
    return out.assign(quantity=quantity, on_hand=on_hand)


def _ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """``0..n-1`` for each ``n`` of ``lengths``, concatenated."""
    total = int(lengths.sum())
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total) - offsets


def write_demo_csv(path: str | PathLike[str], **kwargs: Any) -> int:
    """Generate demo sales (``kwargs`` as for :func:`generate_demo_sales`) into a CSV file.

    Writes the canonical header and ``date`` as YYYY-MM-DD through pyarrow's CSV writer
    (about 0.3 s per million rows, where ``DataFrame.to_csv`` takes several seconds).
    Returns the number of data rows written.
    """
    frame = generate_demo_sales(**kwargs)
    table = pa.table(
        {
            "date": pa.array(frame["date"].to_numpy().astype("datetime64[D]")),
            **{name: pa.array(frame[name].to_numpy()) for name in COLUMNS[1:]},
        }
    )
    # No cell can contain a comma, quote or newline (ids and categories are ours), so
    # unquoted output is safe; pyarrow always quotes its header, hence our own line.
    with open(path, "wb") as out:
        out.write((",".join(COLUMNS) + "\n").encode())
        pa_csv.write_csv(
            table, out, pa_csv.WriteOptions(include_header=False, quoting_style="none")
        )
    return table.num_rows


def _ids(prefix: str, count: int, min_width: int) -> np.ndarray:
    """Ids ``prefix`` + 1-based zero-padded number, as an object array of ``str``."""
    width = max(min_width, len(str(count)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, count + 1)], dtype=object)


def _category_calendar(dates: pd.DatetimeIndex) -> np.ndarray:
    """Expected-demand multiplier per (category, day): weekly x yearly x holidays.

    Computed once per category (7 rows), then gathered per product, so the calendar costs
    nothing at a million rows.
    """
    dow = dates.dayofweek.to_numpy()
    doy = dates.dayofyear.to_numpy()
    month = dates.month.to_numpy()
    day = dates.day.to_numpy()
    weekly = np.array([c.weekly for c in _CATEGORIES])
    weekly = weekly / weekly.mean(axis=1, keepdims=True)
    amplitude = np.array([c.yearly_amplitude for c in _CATEGORIES])[:, None]
    peak = np.array([c.yearly_peak_doy for c in _CATEGORIES])[:, None]
    yearly = np.exp(amplitude * np.cos(2.0 * np.pi * (doy[None, :] - peak) / DAYS_PER_YEAR))
    yearly /= np.exp(amplitude**2 / 4.0)  # keep the annual mean near 1 (Bessel I0 ~ 1 + a^2/4)

    def effect(attr: str, mask: np.ndarray) -> np.ndarray:
        factors = np.array([getattr(c, attr) for c in _CATEGORIES])[:, None]
        return np.where(mask[None, :], factors, 1.0)

    december = np.where((month == 12) & (day <= 24), ((day - 1) / 23.0) ** 2, 0.0)
    lift = np.array([c.december_lift for c in _CATEGORIES])[:, None]
    holidays = (
        (1.0 + lift * december[None, :])
        * effect("new_year_eve", (month == 12) & (day == 31))
        * effect("valentines", (month == 2) & (day == 14))
        * effect("july_fourth", (month == 7) & (day == 4))
        # Black Friday: the day after the fourth Thursday of November.
        * effect("black_friday", (month == 11) & (dow == 4) & (day >= 23) & (day <= 29))
        # Short opening hours on Christmas Day and New Year's Day.
        * np.where(((month == 12) & (day == 25)) | ((month == 1) & (day == 1)), 0.3, 1.0)
    )
    return weekly[:, dow] * yearly * holidays


def _promotions(
    rng: np.random.Generator, products: int, days: int, category: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shelf price and demand lift per (product, day) from random short promotions.

    About five promotions a year per product, 3-14 days each, 10-35 % off; demand rises
    with a per-product price elasticity, so a deep discount on an elastic product can
    double sales. Promotions are chain-wide, so every store shares a product's price.
    """
    median = np.array([c.median_price for c in _CATEGORIES])[category]
    base_price = np.maximum(np.round(median * rng.lognormal(0.0, 0.4, products), 1) - 0.01, 0.49)
    elasticity = rng.uniform(1.5, 3.5, products)

    counts = rng.poisson(5.0 * days / 365.0, products)
    owner = np.repeat(np.arange(products), counts)
    start = rng.integers(0, days, owner.size)
    stop = np.minimum(start + rng.integers(3, 15, owner.size), days)
    depth = np.round(rng.uniform(0.10, 0.35, owner.size), 2)
    change = np.zeros((products, days + 1))
    np.add.at(change, (owner, start), depth)
    np.add.at(change, (owner, stop), -depth)
    # Rounding removes cumsum's float residue; overlapping promotions stack up to 50 % off.
    discount = np.minimum(np.round(np.cumsum(change[:, :days], axis=1), 2), 0.5)
    price = np.round(base_price[:, None] * (1.0 - discount), 2)
    lift = (1.0 - discount) ** -elasticity[:, None]
    return price, lift


def _simulate_inventory(
    rng: np.random.Generator,
    demand: np.ndarray,
    expected: np.ndarray,
    var_per_unit: np.ndarray,
    var_quadratic: np.ndarray,
    products: int,
    stores: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Sales and end-of-day stock under a daily-review (s, S) policy with lead time.

    Each series reorders when its inventory position (stock + on order) falls to the
    reorder point s = expected lead-time demand + z * its standard deviation, up to
    S = s + one to four weeks of cover. Demand noise, service levels that vary by series
    and deliveries arriving 0-2 days late make stock saw-tooth realistically and run out
    on roughly 2 % of days; sales on such days are capped at what was on the shelf.
    Only the day loop is Python; each step is vectorised over all series.
    """
    n_series, days = demand.shape
    lead = np.repeat(rng.integers(2, 11, products), stores)  # supplier lead time, days
    z = rng.uniform(0.8, 2.3, n_series)  # service-level target varies by planner
    cover = rng.integers(7, 29, n_series)  # order-up-to headroom in days of demand

    # Expected demand over the next `lead` days, from a cumulative sum; the plan is
    # extended past the last day with its final value.
    max_lead = int(lead.max())
    padded = np.concatenate([expected, np.repeat(expected[:, -1:], max_lead + 1, axis=1)], axis=1)
    cumulative = np.concatenate([np.zeros((n_series, 1)), np.cumsum(padded, axis=1)], axis=1)
    rows = np.arange(n_series)[:, None]
    horizon = np.arange(days)[None, :] + 1
    lead_mean = cumulative[rows, horizon + lead[:, None]] - cumulative[rows, horizon]
    lead_var = (
        lead_mean * var_per_unit[:, None] + lead_mean**2 * (var_quadratic / lead)[:, None]
    )
    reorder = np.ceil(lead_mean + z[:, None] * np.sqrt(lead_var)).astype(np.int64)
    order_up_to = reorder + np.maximum(np.ceil(expected * cover[:, None]), 1).astype(np.int64)
    del padded, cumulative, lead_mean, lead_var

    delay = rng.integers(0, 3, (days, n_series))  # late deliveries
    # Day-major copies: the loop reads one contiguous row per day.
    demand_t = np.ascontiguousarray(demand.T)
    reorder_t = np.ascontiguousarray(reorder.T)
    order_up_to_t = np.ascontiguousarray(order_up_to.T)
    del reorder, order_up_to
    arrivals = np.zeros((days + max_lead + 3, n_series), dtype=np.int64)
    sold = np.empty((days, n_series), dtype=np.int64)
    stock_t = np.empty((days, n_series), dtype=np.int64)
    stock = order_up_to_t[0].copy()
    on_order = np.zeros(n_series, dtype=np.int64)
    series = np.arange(n_series)
    for t in range(days):
        stock += arrivals[t]
        on_order -= arrivals[t]
        today = np.minimum(demand_t[t], stock)
        stock -= today
        sold[t] = today
        stock_t[t] = stock
        position = stock + on_order
        due = position <= reorder_t[t]
        quantity = (order_up_to_t[t] - position)[due]
        arrivals[t + lead[due] + delay[t, due], series[due]] += quantity
        on_order[due] += quantity
    return sold.T.copy(), stock_t.T.copy()
