"""One calendar per dataset: each series' own frequency, and refusing files that mix them.

The panel puts every series on one calendar (``infer_frequency``, from the distinct dates
of the whole history; what that calendar implies is in ``restock.calendar``). A file that
mixes daily, weekly and monthly series, or a weekly file sent into a daily history, would
silently be treated as daily: weekly totals zero-filled on six days of seven. So each
series' spacing is classified and a mix refused, naming an example series of each frequency.

Rows are recorded on days something sold, so a slow mover in a daily shop can have gaps of
weeks. Only a clear pattern counts: at least ``MIN_DATES`` distinct dates, a median gap of
under four days (daily), of exactly seven with 90% on one weekday (weekly), or of 28-31
days with 90% on one day of the month (monthly). Anything else is left unclassified and
never conflicts. A daily product that sold only on Saturdays six weeks running does look
weekly; the message says to send its zero days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from restock.errors import DataValidationError, Problem

MIN_DATES = 6  # per series: fewer dates do not show a frequency clearly
MIN_DATASET_DATES = 3  # the distinct dates of a whole file or history
ALIGNED_SHARE = 0.9  # share of dates on the modal weekday / day of month
_WEEKDAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]


def classify(dates: pd.Series, groups: np.ndarray | None = None,
             min_dates: int = MIN_DATES) -> np.ndarray:
    """The frequency each group's distinct ``dates`` show: ``D``, ``W-<DAY>``, ``MS``
    (1st of the month), ``ME`` (month end), ``M<day>`` (another fixed day) or ``""``.

    ``groups``: integer codes 0..G-1 aligned with ``dates`` (default: one group). Plain
    numpy on day numbers: a million-row upload is classified in well under a second.
    """
    day = pd.to_datetime(dates).to_numpy().astype("datetime64[D]").astype(np.int64)
    codes = np.zeros(len(day), dtype=np.int64) if groups is None else np.asarray(
        groups, dtype=np.int64)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    span = int(day.max() - day.min()) + 1 if len(day) else 1
    # distinct (group, day) pairs, sorted by group then day (a sort: np.unique's hashing
    # is several times slower on a million keys)
    key = np.sort(codes * span + (day - (day.min() if len(day) else 0)))
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    g, d = key // span, key % span + (day.min() if len(day) else 0)
    n = np.bincount(g, minlength=n_groups)
    same = np.r_[False, g[1:] == g[:-1]]
    # median gap per group from a histogram of gaps: only its place against 4, 7 and 28-31
    # days matters, so gaps above 40 days count as 41 (NaN: a group with one date)
    gap_counts = np.bincount(g[same] * 42 + np.minimum(np.diff(d)[same[1:]], 41),
                             minlength=n_groups * 42).reshape(-1, 42).cumsum(axis=1)
    with np.errstate(invalid="ignore"):
        gap = np.where(n > 1, (2 * gap_counts >= gap_counts[:, -1:]).argmax(axis=1), np.nan)
    weekday, weekday_share = _modal(g, (d + 3) % 7, 7, n)  # 1970-01-01 was a Thursday
    calendar = d.astype("datetime64[D]")
    month = calendar.astype("datetime64[M]")
    month_end = (calendar + 1).astype("datetime64[M]") != month
    monthday = np.where(month_end, 0, (calendar - month).astype(np.int64) + 1)  # 0: end
    monthday, monthday_share = _modal(g, monthday, 32, n)
    with np.errstate(invalid="ignore"):
        weekly = (gap == 7) & (weekday_share >= ALIGNED_SHARE)
        monthly = (gap >= 28) & (gap <= 31) & (monthday_share >= ALIGNED_SHARE)
        daily = gap < 4
    label = np.full(n_groups, "", dtype=object)
    label[weekly] = [f"W-{_WEEKDAYS[w]}" for w in weekday[weekly]]
    label[monthly] = ["ME" if m == 0 else "MS" if m == 1 else f"M{m}"
                      for m in monthday[monthly]]
    label[daily] = "D"
    label[n < min_dates] = ""
    return label


def infer_frequency(dates: pd.Series | pd.DatetimeIndex) -> str:
    """The pandas offset alias of a dataset's calendar: ``D``, ``W-<DAY>``, ``MS`` or ``ME``.

    Uses the median gap between distinct dates so that a few missing days do not turn a
    daily shop into an irregular one; weekly and monthly anchors keep the input's own
    weekday or month boundary so forecasts continue the same calendar.
    """
    unique = pd.DatetimeIndex(pd.unique(pd.to_datetime(pd.Series(dates)))).sort_values()
    if len(unique) < 2:
        return "D"
    gap = float(np.median(np.diff(unique.asi8)) / 86_400e9)
    if gap < 4:
        return "D"
    if gap < 20:
        return "W-" + _WEEKDAYS[pd.Series(unique.dayofweek).mode().iloc[0]]
    if (unique.is_month_end).mean() > 0.5:
        return "ME"
    return "MS"


def _modal(groups: np.ndarray, values: np.ndarray, size: int,
           n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group: the most frequent of ``values`` (0..size-1) and the share holding it."""
    counts = np.bincount(groups * size + values, minlength=len(n) * size).reshape(-1, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts.argmax(axis=1), counts.max(axis=1) / n


def describe(label: str) -> str:
    """A frequency label for a person: ``W-FRI`` -> ``weekly (Fridays)``."""
    if label == "D":
        return "daily"
    if label.startswith("W-"):
        day = ["Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays",
               "Sundays"][_WEEKDAYS.index(label[2:])]
        return f"weekly ({day})"
    if label == "MS":
        return "monthly (1st of the month)"
    if label == "ME":
        return "monthly (month end)"
    return f"monthly (day {label[1:]})"


def _series_name(key: tuple[str, str]) -> str:
    product, store = key
    return f"product_id {product!r}" + (f", store_id {store!r}" if store else "")


def upload_frequency(frame: pd.DataFrame) -> str:
    """The one frequency of an upload's canonical rows, or ``""`` when they show none.

    Raises ``DataValidationError`` when its series show more than one.
    """
    keys = frame[["product_id", "store_id"]]
    product, _ = pd.factorize(keys["product_id"])
    store, stores = pd.factorize(keys["store_id"])
    codes = product.astype(np.int64) * len(stores) + store  # may leave unused codes: fine
    labels = classify(frame["date"], codes)
    kinds = sorted(set(labels) - {""})
    if len(kinds) > 1:
        first_row = pd.Series(np.arange(len(codes))).groupby(codes).first()
        examples = {kind: _series_name(tuple(keys.iloc[first_row[np.flatnonzero(
            labels == kind)[0]]])) for kind in kinds}
        problems = [Problem(None, "date", f"{name} is {describe(kind)}")
                    for kind, name in examples.items()]
        problems.append(Problem(None, "date", MIXED_ADVICE))
        raise DataValidationError(
            "the file mixes series of different frequencies ("
            + ", ".join(describe(k) for k in examples) + "); one restock home holds one "
            "calendar", problems)
    if kinds:
        return str(kinds[0])
    return str(classify(frame["date"], min_dates=MIN_DATASET_DATES)[0])


MIXED_ADVICE = ("aggregate the series to one frequency (or keep each frequency in its own "
                "restock home); a daily series that only sells on one weekday or day of the "
                "month can be sent with its zero days")


def check_matches_history(upload: str, history: str) -> None:
    """Refuse an upload whose frequency differs from the stored history's."""
    if upload and history and upload != history:
        raise DataValidationError(
            f"the file is {describe(upload)} but the stored history is {describe(history)}; "
            "nothing was stored",
            [Problem(None, "date", f"the file's series are {describe(upload)}, the stored "
                     f"history is {describe(history)}"),
             Problem(None, "date", MIXED_ADVICE)])
