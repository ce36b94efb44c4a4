"""Live accuracy tracking: retrain, upload the held-out weeks, and check the stored scores
against numpy by hand, on SQLite and PostgreSQL, through the API and the CLI.

One model is trained per module on the data minus its last two weeks; each test gets a
home on its own database holding the training rows and a copy of that model folder.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from restock import accuracy, snapshot
from restock.accuracy import AccuracyTracker, accuracy_report
from restock.cli import cli
from restock.cli import accuracy as _accuracy_cli  # noqa: F401
from restock.cli import data as _data_cli  # noqa: F401
from restock.config import Settings
from restock.data import tables
from restock.data.demo import generate_demo_sales
from restock.data.panel import TOTAL_ID
from restock.data.store import SalesStore
from restock.errors import NoScoresError, UnknownSeriesError
from restock.registry import ModelRegistry
from restock.web import create_app
from tests.conftest import Trained, train_home

HELD_DAYS = 14
SEASON = 7  # daily data
#: a held-out day on which this series sold nothing (no row): its actual is zero
MISSING = ("P0002", "S02")


@dataclass
class Split:
    trained: Trained
    train: pd.DataFrame
    held: pd.DataFrame


def as_csv(frame: pd.DataFrame) -> bytes:
    return frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d")).to_csv(index=False).encode()


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Split]:
    frame = generate_demo_sales(products=3, stores=2, days=150, seed=11)
    first_held = frame["date"].max() - pd.Timedelta(days=HELD_DAYS - 1)
    train, held = frame[frame["date"] < first_held], frame[frame["date"] >= first_held]
    gap = ((held["product_id"] == MISSING[0]) & (held["store_id"] == MISSING[1])
           & (held["date"] == first_held + pd.Timedelta(days=3)))
    trained = train_home(tmp_path_factory.mktemp("accuracy"), train, max_horizon_days=28)
    yield Split(trained, train, held[~gap])
    trained.store.close()


@pytest.fixture
def home(split: Split, db_url: str, tmp_path: Path) -> Settings:
    """A home on ``db_url`` with the training rows and the trained (active) version."""
    settings = Settings.from_env({"home": tmp_path / "home", "database_url": db_url},
                                 environ={})
    shutil.copytree(split.trained.settings.models_dir, settings.models_dir)
    store = SalesStore.from_settings(settings)
    store.ingest_bytes(as_csv(split.train), "train.csv")
    store.close()
    return settings


@pytest.fixture
def tracked(home: Settings) -> Iterator[tuple[SalesStore, ModelRegistry]]:
    store = SalesStore.from_settings(home)
    registry = ModelRegistry(home.models_dir)
    AccuracyTracker.attach(store, registry)
    yield store, registry
    store.close()


# -- the independent computation -----------------------------------------------------------

def dense(frame: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Sales per (product, store) column on ``dates``: NaN before a series' first row, 0 in
    its gaps after that (the panel's rule)."""
    wide = frame.pivot_table(index="date", columns=["product_id", "store_id"],
                             values="quantity", aggfunc="sum").reindex(dates)
    return wide.fillna(0.0).where(wide.notna().cummax())


def expected_scores(split: Split, version_dir: Path) -> dict[tuple[str, str], dict[str, float]]:
    """Every level's figures from the version's files and the raw frames, in numpy."""
    arrays = snapshot.load(version_dir, {})
    names = arrays.series_frame().query("unique_id != @TOTAL_ID")
    forecasts = arrays.forecast_frame().merge(names, on="unique_id")
    held_dates = pd.date_range(split.held["date"].min(), split.held["date"].max())
    forecasts = forecasts[forecasts["ds"].isin(held_dates)]
    history = dense(split.train, pd.date_range(split.train["date"].min(),
                                               split.train["date"].max()))
    actual = split.held.pivot_table(index="date", columns=["product_id", "store_id"],
                                    values="quantity", aggfunc="sum").reindex(held_dates)
    per_series = {}
    for key, rows in forecasts.groupby(["product_id", "store_id"]):
        rows = rows.sort_values("ds")
        y = actual[key].fillna(0.0).to_numpy()
        last_season = history[key].to_numpy()[-SEASON:]
        naive = last_season[(rows["step"].to_numpy() - 1) % SEASON]
        per_series[key] = {"y": y, "yhat": rows["yhat"].to_numpy(), "naive": naive,
                           "inside": (rows["yhat_lower"].to_numpy() <= y)
                           & (y <= rows["yhat_upper"].to_numpy()),
                           "category": rows["category"].iloc[0]}
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {("total", ""): list(per_series)}
    for key, info in per_series.items():
        groups[("series", f"{key[0]}@{key[1]}")] = [key]
        groups.setdefault(("category", info["category"]), []).append(key)
        groups.setdefault(("store", key[1]), []).append(key)

    def figures(members: list[tuple[str, str]]) -> dict[str, float]:
        y = sum(per_series[m]["y"] for m in members)
        yhat = sum(per_series[m]["yhat"] for m in members)
        naive = sum(per_series[m]["naive"] for m in members)
        hist = history[members].sum(axis=1, min_count=1).dropna().to_numpy()
        scale = np.mean(np.abs(hist[SEASON:] - hist[:-SEASON]))
        return {
            "mase": np.mean(np.abs(y - yhat)) / scale,
            "wape": np.sum(np.abs(y - yhat)) / np.sum(y),
            "bias": np.sum(yhat - y) / np.sum(y),
            "coverage": np.mean(np.concatenate([per_series[m]["inside"] for m in members])),
            "fva": 1 - np.mean(np.abs(y - yhat)) / np.mean(np.abs(y - naive)),
            "periods": len(y),
        }

    with np.errstate(divide="ignore", invalid="ignore"):  # a series that sold nothing
        return {name: figures(members) for name, members in groups.items()}


def by_name(report: dict) -> dict[tuple[str, str], dict]:
    keys = {"series": lambda r: f"{r['product_id']}@{r['store_id']}",
            "category": lambda r: r["category"], "store": lambda r: r["store_id"],
            "total": lambda r: ""}
    return {(r["level"], keys[r["level"]](r)): r for r in report["scores"]}


# -- tests ---------------------------------------------------------------------------------

def test_uploaded_actuals_are_scored_like_numpy_by_hand(
        split: Split, tracked: tuple[SalesStore, ModelRegistry]) -> None:
    store, registry = tracked
    assert len(split.held) == 6 * HELD_DAYS - 1  # one series sold nothing on one day
    store.ingest_bytes(as_csv(split.held), "held.csv")
    report = accuracy_report(store, registry)
    version = split.trained.version
    assert [v["model_version"] for v in report["versions"]] == [version]
    assert report["versions"][0]["periods"] == HELD_DAYS
    got = by_name(report)
    want = expected_scores(split, registry.path(version))
    assert set(got) == set(want)  # 6 series, 3 categories, 2 stores, the total
    for name, figures in want.items():
        for metric, value in figures.items():
            if not np.isfinite(value):  # e.g. WAPE of a series that sold nothing: null
                assert got[name][metric] is None, (name, metric)
            else:
                assert got[name][metric] == pytest.approx(value, rel=1e-9, abs=1e-12), \
                    (name, metric)
    # the per-date points: the held-out sales and the version's forecasts, summed per day
    points = pd.DataFrame(report["versions"][0]["points"]).set_index("date")
    held_dates = pd.date_range(split.held["date"].min(), split.held["date"].max())
    sold = split.held.groupby("date")["quantity"].sum().reindex(held_dates, fill_value=0)
    assert list(points.index) == [d.date().isoformat() for d in held_dates]
    np.testing.assert_allclose(points["actual"], sold.to_numpy(float))
    forecast = snapshot.load(registry.path(version), {}).forecast_frame()
    forecast = forecast[forecast["unique_id"] != TOTAL_ID].groupby("ds")["yhat"].sum()
    np.testing.assert_allclose(points["forecast"], forecast.reindex(held_dates).to_numpy())
    assert points["naive"].sum() > 0
    per_series = json.loads((registry.path(version) / "metrics.json").read_text())["per_series"]
    backtest = [scores["ensemble"]["mase"] for uid, scores in per_series.items()
                if uid != TOTAL_ID]
    assert len(backtest) == 6
    assert report["versions"][0]["backtest_mase"] == pytest.approx(np.mean(backtest))


def test_reuploading_the_same_actuals_changes_nothing_and_a_correction_replaces(
        split: Split, tracked: tuple[SalesStore, ModelRegistry]) -> None:
    store, registry = tracked
    store.ingest_bytes(as_csv(split.held), "held.csv")
    first = accuracy_report(store, registry)
    store.ingest_bytes(as_csv(split.held), "held-again.csv")
    assert accuracy_report(store, registry)["scores"] == first["scores"]
    with store.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(
            tables.accuracy_points)).scalar_one()
    assert count == 6 * HELD_DAYS

    row = split.held.iloc[[0]].assign(quantity=split.held["quantity"].iloc[0] + 50)
    store.ingest_bytes(as_csv(row), "correction.csv")
    p = tables.accuracy_points.c
    with store.engine.connect() as conn:
        actual = conn.execute(sa.select(p.actual).where(
            p.product_id == row["product_id"].iloc[0], p.store_id == row["store_id"].iloc[0],
            p.date == row["date"].iloc[0].date())).scalar_one()
    assert actual == row["quantity"].iloc[0]


def test_a_scoring_error_is_logged_and_the_upload_stands(
        split: Split, tracked: tuple[SalesStore, ModelRegistry],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    store, registry = tracked

    def broken(*_args: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(accuracy, "version_forecasts", broken)
    with caplog.at_level(logging.ERROR, logger="restock.data.store"):
        result = store.ingest_bytes(as_csv(split.held), "held.csv")
    assert result.inserted == len(split.held)
    assert "the upload stands" in caplog.text and "disk gone" in caplog.text
    with pytest.raises(NoScoresError):
        accuracy_report(store, registry)


def test_uploads_outside_every_horizon_score_nothing(
        split: Split, tracked: tuple[SalesStore, ModelRegistry]) -> None:
    store, registry = tracked
    older = split.train.iloc[:10].assign(quantity=1)
    store.ingest_bytes(as_csv(older), "older.csv")
    with pytest.raises(NoScoresError, match="no scored forecasts for any series yet"):
        accuracy_report(store, registry)


def test_a_version_never_activated_is_not_scored(
        split: Split, home: Settings) -> None:
    """Only forecasts that served count: with an empty activation log and no ``current``,
    the version folder's forecasts are left alone."""
    (home.models_dir / "activations.jsonl").unlink()
    (home.models_dir / "current").unlink()
    registry = ModelRegistry(home.models_dir)
    assert registry.ever_active() == []
    store = SalesStore.from_settings(home)
    try:
        store.ingest_bytes(as_csv(split.held))
        assert AccuracyTracker(store, registry).score_upload(store.data_version()) == 0
    finally:
        store.close()


def test_activations_are_logged_in_order(split: Split, home: Settings) -> None:
    registry = ModelRegistry(home.models_dir)
    version = split.trained.version
    assert [a["version"] for a in registry.activations()] == [version]
    registry.activate(version)
    assert [a["version"] for a in registry.activations()] == [version, version]
    assert registry.ever_active() == [version]


def test_warnings_for_a_model_that_underforecasts_badly(
        split: Split, tracked: tuple[SalesStore, ModelRegistry]) -> None:
    store, registry = tracked
    boom = split.held.assign(quantity=split.held["quantity"] * 4 + 20)
    store.ingest_bytes(as_csv(boom), "boom.csv")
    report = accuracy_report(store, registry)
    codes = {w["code"] for w in report["warnings"]}
    assert codes == {"model_degraded", "forecast_bias"}
    assert all(w["model_version"] == split.trained.version for w in report["warnings"])
    assert "below the actual sales in every one of 14 periods" in " ".join(
        w["message"] for w in report["warnings"])


def test_no_warnings_when_errors_change_sign_and_match_the_backtest() -> None:
    dates = pd.date_range("2026-01-01", periods=14)
    points = pd.DataFrame({"actual": 10.0,
                           "yhat": 10.0 + np.where(np.arange(14) % 2, 1.0, -1.0)}, index=dates)
    assert accuracy._warnings("v", points, "D", live=0.8, backtest=0.7) == []
    assert [w["code"] for w in accuracy._warnings("v", points, "D", live=1.2, backtest=0.7)] \
        == ["model_degraded"]
    # fewer periods than a season: too early to call a model degraded
    assert accuracy._warnings("v", points.iloc[:6], "D", live=1.2, backtest=0.7) == []


def test_filters_and_date_range(split: Split, tracked: tuple[SalesStore, ModelRegistry]) -> None:
    store, registry = tracked
    store.ingest_bytes(as_csv(split.held), "held.csv")
    start = split.held["date"].min().date()
    report = accuracy_report(store, registry, store_id="S01", category="Beverages",
                             start=start, end=start + pd.Timedelta(days=6))
    series = [r for r in report["scores"] if r["level"] == "series"]
    assert {r["store_id"] for r in series} == {"S01"} and len(series) == 2
    assert {r["periods"] for r in report["scores"]} == {7}
    assert report["scores"][-1]["level"] == "total" and report["scores"][-1]["series"] == 2

    with pytest.raises(UnknownSeriesError, match="'P0O01'.*did you mean 'P0001'"):
        accuracy_report(store, registry, product_id="P0O01")
    with pytest.raises(NoScoresError, match="scored dates run from"):
        accuracy_report(store, registry, start=start - pd.Timedelta(days=60),
                        end=start - pd.Timedelta(days=30))


def test_endpoint(split: Split, home: Settings) -> None:
    app = create_app(home)
    app.config["TESTING"] = True
    try:
        app.extensions["restock"].store.ingest_bytes(as_csv(split.held), "held.csv")
        client = app.test_client()
        body = client.get("/accuracy?product_id=P0001&product_id=P0003").get_json()
        expected = accuracy_report(app.extensions["restock"].store,
                                   app.extensions["restock"].registry,
                                   product_id=["P0001", "P0003"])
        assert body["scores"] == expected["scores"]
        assert {r["product_id"] for r in body["scores"] if r["level"] == "series"} == \
            {"P0001", "P0003"}

        unknown = client.get("/accuracy?store_id=S1")
        assert unknown.status_code == 404
        assert unknown.get_json()["error"]["code"] == "unknown_series"
        assert "did you mean 'S01'" in unknown.get_json()["error"]["message"]
        empty = client.get("/accuracy?start=2020-01-01&end=2020-02-01")
        assert empty.status_code == 404 and empty.get_json()["error"]["code"] == "no_scores"
        backwards = client.get("/accuracy?start=2026-02-01&end=2026-01-01")
        assert backwards.status_code == 422
        assert "after end" in backwards.get_data(as_text=True)
        assert client.get("/accuracy?start=yesterday").status_code == 422
        missing = client.get("/accuracy?version=20990101-000000-000000-abcd")
        assert missing.status_code == 404
        assert missing.get_json()["error"]["code"] == "model_not_found"
        documented = client.get("/openapi.json").get_json()["paths"]["/accuracy"]["get"]
        assert {p["name"] for p in documented["parameters"]} >= {
            "product_id", "store_id", "category", "version", "start", "end"}
    finally:
        app.extensions["restock"].close()


def test_cli_ingest_scores_and_accuracy_prints_csv_and_a_table(
        split: Split, home: Settings, tmp_path: Path) -> None:
    held = tmp_path / "held.csv"
    held.write_bytes(as_csv(split.held))
    runner = CliRunner()
    base = ["--home", str(home.home)]
    env = {"RESTOCK_DATABASE_URL": home.database_url}
    result = runner.invoke(cli, [*base, "ingest", str(held)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    result = runner.invoke(cli, [*base, "accuracy", "--format", "csv", "--category", "Garden"],
                           env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["level"] for r in rows] == ["series", "series", "category", "store", "store",
                                          "total"]
    want = expected_scores(split, ModelRegistry(home.models_dir).path(split.trained.version))
    assert float(rows[2]["mase"]) == pytest.approx(want[("category", "Garden")]["mase"],
                                                   rel=1e-5)

    table = runner.invoke(cli, [*base, "accuracy"], env=env, catch_exceptions=False)
    assert table.exit_code == 0 and f"model {split.trained.version}" in table.output
    assert "total" in table.output

    bad = runner.invoke(cli, [*base, "accuracy", "--product", "P9"], env=env)
    assert bad.exit_code == 2 and "unknown product_id: 'P9'" in bad.output


def test_a_pruned_version_stays_reportable(
        split: Split, tracked: tuple[SalesStore, ModelRegistry]) -> None:
    """Points outlive their version folder (``keep`` prunes old versions)."""
    store, registry = tracked
    store.ingest_bytes(as_csv(split.held), "held.csv")
    before = accuracy_report(store, registry)
    shutil.rmtree(registry.path(split.trained.version))
    assert accuracy_report(store, registry) == before
    assert accuracy_report(store, registry, version=split.trained.version) == before


def test_weekly_data_shorter_than_a_season(tmp_path: Path) -> None:
    """Weekly data (season 52) with 30 weeks of history: the naive forecast repeats the last
    week and the scale falls back to lag 1, as ``metrics.mase_scale`` does; a version
    written by hand, in the layout ``version_forecasts`` reads."""
    weeks = pd.date_range("2026-01-04", periods=30, freq="W-SUN")
    rng = np.random.default_rng(4)
    history = pd.DataFrame({"date": np.tile(weeks, 2), "product_id": np.repeat(["A", "B"], 30),
                            "store_id": "", "category": "c",
                            "quantity": rng.integers(20, 40, 60).astype(float)})
    store = SalesStore(f"sqlite:///{tmp_path / 'restock.db'}", tmp_path / "uploads")
    registry = ModelRegistry(tmp_path / "models")
    store.ingest_bytes(as_csv(history), "history.csv")
    version, staging = registry.staging_dir()
    pd.DataFrame({"unique_id": ["s1", "s2", TOTAL_ID], "product_id": ["A", "B", ""],
                  "store_id": "", "category": ["c", "c", ""]}
                 ).to_parquet(staging / "series.parquet")
    ahead = pd.date_range(weeks[-1], periods=9, freq="W-SUN")[1:]
    pd.DataFrame({"unique_id": np.repeat(["s1", "s2"], 8), "ds": np.tile(ahead, 2),
                  "step": np.tile(np.arange(1, 9), 2), "yhat": 30.0, "yhat_lower": 25.0,
                  "yhat_upper": 35.0}).to_parquet(staging / "forecasts.parquet")
    history.assign(unique_id=history["product_id"].map({"A": "s1", "B": "s2"})).rename(
        columns={"date": "ds", "quantity": "y"})[["unique_id", "ds", "y"]].to_parquet(
        staging / "history.parquet")
    (staging / "metrics.json").write_text(json.dumps({"per_series": {}}))
    registry.seal(version, staging, {"last_date": weeks[-1].date().isoformat(),
                                     "frequency": "W-SUN", "horizon": 8})
    registry.activate(version)
    AccuracyTracker.attach(store, registry)
    try:
        actual = pd.DataFrame({"date": np.tile(ahead[:3], 2), "product_id": np.repeat(
            ["A", "B"], 3), "store_id": "", "category": "c", "quantity": [31.0, 40, 22] * 2})
        store.ingest_bytes(as_csv(actual), "actual.csv")
        report = accuracy_report(store, registry, product_id="A")
    finally:
        store.close()
    a = history[history["product_id"] == "A"]["quantity"].to_numpy()
    y, yhat, naive = np.array([31.0, 40, 22]), np.full(3, 30.0), np.full(3, a[-1])
    scale = np.mean(np.abs(np.diff(a)))  # lag 1: less than a season plus one of history
    series = report["scores"][0]
    assert (series["level"], series["periods"]) == ("series", 3)
    assert series["mase"] == pytest.approx(np.mean(np.abs(y - yhat)) / scale)
    assert series["fva"] == pytest.approx(
        1 - np.mean(np.abs(y - yhat)) / np.mean(np.abs(y - naive)))
    assert series["coverage"] == pytest.approx(1 / 3)
    assert report["versions"][0]["frequency"] == "W-SUN"
    assert report["versions"][0]["backtest_mase"] is None
