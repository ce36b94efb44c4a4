"""The statsforecast members beyond the contract: precomputing, save limits, the backtest
hook (window/step numbering checked against plain statsforecast on truncated series),
skips and fallbacks, processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_panel
from statsforecast import StatsForecast
from statsforecast.models import MSTL, AutoETS, DynamicOptimizedTheta, SeasonalNaive

import restock.models.statistical as statistical
from restock.errors import InvalidParameterError, JobCancelled
from restock.models.statistical import (
    MEMBERS,
    ETSForecaster,
    MSTLForecaster,
    SeasonalNaiveForecaster,
    StatisticalForecaster,
    ThetaForecaster,
    TSBForecaster,
)


def series(uid: str, y: np.ndarray, end: str, freq: str = "D") -> pd.DataFrame:
    dates = pd.date_range(end=end, periods=len(y), freq=freq)
    return pd.DataFrame({"unique_id": uid, "ds": dates, "y": np.asarray(y, dtype=float)})


@pytest.fixture(scope="module")
def uneven() -> pd.DataFrame:
    """Three series of different lengths ending on different dates, one too short."""
    rng = np.random.default_rng(5)
    week = 1 + 0.5 * np.sin(2 * np.pi * np.arange(200) / 7)
    return pd.concat(
        [
            series("long", rng.poisson(20 * week[:150]), "2024-03-31"),
            series("mid", rng.poisson(9 * week[:90]), "2024-02-10"),
            series("tiny", [3.0, 4.0, 5.0, 2.0, 6.0, 3.0, 4.0, 5.0, 6.0, 4.0], "2024-03-01"),
        ],
        ignore_index=True,
    )


def truncated_forecast(member: StatisticalForecaster, data: pd.DataFrame, uid: str,
                       n_train: int, h: int) -> np.ndarray:
    """What a fresh member fitted on the first ``n_train`` points of ``uid`` forecasts."""
    part = data[data["unique_id"] == uid].sort_values("ds").head(n_train)
    fresh = type(member)(**member.get_params())
    return fresh.fit(part, "D").predict(h)[fresh.alias].to_numpy()


@pytest.mark.parametrize(
    "member", [SeasonalNaiveForecaster(), ETSForecaster()], ids=lambda m: m.alias
)
def test_refit_windows_equal_fits_on_each_series_own_truncated_history(
    member: StatisticalForecaster, uneven: pd.DataFrame
) -> None:
    h, n_windows, step = 7, 3, 4
    cv = member.cross_validate(uneven, "D", h=h, n_windows=n_windows, step_size=step, refit=True)
    assert list(cv.columns) == ["unique_id", "window", "step", member.alias]
    lengths = uneven.groupby("unique_id").size()
    for uid in ("long", "mid"):
        rows = cv[cv["unique_id"] == uid]
        assert sorted(rows["window"].unique()) == [0, 1, 2]
        for w in range(n_windows):
            window = rows[rows["window"] == w].sort_values("step")
            assert list(window["step"]) == list(range(1, h + 1))
            n_train = lengths[uid] - h - (n_windows - 1 - w) * step
            expected = truncated_forecast(member, uneven, uid, n_train, h)
            np.testing.assert_allclose(window[member.alias].to_numpy(), expected, rtol=1e-10)


def window_part(data: pd.DataFrame, uid: str, h: int, n_windows: int, step: int,
                window: int) -> pd.DataFrame:
    """Window ``window``'s training part of ``uid``."""
    part = data[data["unique_id"] == uid].sort_values("ds")
    return part.head(len(part) - h - (n_windows - 1 - window) * step)


def test_later_windows_refit_the_form_the_oldest_window_chose(uneven: pd.DataFrame) -> None:
    """ETS ("settled"): window 0 is the full search on the oldest history; later windows
    refit that form's parameters on their own, longer history (not statsforecast's
    forward, which forecast ETS much worse)."""
    member = ETSForecaster()
    h, n_windows, step = 7, 3, 4
    cv = member.cross_validate(uneven, "D", h=h, n_windows=n_windows, step_size=step)
    refit = member.cross_validate(uneven, "D", h=h, n_windows=n_windows, step_size=step, refit=True)
    assert len(cv) == len(refit) == 2 * n_windows * h
    pd.testing.assert_frame_equal(cv[cv["window"] == 0].reset_index(drop=True),
                                  refit[refit["window"] == 0].reset_index(drop=True))
    oldest = window_part(uneven, "long", h, n_windows, step, 0)["y"].to_numpy()
    chosen = AutoETS(season_length=7).fit(oldest).model_["components"]
    for window in (1, 2):
        y = window_part(uneven, "long", h, n_windows, step, window)["y"].to_numpy()
        form = AutoETS(season_length=7, model=chosen[:3], damped=chosen[3] == "D")
        expected = np.maximum(form.fit(y).predict(h)["mean"], 0.0)
        rows = cv[(cv["unique_id"] == "long") & (cv["window"] == window)]
        np.testing.assert_allclose(rows["ets"].to_numpy(), expected, rtol=1e-10)


def test_theta_later_windows_run_the_oldest_fit_forward(uneven: pd.DataFrame) -> None:
    member = ThetaForecaster()
    h, n_windows, step = 7, 2, 7
    cv = member.cross_validate(uneven, "D", h=h, n_windows=n_windows, step_size=step)
    first = DynamicOptimizedTheta(season_length=7).fit(
        window_part(uneven, "mid", h, n_windows, step, 0)["y"].to_numpy())
    y = window_part(uneven, "mid", h, n_windows, step, 1)["y"].to_numpy()
    expected = np.maximum(first.forward(y=y, h=h)["mean"], 0.0)
    rows = cv[(cv["unique_id"] == "mid") & (cv["window"] == 1)]
    np.testing.assert_allclose(rows["theta"].to_numpy(), expected, rtol=1e-10)


def test_series_too_short_for_the_oldest_window_are_left_out(uneven: pd.DataFrame) -> None:
    # tiny has 10 points: 10 - 7 = 3 left to train on, under ETS's 7 but enough for naive
    ets = ETSForecaster().cross_validate(uneven, "D", h=7, n_windows=1, step_size=1)
    naive = SeasonalNaiveForecaster().cross_validate(uneven, "D", h=7, n_windows=1, step_size=1)
    assert set(ets["unique_id"]) == {"long", "mid"}
    assert set(naive["unique_id"]) == {"long", "mid", "tiny"}
    # no training point at all for anyone: an empty, typed table rather than an error
    empty = ETSForecaster().cross_validate(uneven, "D", h=100, n_windows=3, step_size=30)
    assert empty.empty and list(empty.columns) == ["unique_id", "window", "step", "ets"]


def test_cross_validate_rejects_bad_settings(uneven: pd.DataFrame) -> None:
    with pytest.raises(InvalidParameterError, match="n_windows"):
        ETSForecaster().cross_validate(uneven, "D", h=7, n_windows=0, step_size=1)


def test_intermittent_members_backtest_by_refitting(uneven: pd.DataFrame) -> None:
    member = TSBForecaster()
    assert member.later_windows == "refit"
    cv = member.cross_validate(uneven, "D", h=5, n_windows=2, step_size=5)
    n_train = uneven.groupby("unique_id").size()["mid"] - 5 - 5
    np.testing.assert_allclose(
        cv[(cv["unique_id"] == "mid") & (cv["window"] == 0)]["tsb"].to_numpy(),
        truncated_forecast(member, uneven, "mid", n_train, 5),
    )


class _BrokenForward(SeasonalNaive):
    def forward(self, *args: Any, **kwargs: Any) -> dict:
        raise RuntimeError("forward failed")


class _BrokenForwardMember(SeasonalNaiveForecaster):
    later_windows = "forward"

    def _make_model(self, season: Any) -> Any:
        return _BrokenForward(season_length=season, alias=self.alias)


def test_a_failing_forward_falls_back_to_refitting(uneven: pd.DataFrame) -> None:
    broken = _BrokenForwardMember().cross_validate(uneven, "D", h=7, n_windows=2, step_size=7)
    plain = SeasonalNaiveForecaster().cross_validate(uneven, "D", h=7, n_windows=2, step_size=7)
    pd.testing.assert_frame_equal(broken, plain)


class _MultiplicativeETS(ETSForecaster):
    """A model statsforecast refuses on data with zeros: the NaN fallback must catch it."""

    def _make_model(self, season: Any) -> Any:
        return AutoETS(model="MNN", alias=self.alias)


def test_series_statsforecast_fails_on_are_skipped_with_a_reason() -> None:
    data = pd.concat(
        [series("positive", np.arange(1.0, 41.0), "2024-01-31"),
         series("zeros", np.tile([0.0, 3.0], 20), "2024-01-31")],
        ignore_index=True,
    )
    model = _MultiplicativeETS().fit(data, "D")
    assert set(model.predict(5)["unique_id"]) == {"positive"}
    assert "could not fit" in model.skipped_["zeros"]
    cv = _MultiplicativeETS().cross_validate(data, "D", h=5, n_windows=2, step_size=5)
    assert set(cv["unique_id"]) == {"positive"}


def test_precomputed_steps_and_longer_horizons() -> None:
    data = make_panel(n_series=2, n=60)
    model = ETSForecaster()
    model.precompute_h = 5
    model.fit(data, "D")
    assert model.steps_ == 5
    first = model.predict(3)
    longer = model.predict(12)  # beyond the precomputed steps: forecast again in memory
    assert len(longer) == 24
    pd.testing.assert_frame_equal(
        first, longer.groupby("unique_id").head(3).reset_index(drop=True)
    )
    fresh = ETSForecaster()
    fresh.precompute_h = 12
    pd.testing.assert_frame_equal(longer, fresh.fit(data, "D").predict(12))


def test_loaded_member_predicts_its_saved_steps_and_refuses_more(tmp_path: Path) -> None:
    data = make_panel(n_series=2, n=60)
    model = ETSForecaster()
    model.precompute_h = 10
    model.fit(data, "D").save(tmp_path)
    assert (tmp_path / "statistical" / "ets.parquet").exists()
    loaded = ETSForecaster.load(tmp_path)
    pd.testing.assert_frame_equal(model.predict(10), loaded.predict(10))
    pd.testing.assert_frame_equal(model.predict(4), loaded.predict(4))
    with pytest.raises(InvalidParameterError, match="10 forecast steps"):
        loaded.predict(11)


def test_clipped_negative_forecasts_are_counted() -> None:
    falling = series("falling", 100.0 - 4.0 * np.arange(24), "2024-01-31")
    model = ETSForecaster().fit(falling, "D")
    forecast = model.predict(10)
    assert forecast["ets"].min() == 0.0
    assert model.clipped_["falling"] == int((forecast["ets"] == 0).sum()) > 0


def test_seasonal_naive_is_naive_below_one_season() -> None:
    data = pd.concat(
        [series("short", [4.0, 9.0, 2.0], "2024-01-31"),
         series("long", np.arange(14.0), "2024-01-31")],
        ignore_index=True,
    )
    forecast = SeasonalNaiveForecaster().fit(data, "D").predict(8).set_index("unique_id")
    assert list(forecast.loc["short", "seasonal_naive"]) == [2.0] * 8
    assert list(forecast.loc["long", "seasonal_naive"]) == [7.0, 8, 9, 10, 11, 12, 13, 7]


def test_mstl_adds_the_yearly_cycle_with_two_years_of_daily_data() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(800)
    seasons = 10 * np.sin(2 * np.pi * t / 7) + 20 * np.sin(2 * np.pi * t / 365)
    y = 50 + seasons + rng.normal(0, 2, 800)
    data = pd.concat(
        [series("two_years", y, "2024-06-30"), series("one_year", y[-400:], "2024-06-30")],
        ignore_index=True,
    )
    forecast = MSTLForecaster().fit(data, "D").predict(14)
    for uid, periods in (("two_years", [7, 365]), ("one_year", 7)):
        model = MSTL(season_length=periods, trend_forecaster=AutoETS(model="ZZN"), alias="m")
        expected = StatsForecast(models=[model], freq="D").forecast(
            df=data[data["unique_id"] == uid], h=14
        )["m"].to_numpy()
        np.testing.assert_allclose(
            forecast.loc[forecast["unique_id"] == uid, "mstl"], np.maximum(expected, 0), rtol=1e-10
        )


def test_mstl_skips_series_without_two_seasons_or_a_seasonal_frequency() -> None:
    data = pd.concat(
        [series("ok", np.arange(30.0), "2024-01-31"),
         series("short", np.arange(10.0), "2024-01-31")],
        ignore_index=True,
    )
    model = MSTLForecaster().fit(data, "D")
    assert set(model.predict(3)["unique_id"]) == {"ok"}
    assert "two seasons" in model.skipped_["short"]
    hourly = series("h", np.arange(50.0), "2024-01-31", freq="h")
    assert "seasonal frequency" in MSTLForecaster().fit(hourly, "h").skipped_["h"]


@pytest.mark.parametrize("alias", list(MEMBERS))
def test_progress_is_reported_from_zero_to_one(alias: str) -> None:
    data = make_panel(n_series=2, n=40)
    calls: list[float] = []
    member = MEMBERS[alias]()
    member.fit(data, "D", on_progress=lambda f, m="", **_: calls.append(f))
    assert calls[0] == 0.0 and calls[-1] == 1.0
    calls.clear()
    member.cross_validate(data, "D", h=7, n_windows=2, step_size=3,
                          on_progress=lambda f, m="", **_: calls.append(f))
    assert calls[0] == 0.0 and calls[-1] == 1.0


def test_process_pool_gives_the_same_forecasts_and_is_deterministic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(statistical, "SHARD_SERIES", 2)  # three chunks over one pool
    data = make_panel(n_series=6, n=80)
    single = ETSForecaster(n_jobs=1).fit(data, "D").predict(9)
    pooled = ETSForecaster(n_jobs=2)
    pooled.pool_min_series = 1  # type: ignore[misc] - force the pool on a small panel
    assert pooled._workers(6) == min(2, multiprocessing.cpu_count())
    pd.testing.assert_frame_equal(single, pooled.fit(data, "D").predict(9))
    pd.testing.assert_frame_equal(single, ETSForecaster(n_jobs=1).fit(data, "D").predict(9))
    windows = {"h": 7, "n_windows": 3, "step_size": 4}
    pd.testing.assert_frame_equal(ETSForecaster(n_jobs=1).cross_validate(data, "D", **windows),
                                  pooled.cross_validate(data, "D", **windows))


def _workers_in_daemon(queue: Any) -> None:
    member = ETSForecaster(n_jobs=2)
    member.pool_min_series = 1  # type: ignore[misc]
    queue.put(member._workers(100))


def test_no_pool_inside_a_daemonic_process() -> None:
    """A Celery prefork worker is daemonic and may not start children: run in-process."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_workers_in_daemon, args=(queue,), daemon=True)
    process.start()
    assert queue.get(timeout=60) == 1
    process.join(timeout=60)


@pytest.mark.parametrize("pooled", [False, True], ids=["here", "pool"])
def test_cancelling_from_the_progress_callback_stops_between_chunks(
    pooled: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(statistical, "CHUNK_SERIES", 1)
    monkeypatch.setattr(statistical, "SHARD_SERIES", 1)
    member = ETSForecaster(n_jobs=2 if pooled else 1)
    member.pool_min_series = 1  # type: ignore[misc] - the pool on a small panel
    seen: list[float] = []

    def cancel_after_first_chunk(fraction: float, message: str = "", **_: Any) -> None:
        seen.append(fraction)
        if fraction > 0:
            raise JobCancelled("cancelled")

    with pytest.raises(JobCancelled):
        member.fit(make_panel(n_series=4, n=40), "D", on_progress=cancel_after_first_chunk)
    assert seen == [0.0, 0.25]
