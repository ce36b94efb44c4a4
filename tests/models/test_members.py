"""The Forecaster contract, run over every member (and the ensemble, which is one too)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from conftest import FAST_LSTM, make_panel

from restock.models.base import Forecaster, NotFittedError
from restock.models.ensemble import EnsembleForecaster, clone, get_params
from restock.models.gbm import GBMChangeForecaster, GBMForecaster
from restock.models.lstm import LSTMForecaster
from restock.models.prophet import ProphetForecaster
from restock.models.statistical import MEMBERS as STATISTICAL
from restock.models.statistical import SeasonalNaiveForecaster, ThetaForecaster

MEMBERS: dict[str, Callable[[], Forecaster]] = {
    **STATISTICAL,
    "prophet": ProphetForecaster,
    "lstm": lambda: LSTMForecaster(**FAST_LSTM, seed=0),
    # as the ensemble builds it (price used when the data has it; one training for the
    # backtest), with a holiday calendar
    "gbm": lambda: GBMForecaster(n_estimators=60, use_price=True, cv_refit=False,
                                 holidays_country="US"),
    "gbm_diff": lambda: GBMChangeForecaster(n_estimators=60),
    "ensemble": lambda: EnsembleForecaster([SeasonalNaiveForecaster(), ThetaForecaster()]),
}


@pytest.fixture(params=list(MEMBERS), scope="module")
def make(request: pytest.FixtureRequest) -> Callable[[], Forecaster]:
    return MEMBERS[request.param]


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return make_panel()


@pytest.fixture(scope="module")
def fitted(make: Callable[[], Forecaster], daily: pd.DataFrame) -> Forecaster:
    return make().fit(daily, "D")


def test_init_only_stores_hyperparameters(make: Callable[[], Forecaster]) -> None:
    model = make()
    assert not [name for name in vars(model) if name.endswith("_")]
    copy = clone(model)
    assert copy is not model and type(copy) is type(model)
    if model.alias != "ensemble":  # its members are cloned objects, equal only in kind
        assert get_params(copy) == get_params(model)
    assert get_params(copy).keys() == get_params(model).keys()


def test_fit_returns_self(make: Callable[[], Forecaster], daily: pd.DataFrame) -> None:
    model = make()
    assert model.fit(daily, "D") is model
    assert isinstance(model.skipped_, dict)


def test_predict_or_save_before_fit_raises(make: Callable[[], Forecaster], tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        make().predict(5)
    with pytest.raises(NotFittedError):
        make().save(tmp_path)


def test_h_rows_per_series_after_the_last_date(fitted: Forecaster, daily: pd.DataFrame) -> None:
    forecast = fitted.predict(10)
    assert forecast.groupby("unique_id").size().to_dict() == {"s0": 10, "s1": 10, "s2": 10}
    first = forecast.groupby("unique_id")["ds"].min()
    assert (first == daily["ds"].max() + pd.Timedelta(days=1)).all()
    if fitted.alias != "ensemble":  # the ensemble adds its interval and every member's column
        assert list(forecast.columns) == ["unique_id", "ds", fitted.alias]
    point = forecast["yhat" if fitted.alias == "ensemble" else fitted.alias]
    assert np.isfinite(point).all() and (point >= 0).all()


@pytest.mark.parametrize(
    ("freq", "start", "on_calendar"),
    [
        ("W-FRI", "2020-01-03", lambda d: d.dayofweek == 4),
        ("MS", "2014-01-01", lambda d: d.day == 1),
    ],
)
def test_dates_continue_the_input_calendar(
    make: Callable[[], Forecaster], freq: str, start: str, on_calendar
) -> None:
    data = make_panel(n=120, freq=freq, start=start)
    forecast = make().fit(data, freq).predict(6)
    dates = pd.DatetimeIndex(forecast["ds"])
    assert on_calendar(dates).all()
    expected = pd.date_range(data["ds"].max(), periods=7, freq=freq)[1:]
    assert list(pd.DatetimeIndex(forecast.loc[forecast["unique_id"] == "s0", "ds"])) == list(expected)


def test_save_load_gives_identical_forecasts(fitted: Forecaster, tmp_path: Path) -> None:
    fitted.save(tmp_path)
    loaded = type(fitted).load(tmp_path)
    pd.testing.assert_frame_equal(fitted.predict(15), loaded.predict(15))


def test_short_and_all_zero_series(make: Callable[[], Forecaster], daily: pd.DataFrame) -> None:
    dates = pd.date_range("2023-01-01", periods=120, freq="D")
    extra = pd.DataFrame(
        {
            "unique_id": ["zero"] * 120 + ["short"] * 3,
            "ds": list(dates) + list(dates[-3:]),
            "y": [0.0] * 120 + [1.0, 0.0, 2.0],
        }
    )
    model = make().fit(pd.concat([daily, extra], ignore_index=True), "D")
    forecast = model.predict(7)
    predicted = set(forecast["unique_id"])
    assert predicted | set(model.skipped_) >= {"s0", "s1", "s2", "zero", "short"}
    assert {"s0", "s1", "s2", "zero"} <= predicted
    zero = forecast.loc[forecast["unique_id"] == "zero"].drop(columns=["unique_id", "ds"])
    assert np.isfinite(zero.to_numpy(float)).all() and (zero.to_numpy(float) >= 0).all()
    assert all(isinstance(reason, (str, dict)) and reason for reason in model.skipped_.values())


def test_single_series_dataset(make: Callable[[], Forecaster]) -> None:
    data = make_panel(n_series=1)
    forecast = make().fit(data, "D").predict(5)
    assert list(forecast["unique_id"].unique()) == ["s0"] and len(forecast) == 5
