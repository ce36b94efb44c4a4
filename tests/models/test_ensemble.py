"""The ensemble with real Prophet and a real (tiny) LSTM: selection, intervals, artifacts."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FAST_LSTM, make_panel

from restock.errors import InvalidParameterError, JobCancelled
from restock.models.base import no_progress
from restock.models.backtest import drop_last
from restock.models.ensemble import EnsembleForecaster, backtest_step, default_backtest_h
from restock.models.lstm import LSTMForecaster
from restock.models.metrics import mase_scales
from restock.models.prophet import ProphetForecaster
from restock.models.selection import Choice, select
from restock.models.statistical import (
    CrostonSBAForecaster,
    SeasonalNaiveForecaster,
    ThetaForecaster,
)


def members() -> list:
    return [
        ProphetForecaster(),
        LSTMForecaster(**FAST_LSTM, seed=0),
        SeasonalNaiveForecaster(),
        ThetaForecaster(),
        CrostonSBAForecaster(),
    ]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    short = make_panel(n_series=1, n=20, seed=3).assign(unique_id="new")  # shorter than the LSTM window
    return pd.concat([make_panel(n_series=3, n=120), short], ignore_index=True)


@pytest.fixture(scope="module")
def auto(data: pd.DataFrame) -> EnsembleForecaster:
    return EnsembleForecaster(members(), weights="auto", backtest_h=14).fit(data, "D")


@pytest.fixture(scope="module")
def seed(data: pd.DataFrame) -> EnsembleForecaster:
    return EnsembleForecaster(members(), weights="seed", backtest_h=14).fit(data, "D")


def test_seed_weights_are_exactly_sixty_forty(seed: EnsembleForecaster) -> None:
    assert seed.weights_["weights"] == {
        "prophet": 0.6, "lstm": 0.4, "seasonal_naive": 0.0, "theta": 0.0, "croston_sba": 0.0
    }
    forecast = seed.predict(10).set_index("unique_id")
    full = forecast.drop(index="new")
    assert np.allclose(full["yhat"], 0.6 * full["prophet"] + 0.4 * full["lstm"], rtol=0, atol=1e-9)


def test_a_missing_member_renormalises_and_is_recorded(seed: EnsembleForecaster) -> None:
    forecast = seed.predict(10)
    new = forecast[forecast["unique_id"] == "new"]
    assert new["lstm"].isna().all()
    assert np.allclose(new["yhat"], new["prophet"])
    assert "lstm" in seed.renormalized_["new"]
    assert "new" in seed.skipped_["lstm"]


def test_auto_chooses_a_rule_per_backtested_series(
    auto: EnsembleForecaster, data: pd.DataFrame
) -> None:
    frame = auto.backtest_
    assert set(auto.weights_["per_series"]) == set(frame["unique_id"])
    aliases = [m.alias for m in auto.members]
    for document in auto.weights_["per_series"].values():
        choice = Choice.from_json(document)
        assert choice.members and set(choice.members) <= set(aliases)
    losses = auto.weights_["backtest_mase"]
    assert set(losses) == {"best", "top2_mean", "top3_mean", "top3_median", "top5_median",
                           "global", "selected"}
    # the published selection loss is the MASE of the stored backtest predictions (each
    # window's rule chosen without it), per window, then per series
    scales = mase_scales(drop_last(data, 14 + 2 * backtest_step(14)), "D")
    scaled = (frame["yhat"] - frame["y"]).abs() / frame["unique_id"].map(scales)
    per_window = scaled.groupby([frame["unique_id"], frame["window"]]).mean()
    assert losses["selected"] == pytest.approx(per_window.groupby(level=0).mean().mean())
    forecast = auto.predict(5).set_index("unique_id")
    s0 = Choice.from_json(auto.weights_["per_series"]["s0"])
    members = forecast.loc["s0", list(s0.members)]
    expected = members.median(axis=1) if s0.combine == "median" else members.mean(axis=1)
    assert np.allclose(forecast.loc["s0", "yhat"], np.maximum(expected, 0))


def _frame(errors: dict[str, list[float]]) -> pd.DataFrame:
    """A backtest of two series ("a", "b") over three disjoint windows of four steps, y = 10."""
    rows = [{"unique_id": uid, "window": w, "step": k, "y": 10.0,
             "ds": pd.Timestamp("2024-01-01") + pd.Timedelta(days=4 * w + k)}
            for uid in ("a", "b") for w in range(3) for k in range(1, 5)]
    frame = pd.DataFrame(rows)
    for alias, per_window in errors.items():
        frame[alias] = 10.0 + np.tile(np.repeat(per_window, 4), 1)
    return frame


def test_per_series_choices_follow_the_better_member() -> None:
    frame = _frame({"m1": [0, 0, 0, 9, 9, 9], "m2": [9, 9, 9, 0, 0, 0], "m3": [5] * 6})
    selection = select(frame, ["m1", "m2", "m3"], pd.Series({"a": 1.0, "b": 1.0}))
    assert selection.choice("a").members[0] == "m1"
    assert selection.choice("b").members[0] == "m2"
    assert selection.choice("unseen") == selection.global_choice


def test_rules_are_scored_on_windows_they_did_not_choose_on() -> None:
    from restock.models.selection import _evidence_apart, _ranks

    # one series, three disjoint windows of one point: m1 perfect on windows 0 and 1 and
    # far off on window 2, m2 steady
    errors = np.array([[0.0, 4.0], [0.0, 4.0], [30.0, 4.0]])
    dates = pd.date_range("2024-01-01", periods=3).to_numpy("datetime64[ns]")
    windows = np.arange(3)
    loss = errors[None, :, :]
    total, count = _evidence_apart(errors, dates, np.zeros(3, int), windows, 1, 3)
    ranks = _ranks(total, count, loss, np.array([4.0, 4.0]))
    assert ranks[0, 2, 0] == 0  # window 2 is forecast by what windows 0-1 ranked best: m1
    assert ranks[0, 0, 0] == 1 and ranks[0, 1, 0] == 1  # windows 0, 1 see m1's miss on 2
    every = _ranks(loss.sum(axis=1, keepdims=True), np.full((1, 1, 2), 3.0), loss,
                   np.array([4.0, 4.0]))
    assert (every[0, :, 0] == 1).all()


def test_a_window_is_forecast_by_the_rule_chosen_without_it() -> None:
    # series a: m1 perfect on windows 0-1 and 60 off on window 2, m2 one off throughout.
    # Only window 2's miss makes a's own rule (the mean of both) beat the global rule (m1)
    frame = _frame({"m1": [0, 0, 60, 0, 0, 0], "m2": [1, 1, 1, 20, 20, 20]})
    selection = select(frame, ["m1", "m2"], pd.Series({"a": 1.0, "b": 1.0}))
    assert selection.global_choice.members == ("m1",)
    assert selection.choice("a").rule == "top2_mean"
    frame["yhat"] = selection.backtest_yhat
    a = frame[frame["unique_id"] == "a"].groupby("window")["yhat"].mean()
    # windows 0 and 1 take the rule window 2's evidence chose; window 2, judged without
    # itself, keeps the global rule and its miss: the residual the intervals must see
    assert np.allclose(a, [10.5, 10.5, 70.0])
    assert selection.rule_loss["selected"] > selection.rule_loss["global"]


def test_a_single_window_cannot_judge_a_series_own_ranking() -> None:
    # one window: nothing else ranks a series' members, so every series stays global
    frame = _frame({"m1": [0, 0, 0, 9, 9, 9], "m2": [9, 9, 9, 0, 0, 0]})
    selection = select(frame[frame["window"] == 0], ["m1", "m2"],
                       pd.Series({"a": 1.0, "b": 1.0}))
    assert selection.choice("a") == selection.choice("b") == selection.global_choice


def test_overlapping_windows_rank_on_the_dates_a_window_does_not_hold() -> None:
    from restock.models.selection import _evidence_apart

    # two windows of two points, one date shared: window 0 holds days 1-2, window 1 days 2-3
    dates = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03"])
    windows = np.array([0, 0, 1, 1])
    errors = np.array([[1.0], [100.0], [100.0], [3.0]])  # day 2 is the outlier, twice
    total, count = _evidence_apart(errors, dates.to_numpy("datetime64[ns]"),
                                   np.zeros(4, int), windows, 1, 2)
    # window 1 is ranked on window 0's day 1 alone (half its points), and the reverse
    assert np.allclose(total[0, :, 0], [0.5 * 3.0, 0.5 * 1.0])
    assert np.allclose(count[0, :, 0], [0.5, 0.5])


def test_the_refit_fits_only_what_the_choices_use(
    auto: EnsembleForecaster, data: pd.DataFrame
) -> None:
    from restock.models.ensemble import _refit_scope

    weights = {"mode": "auto", "global": Choice("global", ("theta",), "mean").to_json(),
               "per_series": {"a": Choice("best", ("prophet",), "mean").to_json(),
                              "b": Choice("top2_mean", ("lstm", "theta"), "mean").to_json()}}
    # per-series members on the series naming them (the global choice for the rest), the
    # global LSTM on every series, the fallback always, croston_sba (unnamed) not at all
    assert _refit_scope(weights, members(), ["a", "b", "new"]) == {
        "prophet": {"a"}, "lstm": None, "seasonal_naive": None, "theta": {"b", "new"}}
    assert _refit_scope({"mode": "seed"}, members(), ["a"]) == {m.alias: None for m in members()}
    scope = _refit_scope(auto.weights_, members(), data["unique_id"].unique())
    assert [m.alias for m in auto.members_] == [m.alias for m in members() if m.alias in scope]
    forecast = auto.predict(5)
    for alias, series in scope.items():
        forecast_for = set(forecast.loc[forecast[alias].notna(), "unique_id"])
        assert forecast_for <= (series or set(data["unique_id"]))


def test_refit_all_fits_every_member_on_every_series(data: pd.DataFrame) -> None:
    cheap = [SeasonalNaiveForecaster(), ThetaForecaster(), CrostonSBAForecaster()]
    used = EnsembleForecaster(cheap, backtest_h=14).fit(data, "D")
    every = EnsembleForecaster(cheap, backtest_h=14, refit="all").fit(data, "D")
    assert [m.alias for m in every.members_] == [m.alias for m in cheap]
    full = every.predict(5)
    assert full[[m.alias for m in cheap]].notna().all().all()
    pd.testing.assert_series_equal(full["yhat"], used.predict(5)["yhat"])
    with pytest.raises(InvalidParameterError, match="refit"):
        EnsembleForecaster(cheap, refit="some").fit(data, "D")


def test_intervals_contain_the_point_and_widen(auto: EnsembleForecaster) -> None:
    forecast = auto.predict(40)
    assert (forecast["yhat_lower"] <= forecast["yhat"]).all()
    assert (forecast["yhat"] <= forecast["yhat_upper"]).all()
    assert (forecast["yhat_lower"] >= 0).all()
    assert list(forecast.columns) == [
        "unique_id", "ds", "yhat", "yhat_lower", "yhat_upper",
        *(m.alias for m in auto.members_),
    ]
    width = (forecast["yhat_upper"] - forecast["yhat"]).groupby(forecast["unique_id"])
    assert (width.last() >= width.first()).all() and (width.last() > 0).all()


def test_backtest_metrics_and_weights_are_strict_json(auto: EnsembleForecaster) -> None:
    json.dumps(auto.metrics_, allow_nan=False)
    json.dumps(auto.weights_, allow_nan=False)
    assert set(auto.metrics_["overall"]) == {
        "prophet", "lstm", "seasonal_naive", "theta", "croston_sba", "ensemble"
    }
    assert "yhat" in auto.backtest_.columns
    assert auto.weights_summary()["mode"] == "auto"


@pytest.mark.parametrize("policy", ["auto", "seed"])
def test_save_writes_every_artifact_and_load_predicts_identically(
    policy: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    model: EnsembleForecaster = request.getfixturevalue(policy)
    model.save(tmp_path)
    names = ["weights.json", "backtest.parquet", "metrics.json", "ensemble.json"]
    if policy == "seed":  # every member refitted: every member's files
        names += ["lstm.safetensors", "scalers.json", "prophet/s0.json",
                  "statistical/theta.parquet"]
    for name in names:
        assert (tmp_path / name).exists(), name
    loaded = EnsembleForecaster.load(tmp_path)
    assert [m.alias for m in loaded.members_] == [m.alias for m in model.members_]
    pd.testing.assert_frame_equal(model.predict(30), loaded.predict(30))


def test_load_refuses_classes_outside_restock(auto: EnsembleForecaster, tmp_path: Path) -> None:
    auto.save(tmp_path)
    document = json.loads((tmp_path / "ensemble.json").read_text())
    document["members"][0]["class"] = "os.system"
    (tmp_path / "ensemble.json").write_text(json.dumps(document))
    with pytest.raises(InvalidParameterError):
        EnsembleForecaster.load(tmp_path)


def test_refit_is_deterministic(data: pd.DataFrame, auto: EnsembleForecaster) -> None:
    again = EnsembleForecaster(members(), weights="auto", backtest_h=14).fit(data, "D")
    pd.testing.assert_frame_equal(auto.predict(20), again.predict(20))
    assert again.weights_ == auto.weights_


def test_progress_stages_and_cancellation(data: pd.DataFrame) -> None:
    events: list[tuple[str, float]] = []

    def record(fraction: float, message: str = "", **extra: object) -> None:
        events.append((str(extra["stage"]), fraction))

    cheap = [SeasonalNaiveForecaster(), ThetaForecaster()]
    EnsembleForecaster(cheap).fit(data, "D", on_progress=record)
    stages = list(dict.fromkeys(stage for stage, _ in events))
    assert stages == ["backtest", "ensemble", "seasonal_naive", "theta"]
    assert all(0 <= f <= 1 for _, f in events)

    def cancel_at_theta(fraction: float, message: str = "", **extra: object) -> None:
        if extra["stage"] == "theta":
            raise JobCancelled("stop")

    with pytest.raises(JobCancelled):
        EnsembleForecaster(cheap).fit(data, "D", on_progress=cancel_at_theta)


def test_seed_needs_a_seed_member_and_horizons_adapt(data: pd.DataFrame) -> None:
    with pytest.raises(InvalidParameterError):
        EnsembleForecaster([ThetaForecaster()], weights="seed").fit(data, "D")
    # three windows half a horizon apart hold out 2h; "new" (20 days) is too short to count
    assert default_backtest_h(data, "D") == 28
    assert default_backtest_h(make_panel(n_series=2, n=30), "D") == 7
    assert default_backtest_h(make_panel(n_series=1, n=100, freq="MS"), "MS", windows=2) == 12
    assert default_backtest_h(make_panel(n_series=1, n=40, freq="MS"), "MS") == 10


def test_without_any_backtest_the_global_rule_is_the_mean_of_all_members() -> None:
    frame = _frame({"m1": [1] * 6, "m2": [2] * 6}).iloc[0:0]
    selection = select(frame, ["m1", "m2"], pd.Series(dtype=float))
    assert selection.global_choice.members == ("m1", "m2") and not selection.per_series


def test_implausible_member_forecasts_are_set_aside() -> None:
    from restock.models.ensemble import _caps, _set_aside_implausible

    history = pd.DataFrame({"unique_id": ["a", "a", "b"], "ds": pd.to_datetime(
        ["2024-01-01", "2024-01-02", "2024-01-01"]), "y": [3.0, 5.0, 0.0]})
    caps = _caps(history)
    assert caps.to_dict() == {"a": 51.0, "b": 1.0}
    frame = pd.DataFrame({"unique_id": ["a", "a", "b"], "m1": [40.0, 60.0, 0.5],
                          "m2": [4.0, 5.0, 2.0]})
    values, found = _set_aside_implausible(frame, ["m1", "m2"], caps)
    assert np.isnan(values[1, 0]) and np.isnan(values[2, 1])
    assert values[0, 0] == 40.0 and values[2, 0] == 0.5
    assert found == {"a": ["m1"], "b": ["m2"]}


def test_prophet_fits_alongside_the_others_and_keeps_the_job_runners_shard_map(
    data: pd.DataFrame, auto: EnsembleForecaster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restock.models import fanout, prophet

    threads: dict[str, set[str]] = {}

    def inline_map(work, shards, config):  # where a job runner would send Celery shards
        threads.setdefault(work.name, set()).add(threading.current_thread().name)
        for index, shard in enumerate(shards):
            yield index, work.encode_result(work.run(shard, config))

    monkeypatch.setattr(prophet, "_MIN_SERIES_FOR_POOL", 1)
    with fanout.shard_with(inline_map):
        sharded = EnsembleForecaster(members(), weights="auto", backtest_h=14).fit(data, "D")
    # Prophet's backtest ran in the overlap thread, through the runner's map
    assert any(t.startswith("restock-overlap") for t in threads["prophet"])
    assert sharded.durations_["overlapped"] == ["prophet"]
    assert [m.alias for m in sharded.members_] == [m.alias for m in auto.members_]
    pd.testing.assert_frame_equal(sharded.predict(20), auto.predict(20))


class _Waiting(SeasonalNaiveForecaster):
    """Computes "elsewhere" and reports progress until its callback raises."""

    works_out_of_process = True
    stopped_by: list[BaseException] = []

    def cross_validate(self, df, freq, h, n_windows, step_size, on_progress=no_progress):
        while True:
            try:
                on_progress(0.5, "waiting")
            except BaseException as error:
                _Waiting.stopped_by.append(error)
                raise
            time.sleep(0.01)


class _Failing(SeasonalNaiveForecaster):
    alias = "failing"

    def cross_validate(self, df, freq, h, n_windows, step_size, on_progress=no_progress):
        raise RuntimeError("in-process member failed")


def test_a_failing_foreground_member_stops_the_background_one(data: pd.DataFrame) -> None:
    with pytest.raises(RuntimeError, match="in-process member failed"):
        EnsembleForecaster([_Waiting(), _Failing()], backtest_h=14).fit(data, "D")
    assert len(_Waiting.stopped_by) == 1


def test_overlapped_progress_weights_each_side_by_its_share() -> None:
    from restock.models.ensemble import _alongside
    fractions: list[float] = []

    def record(fraction: float, message: str = "", **extra: object) -> None:
        fractions.append(fraction)

    def background(report):  # done at once, as Prophet on a small sample
        report(1.0, "background done")
        return "background"

    def foreground(report):  # still half-way when the background is done
        report(0.5, "foreground half-way")
        return "foreground"

    assert _alongside(background, foreground, record, background_share=0.25) == (
        "background", "foreground")
    # whichever side reported first, the bar never passes 0.25 x 1 + 0.75 x 0.5
    assert len(fractions) == 2 and max(fractions) == pytest.approx(0.625)
    assert fractions[-1] == pytest.approx(0.625)


def test_seed_keeps_only_the_windows_every_weighted_member_was_backtested_on(
        seed: EnsembleForecaster, auto: EnsembleForecaster) -> None:
    """Prophet backtests the last window only: the earlier ones would score the LSTM alone,
    not the 0.6/0.4 forecast whose intervals, safety stock and replays the residuals size."""
    last = auto.backtest_["window"].max()
    assert (auto.backtest_["window"] < last).any()  # auto keeps every window
    frame = seed.backtest_
    assert (frame["window"] == last).all() and frame["y"].notna().all()
    both = frame[frame["prophet"].notna() & frame["lstm"].notna()]
    assert len(both) and np.allclose(both["yhat"], 0.6 * both["prophet"] + 0.4 * both["lstm"],
                                     rtol=0, atol=1e-9)
    assert np.isfinite(seed.predict(5)[["yhat_lower", "yhat_upper"]].to_numpy()).all()
    assert seed.metrics_["overall"]["ensemble"]["mase"] is not None
