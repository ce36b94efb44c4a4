"""The global LightGBM members' own features and backtest (their Forecaster contract is
run with every member's in ``test_members.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_panel

from restock.errors import InvalidParameterError, JobCancelled
from restock.models.gbm import GBMChangeForecaster, GBMForecaster, HolidayFeature, plan_features

#: small but real boosters: enough trees to learn a weekly shape, fast enough for CI
FAST = {"n_estimators": 60, "n_jobs": 1}


def make(**params) -> GBMForecaster:
    return GBMForecaster(**(FAST | params))


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return make_panel()


@pytest.fixture(scope="module")
def fitted(daily: pd.DataFrame) -> GBMForecaster:
    return make().fit(daily, "D")


# ------------------------------------------- beyond the contract (tests/models/test_members.py)


def test_learns_the_level_and_weekly_shape(fitted: GBMForecaster, daily: pd.DataFrame) -> None:
    """Series levels differ 3x and the panel has a weekly cycle: both must come through."""
    forecast = fitted.predict(14)
    means = forecast.groupby("unique_id")["gbm"].mean()
    recent = daily[daily["ds"] > daily["ds"].max() - pd.Timedelta(days=28)]
    actual = recent.groupby("unique_id")["y"].mean()
    assert np.allclose(means / actual, 1.0, atol=0.25)
    s2 = forecast[forecast["unique_id"] == "s2"]
    by_day = s2.groupby(pd.DatetimeIndex(s2["ds"]).dayofweek)["gbm"].mean()
    assert by_day.max() / by_day.min() > 1.3  # the panel's weekly swing is +-40 %


def test_save_load_gives_identical_forecasts_for_any_h(
    fitted: GBMForecaster, tmp_path: Path
) -> None:
    fitted.save(tmp_path)
    assert {p.name for p in (tmp_path / "gbm").iterdir()} == {
        "booster.txt", "gbm.json", "history.parquet"
    }
    loaded = GBMForecaster.load(tmp_path)
    for h in (1, 15, 60):
        pd.testing.assert_frame_equal(fitted.predict(h), loaded.predict(h))
    assert loaded.skipped_ == fitted.skipped_


def test_precompute_h_returns_the_same_forecasts(daily: pd.DataFrame, tmp_path: Path) -> None:
    plain = make().fit(daily, "D")
    model = make()
    model.precompute_h = 20
    model.fit(daily, "D")
    assert model._precomputed is not None and len(model._precomputed) == 3 * 20
    for h in (5, 20, 30):  # 30 > precompute_h: computed on the spot
        pd.testing.assert_frame_equal(model.predict(h), plain.predict(h))
    model.save(tmp_path)
    pd.testing.assert_frame_equal(GBMForecaster.load(tmp_path).predict(20), model.predict(20))


def test_same_seed_same_forecasts(daily: pd.DataFrame) -> None:
    first = make(seed=3).fit(daily, "D").predict(14)
    second = make(seed=3).fit(daily, "D").predict(14)
    pd.testing.assert_frame_equal(first, second)


def test_short_zero_and_constant_series(daily: pd.DataFrame) -> None:
    dates = pd.date_range("2023-01-01", periods=120, freq="D")
    extra = pd.DataFrame(
        {
            "unique_id": ["zero"] * 120 + ["flat"] * 120 + ["short"] * 3 + ["one"],
            "ds": list(dates) * 2 + list(dates[-3:]) + [dates[-1]],
            "y": [0.0] * 120 + [5.0] * 120 + [1.0, 0.0, 2.0] + [4.0],
        }
    )
    model = make().fit(pd.concat([daily, extra], ignore_index=True), "D")
    forecast = model.predict(7)
    assert set(forecast["unique_id"]) == {"s0", "s1", "s2", "zero", "flat", "short"}
    assert set(model.skipped_) == {"one"} and "shorter than" in model.skipped_["one"]
    assert np.isfinite(forecast["gbm"]).all() and (forecast["gbm"] >= 0).all()
    by_series = forecast.groupby("unique_id")["gbm"]
    assert by_series.max()["zero"] < 0.5  # scaled by 1, learnt from zeros: stays near zero
    flat = forecast.loc[forecast["unique_id"] == "flat", "gbm"]
    assert np.allclose(flat, 5.0, rtol=0.3)


def test_only_zero_series_do_not_crash() -> None:
    dates = pd.date_range("2023-01-01", periods=60, freq="D")
    data = pd.DataFrame({"unique_id": "z", "ds": dates, "y": 0.0})
    forecast = make().fit(data, "D").predict(5)
    assert len(forecast) == 5 and (forecast["gbm"] == 0).all()


def test_no_usable_series_gives_an_empty_forecast(tmp_path: Path) -> None:
    data = pd.DataFrame({"unique_id": ["a"], "ds": [pd.Timestamp("2024-01-01")], "y": [3.0]})
    model = make().fit(data, "D")
    assert model.skipped_.keys() == {"a"}
    assert model.predict(4).empty
    model.save(tmp_path)
    assert GBMForecaster.load(tmp_path).predict(4).empty


def test_missing_dates_count_as_no_sales(daily: pd.DataFrame) -> None:
    """A gap in a series would shift every lag; the member fills it with zero sales."""
    gappy = daily.drop(daily.index[(daily["unique_id"] == "s1") & (daily["y"].index % 9 == 0)])
    filled = daily.copy()
    filled.loc[(filled["unique_id"] == "s1") & (filled.index % 9 == 0), "y"] = 0.0
    pd.testing.assert_frame_equal(
        make().fit(gappy, "D").predict(7), make().fit(filled, "D").predict(7)
    )


def test_negative_forecasts_are_clipped_and_counted() -> None:
    """Squared error with a large step size overshoots below zero on an intermittent
    series (Tweedie cannot): the forecasts are clipped at 0 and counted per series."""
    dates = pd.date_range("2023-01-01", periods=200, freq="D")
    spiky = np.where(np.random.default_rng(0).random(200) < 0.1, 50.0, 0.0)
    data = pd.concat(
        [pd.DataFrame({"unique_id": "spiky", "ds": dates, "y": spiky}), make_panel(n=200)],
        ignore_index=True,
    )
    model = make(objective="l2", learning_rate=0.5).fit(data, "D")
    raw = model._forecast(30)
    negative = raw.loc[raw["gbm"] < 0].groupby("unique_id").size().to_dict()
    assert negative, "this data must give squared error some negative forecasts"
    forecast = model.predict(30)
    assert (forecast["gbm"] >= 0).all()
    assert model.clipped_ == negative


def test_progress_reports_and_cancellation(daily: pd.DataFrame) -> None:
    seen: list[float] = []
    make().fit(daily, "D", lambda fraction, message="", **extra: seen.append(fraction))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 5

    def cancel(fraction: float, message: str = "", **extra) -> None:
        if fraction > 0.3:
            raise JobCancelled("stop")

    with pytest.raises(JobCancelled):
        make().fit(daily, "D", cancel)


# ---------------------------------------------------------------------- features


def test_feature_plan_follows_frequency_and_history() -> None:
    long_daily = plan_features("D", np.array([730, 700]), 729, "US", price=False)
    assert long_daily.lags == [1, 2, 3, 4, 5, 6, 7, 14, 21, 28]
    assert {"dayofweek", "dayofyear", "month"} <= set(long_daily.date_features)
    assert long_daily.holidays_country == "US"
    one_year = plan_features("D", np.array([365]), 364, "US", price=False)
    assert "dayofyear" not in one_year.date_features  # one year cannot separate a yearly cycle
    monthly = plan_features("MS", np.array([48, 100]), 3000, "US", price=False)
    assert monthly.lags == [*range(1, 13), 24] and monthly.date_features == ["month"]
    assert monthly.holidays_country == ""  # holidays are a daily effect
    weekly = plan_features("W-SUN", np.array([104]), 720, "", price=False)
    assert 52 in weekly.lags and 104 not in weekly.lags  # half the median history at most
    short = plan_features("D", np.array([30]), 29, "", price=False)
    assert max(short.lags) <= 15 and short.seasonal == []


def test_holiday_feature_marks_public_holidays() -> None:
    dates = pd.DatetimeIndex(["2030-12-24", "2030-12-25", "2031-07-04", "2031-07-05"])
    assert HolidayFeature("US")(dates).tolist() == [0.0, 1.0, 1.0, 0.0]
    with pytest.raises(InvalidParameterError, match="'XX' is not a country code"):
        HolidayFeature("XX")


def _holiday_panel() -> pd.DataFrame:
    """Three series over two years that sell 4x on US public holidays."""
    dates = pd.date_range("2022-01-01", "2023-12-20", freq="D")
    holiday = HolidayFeature("US")(dates)
    rng = np.random.default_rng(1)
    frames = [
        pd.DataFrame(
            {"unique_id": f"h{i}", "ds": dates,
             "y": rng.poisson(10.0 * (i + 1) * (1 + 3 * holiday)).astype(float)}
        )
        for i in range(3)
    ]
    return pd.concat(frames, ignore_index=True)


def test_holidays_country_lets_the_trees_see_holidays() -> None:
    data = _holiday_panel()
    with_holidays = make(n_estimators=150, holidays_country="US").fit(data, "D")
    assert "holiday" in with_holidays.booster_.feature_name()
    without = make(n_estimators=150).fit(data, "D")
    christmas = pd.Timestamp("2023-12-25")

    def lift(model: GBMForecaster) -> float:
        forecast = model.predict(10)
        on_day = forecast.loc[forecast["ds"] == christmas, "gbm"].mean()
        return on_day / forecast.loc[forecast["ds"] != christmas, "gbm"].mean()

    assert lift(with_holidays) > 2.5
    assert lift(with_holidays) > lift(without) + 1.0


def test_price_is_a_feature_with_the_recent_median_as_future(tmp_path: Path) -> None:
    """Sales double at the low price; the recent median price is the future price."""
    rng = np.random.default_rng(2)
    dates = pd.date_range("2023-01-01", periods=240, freq="D")
    frames = []
    for i, last_price in enumerate([5.0, 10.0, 5.0, 10.0]):
        price = np.where((np.arange(240) // 15) % 2 == 0, 10.0, 5.0)
        price[-40:] = last_price
        price[-1] = 15.0 - last_price  # a one-day change: the median ignores it
        y = rng.poisson(np.where(price < 8, 40.0, 20.0)).astype(float)
        frames.append(pd.DataFrame({"unique_id": f"p{i}", "ds": dates, "y": y, "price": price}))
    data = pd.concat(frames, ignore_index=True)
    assert "price" not in make().fit(data, "D").booster_.feature_name()  # opt-in
    model = make(n_estimators=150, use_price=True).fit(data, "D")
    assert "price" in model.booster_.feature_name()
    forecast = model.predict(7)
    means = forecast.groupby("unique_id")["gbm"].mean()
    assert means["p0"] > 1.4 * means["p1"] and means["p2"] > 1.4 * means["p3"]
    model.save(tmp_path)
    pd.testing.assert_frame_equal(GBMForecaster.load(tmp_path).predict(30), model.predict(30))


# ---------------------------------------------------------------------- backtest


def _truncated(df: pd.DataFrame, keep: dict[str, int]) -> pd.DataFrame:
    ordered = df.sort_values(["unique_id", "ds"])
    position = ordered.groupby("unique_id").cumcount()
    return ordered[position < ordered["unique_id"].map(keep)].reset_index(drop=True)


def test_cross_validate_windows_match_truncated_fits() -> None:
    """Window w trains on each series' first n - h - (W-1-w)*step points, cut from its own
    end: s1 ends ten days before s0 and s2 here, and must be cut ten days earlier too."""
    panel = make_panel(n=150)
    late = panel["ds"] > panel["ds"].max() - pd.Timedelta(days=10)
    panel = panel[~((panel["unique_id"] == "s1") & late)]
    h, windows, step = 7, 3, 4
    table = make().cross_validate(panel, "D", h=h, n_windows=windows, step_size=step)
    assert list(table.columns) == ["unique_id", "window", "step", "gbm"]
    assert table.groupby(["unique_id", "window"]).size().eq(h).all()
    assert sorted(table["window"].unique()) == [0, 1, 2]
    assert table["step"].tolist()[:h] == list(range(1, h + 1))
    lengths = panel.groupby("unique_id").size()
    for window in (0, 2):
        keep = {uid: n - h - (windows - 1 - window) * step for uid, n in lengths.items()}
        manual = make().fit(_truncated(panel, keep), "D").predict(h)
        got = table[table["window"] == window].reset_index(drop=True)
        np.testing.assert_array_equal(got["gbm"].to_numpy(), manual["gbm"].to_numpy())
        assert got["unique_id"].tolist() == manual["unique_id"].tolist()


def test_cross_validate_leaves_out_series_too_short_for_a_window() -> None:
    panel = make_panel(n=100)
    dates = pd.date_range("2023-01-01", periods=100, freq="D")
    tiny = pd.DataFrame({"unique_id": "tiny", "ds": dates[-12:], "y": 3.0})
    table = make().cross_validate(pd.concat([panel, tiny]), "D", h=7, n_windows=2, step_size=3)
    # tiny has 12 points: window 0 trains on 12 - 7 - 3 = 2 (kept), window 1 on 5
    assert set(table.loc[table["window"] == 0, "unique_id"]) == {"s0", "s1", "s2", "tiny"}
    table = make().cross_validate(pd.concat([panel, tiny]), "D", h=10, n_windows=2, step_size=5)
    # now window 0 leaves 12 - 10 - 5 < 0 points: left out of it, back in window 1 (2 points)
    assert "tiny" not in set(table.loc[table["window"] == 0, "unique_id"])
    assert "tiny" in set(table.loc[table["window"] == 1, "unique_id"])


def test_cross_validate_reports_progress() -> None:
    seen: list[float] = []
    make().cross_validate(
        make_panel(n=80), "D", h=7, n_windows=2, step_size=7,
        on_progress=lambda fraction, message="", **extra: seen.append(fraction),
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


@pytest.mark.parametrize("cv_refit", [True, False])
def test_cross_validate_never_looks_ahead(cv_refit: bool) -> None:
    """Changing the data after window 1's cutoff cannot change windows 0 and 1."""
    panel = make_panel(n=120)
    h, windows, step = 7, 3, 5
    changed = panel.copy()
    cutoff = panel["ds"].max() - pd.Timedelta(days=h + step - 1)  # after window 1's training
    changed.loc[changed["ds"] >= cutoff, "y"] *= 3
    first = make(cv_refit=cv_refit).cross_validate(panel, "D", h, windows, step)
    second = make(cv_refit=cv_refit).cross_validate(changed, "D", h, windows, step)
    early = first["window"] < 2
    pd.testing.assert_frame_equal(first[early], second[early])
    assert not first[~early].equals(second[~early])


def test_cross_validate_without_refit_trains_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import restock.models.gbm as gbm

    trained = []
    real_train = gbm.lgb.train
    monkeypatch.setattr(gbm.lgb, "train", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    panel = make_panel(n=120)
    once = make(cv_refit=False).cross_validate(panel, "D", h=7, n_windows=3, step_size=5)
    assert len(trained) == 1
    every = make().cross_validate(panel, "D", h=7, n_windows=3, step_size=5)
    assert len(trained) == 4
    assert once.groupby(["unique_id", "window"]).size().eq(7).all() and len(once) == len(every)
    pd.testing.assert_frame_equal(once[once["window"] == 0], every[every["window"] == 0])
    assert not once[once["window"] == 2].equals(every[every["window"] == 2])
    assert (once["gbm"] >= 0).all()


# ---------------------------------------------------------------------- the change member


def trending(n: int = 96, freq: str = "MS") -> pd.DataFrame:
    """Monthly series rising at different rates (with a little noise), and special cases:
    an exact line, a constant and a never-sold series."""
    rng = np.random.default_rng(1)
    dates = pd.date_range("2015-01-01", periods=n, freq=freq)
    t = np.arange(n, dtype=float)
    series = {f"up{i}": 50 + (1 + i) * t + rng.normal(0, 2, n) for i in range(6)}
    series |= {"line": 10 + 2 * t, "flat": np.full(n, 5.0), "zero": np.zeros(n)}
    return pd.concat(
        [pd.DataFrame({"unique_id": uid, "ds": dates, "y": y}) for uid, y in series.items()],
        ignore_index=True,
    )


def make_change(**params) -> GBMChangeForecaster:
    return GBMChangeForecaster(**(FAST | params))


def test_change_member_follows_a_trend_the_level_member_cannot() -> None:
    """Trees forecast no level they have not seen: on levels a rising series comes out
    flat; on changes it keeps rising. The special cases come out exactly."""
    data = trending()
    h = 12
    after = np.arange(96, 96 + h, dtype=float)
    change = make_change().fit(data, "MS").predict(h).set_index(["unique_id", "ds"])
    level = make().fit(data, "MS").predict(h).set_index(["unique_id", "ds"])
    errors = {"change": [], "level": []}
    for i in range(6):
        truth = 50 + (1 + i) * after
        errors["change"].append(np.abs(change.loc[f"up{i}", "gbm_diff"].to_numpy() - truth).mean())
        errors["level"].append(np.abs(level.loc[f"up{i}", "gbm"].to_numpy() - truth).mean())
        assert change.loc[f"up{i}", "gbm_diff"].iloc[-1] > data.loc[
            data["unique_id"] == f"up{i}", "y"].iloc[-1]
    assert np.mean(errors["change"]) < 0.5 * np.mean(errors["level"])
    np.testing.assert_allclose(change.loc["line", "gbm_diff"], 10 + 2 * after)
    assert (change.loc["flat", "gbm_diff"] == 5.0).all()
    assert (change.loc["zero", "gbm_diff"] == 0.0).all()


def test_change_member_save_load_and_backtest(tmp_path: Path) -> None:
    data = trending()
    model = make_change().fit(data, "MS")
    model.save(tmp_path)
    assert {p.name for p in (tmp_path / "gbm_diff").iterdir()} == {
        "booster.txt", "gbm.json", "history.parquet"
    }
    # the recursive forecast reads history_needed changes: one more observation
    assert len(model._history) == 9 * (model.plan_.history_needed + 1)
    loaded = GBMChangeForecaster.load(tmp_path)
    for h in (1, 12, 30):
        pd.testing.assert_frame_equal(model.predict(h), loaded.predict(h))
    table = make_change(cv_refit=False).cross_validate(data, "MS", h=6, n_windows=3,
                                                       step_size=3)
    assert list(table.columns) == ["unique_id", "window", "step", "gbm_diff"]
    assert table.groupby(["unique_id", "window"]).size().eq(6).all()
    # window 2 ends where the data ends: the exact line is forecast on from its own cutoff
    line = table[(table["unique_id"] == "line") & (table["window"] == 2)]
    np.testing.assert_allclose(line["gbm_diff"], 10 + 2 * np.arange(90, 96))


@pytest.mark.parametrize("objective", ["tweedie", "poisson"])
def test_change_member_refuses_a_count_objective(objective: str) -> None:
    """Changes are signed; the count objectives need a target >= 0. By default each
    member takes the objective of its target."""
    with pytest.raises(InvalidParameterError, match=objective):
        make_change(objective=objective).fit(trending(), "MS")
    assert make_change()._lgb_params()["objective"] == "l2"
    assert make()._lgb_params()["objective"] == "tweedie"


def test_change_member_skips_series_without_a_change_to_learn_from() -> None:
    """Two observations make one change, which no earlier change can explain: skipped,
    and with nothing else to learn from the forecast is empty (not a crash)."""
    dates = pd.date_range("2024-01-01", periods=2, freq="MS")
    pairs = pd.DataFrame({"unique_id": ["a", "a", "b", "b"], "ds": [*dates, *dates],
                          "y": [1.0, 4.0, 0.0, 2.0]})
    model = make_change().fit(pairs, "MS")
    assert set(model.skipped_) == {"a", "b"} and "shorter than the 3" in model.skipped_["a"]
    assert model.predict(3).empty
    mixed = make_change().fit(pd.concat([trending(), pairs], ignore_index=True), "MS")
    assert set(mixed.skipped_) == {"a", "b"}
    assert set(mixed.predict(3)["unique_id"]) == set(trending()["unique_id"])
