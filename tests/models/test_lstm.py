"""The LSTM member against the Forecaster contract, with real (tiny) PyTorch training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from restock.errors import JobCancelled
from restock.models.base import NotFittedError
from restock.models.lstm import LSTMForecaster

FAST = {"max_epochs": 2, "hidden_size": 16, "windows_per_epoch": 256, "batch_size": 64}


def make_frame(n_series: int = 4, n: int = 120, freq: str = "D", start: str = "2024-01-01"):
    """Weekly-seasonal counts with a trend, one level per series."""
    rng = np.random.default_rng(0)
    dates = pd.date_range(start, periods=n, freq=freq)
    frames = []
    for i in range(n_series):
        level = 5.0 * (i + 1)
        season = 1 + 0.3 * np.sin(2 * np.pi * np.arange(n) / 7)
        y = rng.poisson(level * season * (1 + np.arange(n) / (2 * n)))
        frames.append(pd.DataFrame({"unique_id": f"p{i}", "ds": dates, "y": y.astype(float)}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def fitted(daily: pd.DataFrame) -> LSTMForecaster:
    return LSTMForecaster(**FAST).fit(daily, "D")


def test_fit_returns_self_and_records_training(daily: pd.DataFrame) -> None:
    model = LSTMForecaster(**FAST)
    assert model.fit(daily, "D") is model
    assert model.skipped_ == {}
    assert len(model.history_) == 2
    assert model.best_val_loss_ is not None and np.isfinite(model.best_val_loss_)


def test_init_only_stores_params() -> None:
    model = LSTMForecaster(window=10, seed=7)
    assert model.get_params()["window"] == 10 and model.get_params()["seed"] == 7
    assert not [name for name in vars(model) if name.endswith("_")]


def test_predict_before_fit_raises() -> None:
    with pytest.raises(NotFittedError):
        LSTMForecaster().predict(7)
    with pytest.raises(NotFittedError):
        LSTMForecaster().save(Path("unused"))


def test_predict_h_rows_per_series_with_daily_dates(fitted: LSTMForecaster) -> None:
    out = fitted.predict(10)
    assert list(out.columns) == ["unique_id", "ds", "lstm"]
    assert out.groupby("unique_id").size().to_dict() == {f"p{i}": 10 for i in range(4)}
    first = out[out.unique_id == "p0"]
    expected = pd.date_range("2024-04-30", periods=10, freq="D")
    assert (pd.DatetimeIndex(first.ds) == expected).all()
    assert np.isfinite(out.lstm).all() and (out.lstm >= 0).all()


def test_long_horizon_is_non_negative(fitted: LSTMForecaster) -> None:
    out = fitted.predict(365)
    assert len(out) == 4 * 365
    assert np.isfinite(out.lstm).all() and (out.lstm >= 0).all()


@pytest.mark.parametrize(
    ("freq", "start", "weekday", "day"),
    [("W-FRI", "2021-01-01", 4, None), ("MS", "2015-01-01", None, 1)],
)
def test_weekly_and_monthly_calendars(freq: str, start: str, weekday, day) -> None:
    df = make_frame(n_series=3, n=60, freq=freq, start=start)
    model = LSTMForecaster(**FAST).fit(df, freq)
    out = model.predict(8)
    assert len(out) == 3 * 8
    dates = pd.DatetimeIndex(out.ds)
    last = df.ds.max()
    assert dates.min() > last
    if weekday is not None:
        assert (dates.dayofweek == weekday).all()
    else:
        assert (dates.day == day).all()
    assert list(dates[:8]) == list(pd.date_range(last, periods=9, freq=freq)[1:])


def test_two_fits_give_identical_forecasts(daily: pd.DataFrame) -> None:
    a = LSTMForecaster(**FAST).fit(daily, "D").predict(14)
    b = LSTMForecaster(**FAST).fit(daily, "D").predict(14)
    pd.testing.assert_frame_equal(a, b)


def test_save_load_round_trip(fitted: LSTMForecaster, tmp_path: Path) -> None:
    fitted.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "lstm.safetensors", "scalers.json", "lstm.json"
    }
    loaded = LSTMForecaster.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.predict(30), fitted.predict(30))
    assert loaded.get_params() == fitted.get_params()
    assert loaded.history_ == fitted.history_


def test_short_and_all_zero_series(daily: pd.DataFrame) -> None:
    dates = pd.date_range("2024-01-01", periods=120, freq="D")
    extra = pd.concat(
        [
            pd.DataFrame({"unique_id": "short", "ds": dates[-10:], "y": 3.0}),
            pd.DataFrame({"unique_id": "zeros", "ds": dates, "y": 0.0}),
        ]
    )
    model = LSTMForecaster(**FAST, window=14).fit(pd.concat([daily, extra]), "D")
    assert set(model.skipped_) == {"short"}
    assert "shorter" in model.skipped_["short"]
    out = model.predict(7)
    assert "short" not in set(out.unique_id)
    zeros = out[out.unique_id == "zeros"].lstm
    assert len(zeros) == 7 and np.isfinite(zeros).all() and (zeros >= 0).all()


def test_nothing_usable_still_fits() -> None:
    df = pd.DataFrame(
        {"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=5, freq="D"), "y": 1.0}
    )
    model = LSTMForecaster(**FAST, window=28).fit(df, "D")
    assert set(model.skipped_) == {"a"}
    out = model.predict(7)
    assert out.empty and list(out.columns) == ["unique_id", "ds", "lstm"]


def test_progress_once_per_epoch_with_losses(daily: pd.DataFrame) -> None:
    calls: list[tuple[float, dict]] = []
    model = LSTMForecaster(**{**FAST, "max_epochs": 3, "patience": 10})
    model.fit(daily, "D", on_progress=lambda fraction, message="", **extra: calls.append(
        (fraction, extra)
    ))
    assert [extra["epoch"] for _, extra in calls] == [1, 2, 3]
    assert all(np.isfinite(extra["loss"]) and np.isfinite(extra["val_loss"]) for _, extra in calls)
    assert [fraction for fraction, _ in calls] == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_cancellation_propagates_and_stops_training(daily: pd.DataFrame) -> None:
    epochs: list[int] = []

    def cancel_after_first(fraction: float, message: str = "", **extra) -> None:
        epochs.append(extra["epoch"])
        raise JobCancelled("cancelled by test")

    with pytest.raises(JobCancelled):
        LSTMForecaster(**{**FAST, "max_epochs": 5}).fit(daily, "D", on_progress=cancel_after_first)
    assert epochs == [1]


def test_trains_on_one_thread_by_default_and_restores_torchs_count(daily: pd.DataFrame) -> None:
    import torch

    before = torch.get_num_threads()
    during: list[int] = []
    LSTMForecaster(**FAST).fit(
        daily, "D", on_progress=lambda fraction, message="", **extra: during.append(
            torch.get_num_threads()))
    assert during and set(during) == {1}
    assert torch.get_num_threads() == before
