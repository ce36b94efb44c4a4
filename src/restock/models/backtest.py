"""Rolling-origin backtest: what each member would have forecast, had we stopped earlier.

The ensemble's selection, its prediction intervals and the published metrics all come
from this one table, so they agree with each other. With ``windows`` windows of horizon
``h`` whose origins are ``step_size`` apart, window ``w`` (0 is the oldest) trains on a
series' first ``n - h - (windows - 1 - w) * step_size`` points and forecasts the next
``h``. Each series is cut relative to its own end, so series that stop at different dates
are all tested on their most recent data, and no member is ever scored on a point it was
fitted on.

Members that offer ``cross_validate(df, freq, h, n_windows, step_size, on_progress)``
(the statsforecast and LightGBM members, which use their libraries' cross-validation, and
the LSTM, which trains once and forecasts from every later origin) are called once for
all windows; the others are fitted afresh on each window's training part, and a member
whose every fit is expensive may cap that with ``max_backtest_windows`` (the most recent
windows are kept; the selection ranks it on those it has).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from restock.errors import InvalidParameterError
from restock.models.base import Forecaster, ProgressFn, no_progress, part_of
from restock.models.metrics import mase_scales

MemberFactory = Callable[[], Forecaster]


@dataclass
class BacktestResult:
    """The backtest table and what could not be in it.

    ``frame``: ``unique_id, window, cutoff, ds, step, y`` and one column per member alias
    (NaN where a member skipped the series). ``excluded``: series too short to hold
    anything out, with the reason. ``skipped``: per member alias, the series it could not
    fit in some window. ``scales``: each backtested series' MASE denominator, from the
    training part of its first window.
    """

    frame: pd.DataFrame
    aliases: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)
    scales: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    #: the members fitted in the last window, by alias (a refit may reuse what they learnt,
    #: e.g. the LSTM's best epoch count)
    members: dict[str, Forecaster] = field(default_factory=dict)
    #: wall seconds each member's backtest took, by alias
    seconds: dict[str, float] = field(default_factory=dict)


def drop_last(df: pd.DataFrame, n: int) -> pd.DataFrame:
    """``df`` (``unique_id, ds, y``) without the last ``n`` points of every series."""
    ordered = df.sort_values(["unique_id", "ds"], kind="stable")
    remaining = ordered.groupby("unique_id", sort=False)["ds"].transform("size") - n
    position = ordered.groupby("unique_id", sort=False).cumcount()
    return ordered.loc[position < remaining].reset_index(drop=True)


def long_enough(lengths: pd.Series | np.ndarray, h: int, windows: int, step_size: int,
                min_train: int | None = None) -> np.ndarray:
    """Which series lengths ``backtest`` can score (the others go to its ``excluded``)."""
    return np.asarray(lengths) - (h + (windows - 1) * step_size) >= _min_train(h, min_train)


def _min_train(h: int, min_train: int | None) -> int:
    return max(4, h) if min_train is None else min_train


def backtest(
    factories: Sequence[MemberFactory],
    df: pd.DataFrame,
    freq: str,
    h: int,
    windows: int = 1,
    step_size: int | None = None,
    min_train: int | None = None,
    on_progress: ProgressFn = no_progress,
) -> BacktestResult:
    """Forecast ``h`` steps from ``windows`` past origins per series and compare to ``y``.

    ``step_size`` (default ``h``) separates consecutive origins. ``min_train`` (default
    ``max(4, h)``) is the shortest training part a series may have in the first window;
    shorter series go to ``excluded``.
    """
    step_size = h if step_size is None else step_size
    if h < 1 or windows < 1 or step_size < 1:
        raise InvalidParameterError("backtest needs h >= 1, windows >= 1 and step_size >= 1")
    min_train = _min_train(h, min_train)
    span = h + (windows - 1) * step_size
    # every column is kept: a member may use more than y (the gbm member: price)
    ordered = df.sort_values(["unique_id", "ds"], kind="stable")
    ordered = ordered.reset_index(drop=True)
    position = ordered.groupby("unique_id", sort=False).cumcount().to_numpy()
    length = ordered.groupby("unique_id", sort=False)["y"].transform("size").to_numpy()
    usable = long_enough(length, h, windows, step_size, min_train)
    excluded = {
        str(uid): f"{n} points; the backtest needs {span} held out + {min_train} to train"
        for uid, n in ordered.loc[~usable].groupby("unique_id")["y"].size().items()
    }
    aliases = [factory().alias for factory in factories]
    if len(set(aliases)) != len(aliases):
        raise InvalidParameterError(f"two members share an alias: {aliases}")
    data = ordered.loc[usable].reset_index(drop=True)
    truth = _test_rows(data, h, windows, step_size)
    skipped: dict[str, dict[str, str]] = {}
    fitted: dict[str, Forecaster] = {}
    seconds: dict[str, float] = {}
    for k, factory in enumerate(factories):
        started = time.perf_counter()
        member = factory()
        report = _member_part(on_progress, k, len(factories), member.alias)
        if data.empty:
            continue
        if callable(getattr(member, "cross_validate", None)):
            predictions = member.cross_validate(data, freq, h, windows, step_size, report)
        else:
            predictions = _refit_per_window(member, data, freq, h, windows, step_size, report)
        truth = truth.merge(
            predictions[["unique_id", "window", "step", member.alias]],
            on=["unique_id", "window", "step"], how="left",
        )
        skipped[member.alias] = dict(getattr(member, "skipped_", {}))
        fitted[member.alias] = member
        seconds[member.alias] = round(time.perf_counter() - started, 3)
    for alias in aliases:
        if alias not in truth:
            truth[alias] = np.nan
    first_train = drop_last(data, span)
    on_progress(1.0, "backtest done")
    columns = ["unique_id", "window", "cutoff", "ds", "step", "y", *aliases]
    return BacktestResult(
        frame=truth[columns].sort_values(["unique_id", "window", "step"], ignore_index=True),
        aliases=aliases,
        excluded=excluded,
        skipped={alias: reasons for alias, reasons in skipped.items() if reasons},
        scales=mase_scales(first_train, freq) if len(first_train) else pd.Series(dtype=float),
        members=fitted,
        seconds=seconds,
    )


def _test_rows(data: pd.DataFrame, h: int, windows: int, step_size: int) -> pd.DataFrame:
    """``unique_id, window, cutoff, ds, step, y``: every window's held-out points."""
    position = data.groupby("unique_id", sort=False).cumcount().to_numpy()
    length = data.groupby("unique_id", sort=False)["y"].transform("size").to_numpy()
    frames = []
    for window in range(windows):
        start = length - h - (windows - 1 - window) * step_size  # first held-out position
        mask = (position >= start) & (position < start + h)
        cutoff_mask = position == start - 1
        cutoffs = pd.Series(data["ds"].to_numpy()[cutoff_mask],
                            index=data["unique_id"].to_numpy()[cutoff_mask], name="cutoff")
        test = data.loc[mask, ["unique_id", "ds", "y"]].assign(
            window=window, step=position[mask] - start[mask] + 1)
        frames.append(test.join(cutoffs, on="unique_id"))
    if not frames:
        return pd.DataFrame(columns=["unique_id", "window", "cutoff", "ds", "step", "y"])
    return pd.concat(frames, ignore_index=True)


def _refit_per_window(
    member: Forecaster, data: pd.DataFrame, freq: str, h: int, windows: int, step_size: int,
    on_progress: ProgressFn,
) -> pd.DataFrame:
    """The generic path: fit ``member`` on each window's training part and predict ``h``."""
    frames = []
    cap = getattr(member, "max_backtest_windows", None) or windows
    chosen = range(max(0, windows - cap), windows)
    for done, window in enumerate(chosen):
        holdout = h + (windows - 1 - window) * step_size
        member.fit(drop_last(data, holdout), freq,
                   on_progress=_member_part(on_progress, done, len(chosen), member.alias))
        frames.append(with_steps(member.predict(h)).assign(window=window))
    return pd.concat(frames, ignore_index=True)


def with_steps(predictions: pd.DataFrame) -> pd.DataFrame:
    """Number each series' predictions 1..h (matching on step survives calendar gaps)."""
    predictions = predictions.sort_values(["unique_id", "ds"], kind="stable")
    steps = predictions.groupby("unique_id", sort=False).cumcount().to_numpy() + 1
    return predictions.drop(columns="ds").assign(step=steps)


def _member_part(on_progress: ProgressFn, done: int, total: int, alias: str) -> ProgressFn:
    """Part ``done`` of ``total`` equal parts, worded after the member when it says nothing."""
    return part_of(on_progress, done / total, (done + 1) / total,
                   lambda message: message or f"backtest: {alias}")
