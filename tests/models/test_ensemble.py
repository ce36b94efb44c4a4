"""The ensemble with real Prophet and a real (tiny) LSTM: weights, intervals, artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FAST_LSTM, make_panel

from restock.errors import InvalidParameterError, JobCancelled
from restock.models.backtest import BacktestResult
from restock.models.ensemble import EnsembleForecaster, _fit_weights, default_backtest_h
from restock.models.lstm import LSTMForecaster
from restock.models.metrics import mase
from restock.models.prophet import ProphetForecaster
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
    assert seed.weights_["global"] == {
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


def backtest_mase(model: EnsembleForecaster, prediction: np.ndarray) -> float:
    frame = model.backtest_.assign(p=prediction)
    scores = []
    for _, group in frame.groupby("unique_id"):
        # any fixed scale per series will do: it only has to be the same for both candidates
        scale = float(np.mean(np.abs(np.diff(group["y"])))) or 1.0
        scores.append(mase(group["y"], group["p"], scale))
    return float(np.mean(scores))


def test_auto_is_not_worse_than_seed_on_the_backtest(auto: EnsembleForecaster) -> None:
    frame = auto.backtest_
    seed_prediction = np.where(
        frame["lstm"].notna(), 0.6 * frame["prophet"] + 0.4 * frame["lstm"], frame["prophet"]
    )
    recorded = auto.weights_["backtest_mase"]
    assert recorded["auto"] <= recorded["seed"]
    assert backtest_mase(auto, frame["yhat"]) <= backtest_mase(auto, seed_prediction) + 1e-9
    assert set(auto.weights_["per_series"]) == set(frame["unique_id"])
    for weights in auto.weights_["per_series"].values():
        assert sum(weights.values()) == pytest.approx(1.0) and min(weights.values()) >= 0


def test_per_series_weights_follow_the_better_member() -> None:
    steps = np.tile(np.arange(1, 29), 2)
    truth = np.arange(56.0)
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(["a", "b"], 28),
            "cutoff": 0,
            "ds": 0,
            "step": steps,
            "y": truth,
            "m1": np.where(np.arange(56) < 28, truth, truth + 9),
            "m2": np.where(np.arange(56) < 28, truth + 9, truth),
        }
    )
    result = BacktestResult(frame=frame, aliases=["m1", "m2"], scales=pd.Series({"a": 1.0, "b": 1.0}))
    weights = _fit_weights(result, ["m1", "m2"], np.zeros(2), "auto")
    assert weights["per_series"]["a"]["m1"] > 0.5 > weights["per_series"]["b"]["m1"]


def test_intervals_contain_the_point_and_widen(auto: EnsembleForecaster) -> None:
    forecast = auto.predict(40)
    assert (forecast["yhat_lower"] <= forecast["yhat"]).all()
    assert (forecast["yhat"] <= forecast["yhat_upper"]).all()
    assert (forecast["yhat_lower"] >= 0).all()
    assert list(forecast.columns) == [
        "unique_id", "ds", "yhat", "yhat_lower", "yhat_upper",
        "prophet", "lstm", "seasonal_naive", "theta", "croston_sba",
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


def test_save_writes_every_artifact_and_load_predicts_identically(
    auto: EnsembleForecaster, tmp_path: Path
) -> None:
    auto.save(tmp_path)
    for name in (
        "weights.json", "backtest.parquet", "metrics.json", "ensemble.json",
        "lstm.safetensors", "scalers.json", "prophet/s0.json", "statistical/theta.parquet",
    ):
        assert (tmp_path / name).exists(), name
    loaded = EnsembleForecaster.load(tmp_path)
    pd.testing.assert_frame_equal(auto.predict(30), loaded.predict(30))


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
    assert default_backtest_h(data, "D") == 28  # "new" (20 days) is too short to count
    assert default_backtest_h(make_panel(n_series=2, n=30), "D") == 15
    assert default_backtest_h(make_panel(n_series=1, n=100, freq="MS"), "MS", windows=2) == 12
