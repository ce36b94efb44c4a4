"""The retrain pipeline end to end, with real Prophet and real PyTorch on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from restock import snapshot
from restock.data.panel import TOTAL_ID
from restock.errors import JobCancelled, TrainingError
from restock.models.ensemble import EnsembleForecaster
from restock.registry import ModelRegistry
from restock.training import STAGES, retrain, retrain_model_with_queue
from tests.conftest import Trained, ask, train_home


def stored_forecasts(root: Path) -> pd.DataFrame:
    """The version's forecasts, long, as training produced them (read via the snapshot)."""
    return snapshot.load(root, {}).forecast_frame()


def stored_series(root: Path) -> pd.DataFrame:
    return snapshot.load(root, {}).series_frame()


def test_artifacts_are_complete_and_pickle_free(trained: Trained) -> None:
    root = trained.registry.path(trained.version)
    for name in ("metrics.json", "meta.json", "backtest.parquet", "weights.json",
                 "ensemble.json", "snapshot/snapshot.json", "snapshot/forecast.yhat.npy",
                 "snapshot/history.npy", "statistical/seasonal_naive.parquet"):
        assert (root / name).is_file(), name
    # the members the chosen combinations use were refitted and saved (the seed retrain's
    # test below checks the seed members' files)
    refitted = {m["class"].rpartition(".")[2]
                for m in json.loads((root / "ensemble.json").read_text())["members"]}
    assert (root / "lstm.safetensors").is_file() == ("LSTMForecaster" in refitted)
    assert (root / "prophet").is_dir() == ("ProphetForecaster" in refitted)
    for file in root.rglob("*"):
        if file.is_file():
            assert not file.read_bytes().startswith(b"\x80"), f"{file} looks like a pickle"
    meta = json.loads((root / "meta.json").read_text())
    assert meta["series"] == 6 and meta["rows"] == 900 and meta["frequency"] == "D"
    assert meta["horizon"] == 365 and set(meta["metrics_summary"]) >= {"prophet", "lstm",
                                                                       "ensemble"}
    assert set(meta["durations"]) >= {"backtest", "save"}
    assert trained.registry.current() == trained.version
    recorded = json.loads((root / "training.json").read_text())["settings"]
    assert recorded["lstm_epochs"] == 2 and "database_url" not in recorded
    assert "sqlite" not in (root / "training.json").read_text()


def test_events_walk_the_stages_in_order(trained: Trained) -> None:
    stages = [e["stage"] for e in trained.events]
    order = [STAGES.index(s) for s in stages]
    assert order == sorted(order), stages
    assert {"validate", "merge", "backtest", "forecast", "save", "activate",
            "done"} <= set(stages)
    progress = [e["progress"] for e in trained.events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    # the LSTM's backtest training streams its epochs (2 here), whether or not it is refitted
    epochs = [e for e in trained.events if e["stage"] == "backtest" and "epoch" in e]
    assert [e["epoch"] for e in epochs] == [1, 2] and all("loss" in e for e in epochs)
    assert trained.events[-1]["model_version"] == trained.version


def test_saved_ensemble_reproduces_the_precomputed_forecasts(trained: Trained) -> None:
    root = trained.registry.path(trained.version)
    stored = stored_forecasts(root)
    again = EnsembleForecaster.load(root).predict(int(stored["step"].max()))
    merged = stored.merge(again, on=["unique_id", "ds"], suffixes=("", "_again"))
    assert len(merged) == len(stored) == 7 * 365
    members = [c for c in ("prophet", "lstm") if c in stored]  # the ones refitted
    for column in ("yhat", "yhat_lower", "yhat_upper", *members):
        np.testing.assert_allclose(merged[column], merged[f"{column}_again"], rtol=1e-6,
                                   atol=1e-6)
    assert (stored["yhat_lower"] <= stored["yhat"]).all()
    assert (stored["yhat"] <= stored["yhat_upper"]).all()
    assert (stored["yhat"] >= 0).all()


def test_retrain_on_the_same_data_reproduces_the_forecasts(trained: Trained) -> None:
    first = stored_forecasts(trained.registry.path(trained.version))
    version = retrain(trained.settings, trained.store, trained.registry)
    second = stored_forecasts(trained.registry.path(version))
    assert list(first.columns) == list(second.columns)
    for column in first.columns.drop(["unique_id", "ds"]):
        np.testing.assert_allclose(first[column], second[column], rtol=1e-6, atol=1e-6)
    trained.registry.activate(trained.version)  # leave the shared fixture as it was


@pytest.mark.parametrize("stop_at", ["backtest", "ensemble", "save"])
def test_cancelled_retrain_leaves_current_untouched(trained: Trained, stop_at: str) -> None:
    before = trained.registry.current()
    versions = {v["version"] for v in trained.registry.versions()}

    def on_event(event: dict) -> None:
        if event["stage"] == stop_at:
            raise JobCancelled("cancelled by the test")

    with pytest.raises(JobCancelled):
        retrain(trained.settings, trained.store, trained.registry, on_event=on_event)
    assert trained.registry.current() == before
    assert {v["version"] for v in trained.registry.versions()} == versions
    assert not list(trained.settings.models_dir.glob(".staging-*"))


def test_queue_entry_point_ends_with_a_final_event(tmp_path: Path) -> None:
    import queue

    events: queue.Queue = queue.Queue()
    from restock.config import Settings

    settings = Settings.from_env({"home": tmp_path}, environ={})
    assert retrain_model_with_queue(None, events, settings=settings) is None
    items = []
    while not events.empty():
        items.append(events.get())
    assert items[-1]["stage"] == "error" and items[-1]["code"] == "training_failed"


def test_no_data_is_a_training_error(settings) -> None:
    from restock.data.store import SalesStore

    store = SalesStore(settings.db_url, settings.uploads_dir)
    with pytest.raises(TrainingError, match="no sales data"):
        retrain(settings, store, ModelRegistry(settings.models_dir))
    assert ModelRegistry(settings.models_dir).current() is None


def _frame(dates: pd.DatetimeIndex, products: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"date": dates, "product_id": p, "store_id": "",
                                    "category": "c", "quantity": y})
                      for p, y in products.items()], ignore_index=True)


@pytest.mark.parametrize("freq, periods, weekday, day", [
    ("W-FRI", 70, 4, None), ("MS", 40, None, 1)])
def test_weekly_and_monthly_data_keep_their_calendar(tmp_path: Path, freq: str, periods: int,
                                                     weekday: int | None,
                                                     day: int | None) -> None:
    rng = np.random.default_rng(0)
    dates = pd.date_range("2020-01-03" if weekday else "2020-01-01", periods=periods, freq=freq)
    result = train_home(tmp_path, _frame(dates, {
        "A": rng.poisson(20, periods).astype(float),
        "B": rng.poisson(5, periods).astype(float)}))
    meta = result.registry.meta(result.version)
    assert meta["frequency"] == freq
    forecasts = stored_forecasts(result.registry.path(result.version))
    assert forecasts["ds"].min() > dates[-1]
    if weekday is not None:
        assert (forecasts["ds"].dt.dayofweek == weekday).all()
        assert forecasts["step"].max() == 104  # two years of weeks by default
    else:
        assert (forecasts["ds"].dt.day == day).all()
        assert forecasts["step"].max() == 24  # two years of months by default
    result.store.close()


def test_short_zero_and_single_series(tmp_path: Path) -> None:
    dates = pd.date_range("2024-01-01", periods=90, freq="D")
    rng = np.random.default_rng(1)
    frame = _frame(dates, {"REG": rng.poisson(10, 90).astype(float),
                           "ZERO": np.zeros(90)})
    short = _frame(dates[-5:], {"NEW": np.array([1.0, 2, 3, 2, 1])})
    result = train_home(tmp_path, pd.concat([frame, short], ignore_index=True))
    root = result.registry.path(result.version)
    forecasts = stored_forecasts(root)
    series = stored_series(root).set_index("product_id")
    for product in ("REG", "ZERO", "NEW"):
        uid = series.loc[product, "unique_id"]
        rows = forecasts[forecasts["unique_id"] == uid]
        assert len(rows) == 365 and rows["yhat"].notna().all(), product
    zero = forecasts[forecasts["unique_id"] == series.loc["ZERO", "unique_id"]]
    assert (zero["yhat"] == 0).all()
    # 5 points: too short to backtest, so it took the global choice (recorded why)
    excluded = json.loads((root / "metrics.json").read_text())["excluded"]
    assert "5 points" in excluded[series.loc["NEW", "unique_id"]]
    result.store.close()

    single = train_home(tmp_path / "single", _frame(dates, {"ONLY": rng.poisson(4, 90)
                                                             .astype(float)}))
    forecasts = stored_forecasts(single.registry.path(single.version))
    assert set(forecasts["unique_id"]) == {"s00001", TOTAL_ID}
    single.store.close()


@pytest.mark.parametrize("rows", [1, 3])
def test_a_tiny_first_upload_still_trains_and_serves(tmp_path: Path, rows: int) -> None:
    """Too short to backtest: the ensemble falls back to the members that can fit."""
    from restock.serving import ForecastService

    dates = pd.date_range("2024-01-01", periods=rows, freq="D")
    result = train_home(tmp_path, _frame(dates, {"A": np.arange(1.0, rows + 1)}))
    service = ForecastService(result.settings, result.store, result.registry)
    answer = ask(service, days=3)
    assert len(answer["forecast"]) == 3
    assert all(row["yhat"] is not None and row["yhat"] >= 0 for row in answer["forecast"])
    assert "short_history" in {w["code"] for w in answer["warnings"]}
    result.store.close()


def test_a_model_with_non_finite_forecasts_is_refused_and_the_previous_stays(
        tmp_path: Path) -> None:
    """History stored before uploads were bounded (RESTOCK_MAX_QUANTITY) can hold 1e308;
    its fits overflow. The retrain must fail naming the series, not activate a model with
    NaN or infinite forecasts."""
    import sqlalchemy as sa

    from restock.data import tables
    from restock.data.demo import generate_demo_sales

    home = train_home(tmp_path / "home", generate_demo_sales(products=2, stores=1, days=60,
                                                             seed=5))
    previous = home.registry.current()
    with home.store.engine.begin() as conn:  # as an old store could hold it
        conn.execute(tables.sales.update().where(
            tables.sales.c.product_id == "P0002").values(quantity=1e308))
    with pytest.raises(TrainingError) as info:
        retrain(home.settings, home.store, home.registry)
    assert "not finite" in info.value.message and "product_id 'P0002'" in info.value.message
    assert "product_id 'P0001'" not in info.value.message
    assert home.registry.current() == previous
    assert [p.name for p in home.registry.root.iterdir() if p.name.startswith(".staging")] == []
    home.store.close()


def test_a_seed_retrain_is_exactly_sixty_forty_over_the_seed_members(tmp_path: Path) -> None:
    from restock.data.demo import generate_demo_sales

    result = train_home(tmp_path, generate_demo_sales(products=2, stores=1, days=90, seed=1),
                        weights="seed")
    root = result.registry.path(result.version)
    meta = json.loads((root / "meta.json").read_text())
    assert meta["weights_summary"] == {"mode": "seed", "weights": {
        "prophet": 0.6, "lstm": 0.4, "seasonal_naive": 0.0}}
    forecasts = stored_forecasts(root)
    both = forecasts[forecasts["lstm"].notna() & forecasts["prophet"].notna()]
    assert len(both) and np.allclose(both["yhat"], 0.6 * both["prophet"] + 0.4 * both["lstm"])
    result.store.close()


def test_refit_members_setting_reaches_the_ensemble_and_is_checked(tmp_path: Path) -> None:
    from restock.config import Settings
    from restock.errors import InvalidParameterError
    from restock.training import build_ensemble

    every = Settings.from_env({"home": tmp_path}, environ={"RESTOCK_REFIT_MEMBERS": "all"})
    assert build_ensemble(every, "auto", 1, 28).refit == "all"
    assert build_ensemble(Settings.from_env({"home": tmp_path}, environ={}),
                          "auto", 1, 28).refit == "used"
    with pytest.raises(InvalidParameterError, match="RESTOCK_REFIT_MEMBERS"):
        Settings.from_env({"home": tmp_path}, environ={"RESTOCK_REFIT_MEMBERS": "some"})


def test_uploaded_prices_reach_the_lightgbm_features_as_the_retrain_builds_them(
        trained: Trained) -> None:
    """Upload -> store -> panel -> the production member: the demo data carries a price,
    so the trees train on it (and would see none without an uploaded price)."""
    from restock.data.panel import build_panel
    from restock.models.ensemble import default_members
    from restock.models.gbm import GBMForecaster

    panel = build_panel(trained.store.query())
    assert "price" in panel.long.columns
    member = next(m for m in default_members() if type(m) is GBMForecaster)
    member.n_estimators = 20
    member.fit(panel.long, panel.freq)
    assert "price" in member.booster_.feature_name()
    member.fit(panel.long.drop(columns="price"), panel.freq)
    assert "price" not in member.booster_.feature_name()
