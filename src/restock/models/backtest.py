"""Rolling-origin backtest: what each member would have forecast, had we stopped earlier.

The ensemble's weights, its prediction intervals and the published metrics all come from
this one table, so they agree with each other. Window ``w`` of ``windows`` hides the last
``h * (windows - w)`` points of every series, fits fresh members on what is left and
forecasts the next ``h``: the origins roll forward by ``h`` and no test point is ever seen
in training. Each series is cut relative to its own end, so series that stop at different
dates are all tested on their most recent data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from restock.errors import InvalidParameterError
from restock.models.base import Forecaster, ProgressFn, no_progress
from restock.models.metrics import mase_scales

MemberFactory = Callable[[], Forecaster]


@dataclass
class BacktestResult:
    """The backtest table and what could not be in it.

    ``frame``: ``unique_id, cutoff, ds, step, y`` and one column per member alias (NaN
    where a member skipped the series). ``excluded``: series too short to hold anything
    out, with the reason. ``skipped``: per member alias, the series it could not fit in
    some window. ``scales``: each backtested series' MASE denominator, from the training
    part of its first window.
    """

    frame: pd.DataFrame
    aliases: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)
    scales: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    #: the members fitted in the last window, by alias (a refit may reuse what they learnt,
    #: e.g. the LSTM's best epoch count)
    members: dict[str, Forecaster] = field(default_factory=dict)


def backtest(
    factories: Sequence[MemberFactory],
    df: pd.DataFrame,
    freq: str,
    h: int,
    windows: int = 1,
    min_train: int | None = None,
    on_progress: ProgressFn = no_progress,
) -> BacktestResult:
    """Fit fresh members before each cutoff and compare their ``h``-step forecasts to ``y``.

    ``min_train`` (default ``max(4, h)``) is the shortest training part a series may have
    in the first window; shorter series go to ``excluded``.
    """
    if h < 1 or windows < 1:
        raise InvalidParameterError("backtest needs h >= 1 and windows >= 1")
    min_train = max(4, h) if min_train is None else min_train
    ordered = df.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    position = ordered.groupby("unique_id", sort=False).cumcount().to_numpy()
    length = ordered.groupby("unique_id", sort=False)["y"].transform("size").to_numpy()
    usable = length - h * windows >= min_train
    excluded = {
        str(uid): f"{n} points; the backtest needs {h * windows} held out + {min_train} to train"
        for uid, n in ordered.loc[~usable].groupby("unique_id")["y"].size().items()
    }
    frames, skipped, fitted = [], {}, {}
    # known before any window, so an empty backtest (no series long enough) keeps its columns
    aliases = [factory().alias for factory in factories]
    if len(set(aliases)) != len(aliases):
        raise InvalidParameterError(f"two members share an alias: {aliases}")
    steps_total = windows * len(factories)
    for window in range(windows):
        holdout = h * (windows - window)
        train_mask = usable & (position < length - holdout)
        test_mask = usable & (position >= length - holdout) & (position < length - holdout + h)
        train = ordered.loc[train_mask, ["unique_id", "ds", "y"]]
        test = ordered.loc[test_mask, ["unique_id", "ds", "y"]].copy()
        if train.empty:
            break
        test["step"] = position[test_mask] - (length[test_mask] - holdout) + 1
        cutoffs = train.groupby("unique_id")["ds"].max().rename("cutoff")
        test = test.join(cutoffs, on="unique_id")
        for k, factory in enumerate(factories):
            member = factory()
            done = window * len(factories) + k
            member.fit(train, freq, on_progress=_scaled(on_progress, done, steps_total, member.alias))
            test = test.merge(_with_steps(member.predict(h)), on=["unique_id", "step"], how="left")
            skipped.setdefault(member.alias, {}).update(member.skipped_)
            fitted[member.alias] = member
        frames.append(test)
    columns = ["unique_id", "cutoff", "ds", "step", "y", *aliases]
    frame = (
        pd.concat(frames, ignore_index=True)[columns]
        if frames
        else pd.DataFrame(columns=columns)
    )
    first_train = ordered.loc[usable & (position < length - h * windows)]
    on_progress(1.0, "backtest done")
    return BacktestResult(
        frame=frame.sort_values(["unique_id", "cutoff", "step"], ignore_index=True),
        aliases=aliases,
        excluded=excluded,
        skipped={alias: reasons for alias, reasons in skipped.items() if reasons},
        scales=mase_scales(first_train, freq) if len(first_train) else pd.Series(dtype=float),
        members=fitted,
    )


def _with_steps(predictions: pd.DataFrame) -> pd.DataFrame:
    """Number each series' predictions 1..h (matching on step survives calendar gaps)."""
    predictions = predictions.sort_values(["unique_id", "ds"], kind="stable")
    steps = predictions.groupby("unique_id", sort=False).cumcount().to_numpy() + 1
    return predictions.drop(columns="ds").assign(step=steps)


def _scaled(on_progress: ProgressFn, done: int, total: int, alias: str) -> ProgressFn:
    """A member's own progress mapped onto its slice of the whole backtest."""

    def report(fraction: float, message: str = "", **extra: object) -> None:
        on_progress((done + fraction) / total, message or f"backtest: {alias}", **extra)

    return report
