"""What a data frequency means: period length, seasons, default horizons and history.

Every rule that depends on whether the data is daily, weekly or monthly is here, so the
panel, the models, serving and inventory maths cannot disagree (they once did: a month was
30.44 days in one module and 30.42 in another). Which frequency a file *shows* is decided
in ``restock.data.frequency``; this module says what that frequency implies.

Frequencies are pandas offset aliases (``D``, ``W-FRI``, ``MS``, ``ME``). The panel only
produces daily, weekly and monthly ones, but the models also accept business-daily and
quarterly data (the benchmarks use them); any other alias, or a multiple such as ``2D``,
has no season the models know.

- **A period's length** is its average in calendar days over the Gregorian cycle: a month
  is 365.25 / 12 = 30.4375 days, a quarter 91.3125, a business day 7 / 5. Horizons are
  asked in days and turned into periods with it (``horizon_steps``), and per-period error
  sigmas into per-day ones.
- **Seasons**: a week of days (7, or 5 business days) and a year of weeks (52), months (12)
  or quarters (4). Daily data also has a yearly cycle (365) for multi-seasonal models.
- **Default horizon**: a retrain precomputes a year of days (260 business days) and two
  years of weeks or months (monthly planners ask for 18-24 months) unless
  ``RESTOCK_MAX_HORIZON_DAYS`` sets one in days.
- **Recent history**: a year of days, two years of weeks, three years of months: the most
  an answer carries (it asks for fewer) and the window its warnings and chart judge.
"""

from __future__ import annotations

import difflib
import functools
import math
from dataclasses import dataclass

import pandas as pd
from pandas.tseries.frequencies import to_offset

from restock.errors import InvalidParameterError


@dataclass(frozen=True)
class _Kind:
    """The rules shared by every alias of one kind of frequency (``W-MON`` and ``W-FRI``)."""

    code: str  # D, B, W, M, Q or "" (no known season)
    name: str
    days: float  # average calendar days per period
    season: int
    horizon: int  # periods precomputed by default
    history: int  # periods of recent history an answer can show
    backtest: int  # natural backtest horizon, in periods


DAYS_PER_WEEK = 7
#: the mean Gregorian year: a month is a twelfth of it
DAYS_PER_YEAR = 365.25
#: a history spans two years (first to last day of 730 daily points) before a model fits
#: a yearly cycle: from one year it would learn last year's one-off events as the season
YEARLY_MIN_SPAN_DAYS = 2 * 365 - 1

_DAILY = _Kind("D", "daily", 1.0, 7, 365, 365, 28)
_BUSINESS = _Kind("B", "business daily", DAYS_PER_WEEK / 5, 5, 260, 365, 20)
_WEEKLY = _Kind("W", "weekly", float(DAYS_PER_WEEK), 52, 104, 104, 13)
_MONTHLY = _Kind("M", "monthly", DAYS_PER_YEAR / 12, 12, 24, 36, 12)
_QUARTERLY = _Kind("Q", "quarterly", DAYS_PER_YEAR / 4, 4, 8, 36, 4)
_OTHER = _Kind("", "other", 0.0, 1, 24, 365, 8)  # days: from the offset

#: pandas offset class -> kind (a multiple such as ``2D`` is "other", as its season is unknown)
_KINDS = {
    "Day": _DAILY,
    "BusinessDay": _BUSINESS,
    "CustomBusinessDay": _BUSINESS,
    "Week": _WEEKLY,
    "MonthBegin": _MONTHLY,
    "MonthEnd": _MONTHLY,
    "BusinessMonthBegin": _MONTHLY,
    "BusinessMonthEnd": _MONTHLY,
    "QuarterBegin": _QUARTERLY,
    "QuarterEnd": _QUARTERLY,
}

#: the cycles beyond the main season that multi-seasonal models (MSTL) add: daily data
#: also repeats every year (365 whole days: statsforecast takes integer periods)
_LONGER_CYCLES = {7: (365,)}


@dataclass(frozen=True)
class Frequency:
    """One data frequency and everything that follows from it (see the module docstring)."""

    alias: str  # the pandas offset alias: D, W-FRI, MS, ME, ...
    code: str  # D, B, W, M, Q, or "" when no season is known (``2D``, ``h``, ``YS``)
    name: str  # daily, business daily, weekly, monthly, quarterly, other
    days_per_period: float
    season_length: int  # 1: no season
    default_horizon: int  # periods a retrain precomputes without RESTOCK_MAX_HORIZON_DAYS
    history_periods: int  # the recent window an answer's history and warnings draw on
    backtest_horizon: int  # the natural backtest horizon before short histories shrink it

    @property
    def seasonal_periods(self) -> tuple[int, ...]:
        """Every cycle of the data, shortest first (``(7, 365)`` for daily): MSTL's periods."""
        return seasonal_periods(self.season_length)

    @property
    def within_week(self) -> bool:
        """Periods shorter than a week: weekday effects and holidays can be seen."""
        return self.code in ("D", "B")

    @property
    def within_year(self) -> bool:
        """Days, weeks or months: enough periods a year for a yearly cycle to have a shape
        (Prophet's and the LSTM's yearly terms; four quarters are too few)."""
        return self.code in ("D", "B", "W", "M")


@functools.lru_cache(maxsize=256)
def frequency_of(alias: str) -> Frequency:
    """The ``Frequency`` of a pandas offset alias (cached: serving asks on every request).

    Raises ``ValueError`` for a string pandas does not read as a frequency.
    """
    offset = to_offset(alias)
    known = _KINDS.get(type(offset).__name__)
    days = offset.n * known.days if known else _average_days(offset)
    kind = known if known and offset.n == 1 else _OTHER
    return Frequency(alias=alias, code=kind.code, name=kind.name, days_per_period=days,
                     season_length=kind.season, default_horizon=kind.horizon,
                     history_periods=kind.history, backtest_horizon=kind.backtest)


def _average_days(offset: pd.DateOffset) -> float:
    """Calendar days per period of an offset without a known kind (``h``: 1/24, ``YS``:
    365.25), averaged over a four-year leap cycle."""
    if isinstance(offset, pd.offsets.Tick):
        return offset.nanos / 86_400e9
    start = pd.Timestamp("2001-01-01")
    dates = pd.date_range(start, start + pd.Timedelta(days=4 * 365 + 1), freq=offset)
    if len(dates) < 2:
        raise ValueError(f"frequency {offset.freqstr!r} is longer than four years")
    return float((dates[-1] - dates[0]).days) / (len(dates) - 1)


def seasonal_periods(season: int) -> tuple[int, ...]:
    """The cycles of data whose main season is ``season``: ``(7, 365)`` for daily data,
    ``(season,)`` otherwise, ``()`` without a season."""
    if season < 2:
        return ()
    return (season, *_LONGER_CYCLES.get(season, ()))


def horizon_steps(days: float, freq: str) -> int:
    """How many periods of ``freq`` cover ``days`` calendar days (at least one)."""
    return max(1, math.ceil(days / frequency_of(freq).days_per_period - 1e-9))


def model_horizon(freq: str, max_horizon_days: int = 0) -> int:
    """Periods a retrain precomputes: ``max_horizon_days`` (RESTOCK_MAX_HORIZON_DAYS) if
    set, else the frequency's default."""
    if max_horizon_days > 0:
        return horizon_steps(max_horizon_days, freq)
    return frequency_of(freq).default_horizon


def holidays_country(code: str) -> str:
    """``code`` as the ``holidays`` package names the country (``us`` -> ``US``).

    Prophet and the LightGBM member take their public holidays from that package, and
    an unknown code fails only inside their fits, minutes into a retrain; the settings
    check it here when they are read, so ``serve``, ``retrain`` and the worker refuse it
    at once, with the codes it resembles.
    """
    import holidays

    known = holidays.list_supported_countries()
    upper = code.strip().upper()
    if upper in known:
        return upper
    close = difflib.get_close_matches(upper, list(known), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise InvalidParameterError(
        f"RESTOCK_HOLIDAYS_COUNTRY: {code!r} is not a country code the holidays package "
        f"knows{hint}; use an ISO 3166 code such as US, GB or DE")
