"""Rolling-origin backtest: cutoffs, steps, exclusions and no look-ahead."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
import pytest
from conftest import make_panel

from restock.errors import InvalidParameterError
from restock.models.backtest import backtest
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
    assert list(frame.columns) == ["unique_id", "cutoff", "ds", "step", "y", "last"]
    assert len(frame) == 2 * 3 * 7
    assert sorted(frame["step"].unique()) == list(range(1, 8))
    last_date = data["ds"].max()
    cutoffs = sorted(frame["cutoff"].unique())
    assert cutoffs == [last_date - pd.Timedelta(days=d) for d in (21, 14, 7)]
    assert LastValue.seen == cutoffs  # each fit saw data up to its cutoff only
    assert (frame["ds"] > frame["cutoff"]).all()
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
