"""Rolling-origin backtest: cutoffs, steps, exclusions and no look-ahead."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
import pytest
from conftest import make_panel

from restock.errors import InvalidParameterError
from restock.models.backtest import backtest, drop_last, with_steps
from restock.models.base import Forecaster, ProgressFn, future_dates, no_progress


class LastValue(Forecaster):
    """Repeats each series' last value and remembers the last date it was trained on."""

    alias = "last"
    seen: list[pd.Timestamp] = []

    def fit(self, df: pd.DataFrame, freq: str, on_progress: ProgressFn = no_progress) -> Self:
        LastValue.seen.append(df["ds"].max())
        last = df.sort_values("ds").groupby("unique_id").tail(1)
        self.last_ = last.set_index("unique_id")[["ds", "y"]]
        self.freq_, self.skipped_ = freq, {}
        on_progress(1.0, "done")
        return self

    def predict(self, h: int) -> pd.DataFrame:
        rows = [
            pd.DataFrame({"unique_id": uid, "ds": future_dates(r.ds, self.freq_, h), "last": r.y})
            for uid, r in self.last_.iterrows()
        ]
        return pd.concat(rows, ignore_index=True)

    def save(self, directory: Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path) -> Self:
        raise NotImplementedError


def test_windows_roll_forward_without_look_ahead() -> None:
    data = make_panel(n_series=2, n=60)
    LastValue.seen.clear()
    result = backtest([LastValue], data, "D", h=7, windows=3)
    frame = result.frame
    assert list(frame.columns) == ["unique_id", "window", "cutoff", "ds", "step", "y", "last"]
    assert len(frame) == 2 * 3 * 7
    assert sorted(frame["step"].unique()) == list(range(1, 8))
    last_date = data["ds"].max()
    cutoffs = sorted(frame["cutoff"].unique())
    assert cutoffs == [last_date - pd.Timedelta(days=d) for d in (21, 14, 7)]
    assert LastValue.seen == cutoffs  # each fit saw data up to its cutoff only
    assert (frame["ds"] > frame["cutoff"]).all()
    assert sorted(frame["window"].unique()) == [0, 1, 2]
    assert (frame.groupby("window")["cutoff"].nunique() == 1).all()
    first = frame[frame["step"] == 1]
    expected = data.set_index(["unique_id", "ds"])["y"]
    previous = [expected[(u, c)] for u, c in zip(first["unique_id"], first["cutoff"])]
    assert np.array_equal(first["last"].to_numpy(), previous)


def test_short_series_are_excluded_with_a_reason() -> None:
    data = pd.concat([make_panel(n_series=1, n=60), make_panel(n_series=1, n=10).assign(unique_id="tiny")])
    progress: list[float] = []
    result = backtest([LastValue], data, "D", h=7, on_progress=lambda f, m="", **e: progress.append(f))
    assert set(result.frame["unique_id"]) == {"s0"}
    assert "tiny" in result.excluded and "10 points" in result.excluded["tiny"]
    assert progress[-1] == 1.0 and all(0 <= f <= 1 for f in progress)
    assert result.scales.index.tolist() == ["s0"]


def test_duplicate_aliases_and_bad_horizons_are_rejected() -> None:
    data = make_panel(n_series=1, n=60)
    with pytest.raises(InvalidParameterError):
        backtest([LastValue, LastValue], data, "D", h=7)
    with pytest.raises(InvalidParameterError):
        backtest([LastValue], data, "D", h=0)


class CrossValidating(LastValue):
    """LastValue with the one-call backtest hook, recording what it was asked."""

    alias = "cv"
    calls: list[tuple[int, int, int, int]] = []

    def cross_validate(self, df, freq, h, n_windows, step_size, on_progress=no_progress):
        CrossValidating.calls.append((len(df), h, n_windows, step_size))
        frames = []
        for window in range(n_windows):
            self.fit(drop_last(df, h + (n_windows - 1 - window) * step_size), freq)
            frames.append(with_steps(self.predict(h).rename(columns={"last": "cv"}))
                          .assign(window=window))
        return pd.concat(frames, ignore_index=True)


def test_overlapping_windows_and_the_cross_validate_hook_agree_with_refits() -> None:
    data = pd.concat([make_panel(n_series=1, n=60),
                      make_panel(n_series=1, n=45, seed=2).assign(unique_id="late")])
    CrossValidating.calls.clear()
    result = backtest([LastValue, CrossValidating], data, "D", h=6, windows=3, step_size=3)
    frame = result.frame
    assert CrossValidating.calls == [(105, 6, 3, 3)]  # one call for all windows
    assert np.array_equal(frame["last"].to_numpy(), frame["cv"].to_numpy())
    for uid, n in (("s0", 60), ("late", 45)):
        own = frame[frame["unique_id"] == uid]
        series = data[data["unique_id"] == uid].sort_values("ds")["ds"].reset_index(drop=True)
        # windows are cut from each series' own end, origins 3 apart, the last ends at the end
        assert list(own.groupby("window")["cutoff"].first()) == [series[n - 13], series[n - 10],
                                                                  series[n - 7]]
        assert own[own["window"] == 2]["ds"].max() == series[n - 1]


def test_drop_last_removes_the_tail_of_every_series() -> None:
    data = make_panel(n_series=2, n=10)
    kept = drop_last(data, 4)
    assert kept.groupby("unique_id").size().tolist() == [6, 6]
    assert kept["ds"].max() == data["ds"].min() + pd.Timedelta(days=5)


class Expensive(LastValue):
    """LastValue that asks to be backtested on its latest window only."""

    alias = "expensive"
    max_backtest_windows = 1

    def predict(self, h: int) -> pd.DataFrame:
        return super().predict(h).rename(columns={"last": "expensive"})


def test_an_expensive_member_is_fitted_on_its_latest_windows_only() -> None:
    data = make_panel(n_series=2, n=60)
    LastValue.seen.clear()
    frame = backtest([Expensive], data, "D", h=7, windows=3).frame
    assert LastValue.seen == [data["ds"].max() - pd.Timedelta(days=7)]  # one fit
    assert frame.loc[frame["window"] < 2, "expensive"].isna().all()
    assert frame.loc[frame["window"] == 2, "expensive"].notna().all()
