"""The Prophet member: seasonalities from the data, clipping, skips, worker processes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_panel

from restock.errors import JobCancelled
from restock.models.prophet import ProphetForecaster


def seasonalities(model: ProphetForecaster, uid: str) -> dict:
    return model._model(uid).seasonalities


@pytest.mark.parametrize(
    ("n", "freq", "expected"),
    [
        (10, "D", set()),
        (120, "D", {"weekly"}),
        (729, "D", {"weekly"}),
        (730, "D", {"weekly", "yearly"}),  # two years, as the GBM and the LSTM
        (800, "D", {"weekly", "yearly"}),
        (120, "W-FRI", {"yearly"}),
        (20, "MS", set()),
        (60, "MS", {"yearly"}),
    ],
)
def test_seasonalities_follow_span_and_frequency(n: int, freq: str, expected: set) -> None:
    model = ProphetForecaster().fit(make_panel(n_series=1, n=n, freq=freq, start="2015-01-02"), freq)
    assert set(seasonalities(model, "s0")) == expected
    if freq == "MS" and expected:
        assert seasonalities(model, "s0")["yearly"]["fourier_order"] == 5


def test_negative_forecasts_are_clipped_and_counted() -> None:
    dates = pd.date_range("2024-01-01", periods=60, freq="D")
    data = pd.DataFrame({"unique_id": "falling", "ds": dates, "y": np.linspace(100, 2, 60)})
    model = ProphetForecaster().fit(data, "D")
    forecast = model.predict(30)
    assert (forecast["prophet"] >= 0).all()
    assert model.clipped_["falling"] > 0


def test_too_short_series_are_skipped_with_a_reason() -> None:
    data = pd.concat(
        [make_panel(n_series=1, n=30), pd.DataFrame({"unique_id": ["one"], "ds": [pd.Timestamp("2023-01-01")], "y": [3.0]})]
    )
    model = ProphetForecaster().fit(data, "D")
    assert set(model.skipped_) == {"one"} and "2 points" in model.skipped_["one"]
    assert set(model.predict(3)["unique_id"]) == {"s0"}


def test_country_holidays_are_added_for_daily_data() -> None:
    model = ProphetForecaster(holidays_country="US").fit(make_panel(n_series=1, n=400), "D")
    assert model._model("s0").country_holidays == "US"
    assert (model.predict(7)["prophet"] >= 0).all()


@pytest.fixture(scope="module")
def many() -> pd.DataFrame:
    return make_panel(n_series=44, n=40)


def test_worker_processes_match_the_in_process_fit(many: pd.DataFrame) -> None:
    progress: list[float] = []
    pooled = ProphetForecaster(n_jobs=2).fit(many, "D", on_progress=lambda f, m="", **e: progress.append(f))
    inline = ProphetForecaster(n_jobs=1).fit(many, "D")
    pd.testing.assert_frame_equal(pooled.predict(5), inline.predict(5))
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) > 1


def test_cancellation_in_the_callback_propagates(many: pd.DataFrame) -> None:
    def cancel(fraction: float, message: str = "", **extra: object) -> None:
        raise JobCancelled("cancelled by the user")

    with pytest.raises(JobCancelled):
        ProphetForecaster(n_jobs=2).fit(many, "D", on_progress=cancel)
