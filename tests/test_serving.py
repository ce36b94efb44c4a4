"""ForecastService on a real trained model: selections, sums, intervals, plans, warnings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from restock.data.panel import TOTAL_ID
from restock import snapshot
from restock.errors import InvalidParameterError, NoModelError, PlotNotFoundError, \
    RequestValidationError, UnknownSeriesError
from restock.query import ForecastQuery
from restock.registry import ModelRegistry
from restock.serving import ForecastService
from tests.conftest import Trained, ask


@pytest.fixture
def service(trained: Trained) -> ForecastService:
    return ForecastService(trained.settings, trained.store, trained.registry)


def stored(trained: Trained, version: str | None = None) -> snapshot.Snapshot:
    version = version or trained.version
    return snapshot.load(trained.registry.path(version), trained.registry.meta(version))


def series_table(trained: Trained) -> pd.DataFrame:
    return stored(trained).series_frame()


def test_response_shape(service: ForecastService, trained: Trained) -> None:
    result = ask(service, days=14, product_id="P0001", store_id="S01")
    assert set(result) == {"model_version", "selection", "frequency", "horizon", "history",
                           "forecast", "inventory", "warnings"}
    assert result["model_version"] == trained.version and result["frequency"] == "D"
    assert result["selection"]["series"] == 1 and len(result["forecast"]) == 14
    row = result["forecast"][0]
    assert set(row) == {"date", "yhat", "yhat_lower", "yhat_upper", "prophet", "lstm"}
    assert row["yhat_lower"] <= row["yhat"] <= row["yhat_upper"]
    assert result["history"][-1]["date"] < row["date"]
    assert {"safety_stock", "reorder_point", "min_level", "max_level", "days_of_cover",
            "order_now"} <= set(result["inventory"])
    for warning in result["warnings"]:
        assert set(warning) == {"code", "severity", "message"}


def test_a_group_is_the_sum_of_its_series(service: ForecastService, trained: Trained) -> None:
    table = series_table(trained)
    category = table.loc[table["unique_id"] != TOTAL_ID, "category"].iloc[0]
    members = table[table["category"] == category]
    group = ask(service, days=10, category=category)
    parts = [ask(service, days=10, product_id=r.product_id, store_id=r.store_id)
             for r in members.itertuples()]
    expected = np.sum([[f["yhat"] for f in p["forecast"]] for p in parts], axis=0)
    np.testing.assert_allclose([f["yhat"] for f in group["forecast"]], expected, atol=1e-3)
    assert group["selection"]["series"] == len(members)
    lower = np.array([f["yhat_lower"] for f in group["forecast"]])
    upper = np.array([f["yhat_upper"] for f in group["forecast"]])
    assert (lower <= expected + 1e-3).all() and (upper >= expected - 1e-3).all()
    both = ask(service, days=10, product_id=list(members["product_id"].unique()),
                            store_id=["S01", "S02"], category=category)
    np.testing.assert_allclose([f["yhat"] for f in both["forecast"]], expected, atol=1e-3)


def test_no_filter_is_the_total(service: ForecastService, trained: Trained) -> None:
    total = ask(service, periods=5)
    forecasts = stored(trained).forecast_frame()
    expected = forecasts[forecasts["unique_id"] == TOTAL_ID].sort_values("step")["yhat"][:5]
    np.testing.assert_allclose([f["yhat"] for f in total["forecast"]], expected, atol=1e-3)
    assert total["selection"]["series"] == 6


def test_unknown_filters_name_the_value_and_suggest(service: ForecastService) -> None:
    with pytest.raises(UnknownSeriesError) as info:
        ask(service, product_id=["P0001", "P001"])
    assert "'P001'" in info.value.message and "P0001" in info.value.message
    assert info.value.details["suggestions"]["P001"]
    with pytest.raises(UnknownSeriesError, match="category"):
        ask(service, category="Nope")


def test_horizon_validation(service: ForecastService) -> None:
    with pytest.raises(RequestValidationError, match="either days or periods"):
        ask(service, days=3, periods=3)
    with pytest.raises(InvalidParameterError, match="beyond the model's horizon"):
        ask(service, days=400)
    with pytest.raises(RequestValidationError, match="days"):
        ask(service, days=0)
    assert len(ask(service)["forecast"]) == 30  # the default: 30 days


def test_inventory_inputs_reach_the_plan(service: ForecastService) -> None:
    base = ask(service, days=30, product_id="P0001", on_hand=0.0)
    higher = ask(service, days=30, product_id="P0001", on_hand=0.0, service_level=0.99)
    assert higher["inventory"]["safety_stock"] >= base["inventory"]["safety_stock"]
    assert base["inventory"]["order_now"] is True
    codes = {w["code"] for w in base["warnings"]}
    assert "below_reorder_point" in codes
    with pytest.raises(RequestValidationError, match="service_level"):
        ask(service, product_id="P0001", service_level=1.5)
    eoq = ask(service, product_id="P0001", ordering_cost=8, holding_cost=0.5)
    assert eoq["inventory"]["eoq"] == pytest.approx(eoq["inventory"]["order_quantity"])


def test_on_hand_defaults_to_the_latest_stored_stock(service: ForecastService,
                                                     trained: Trained) -> None:
    rows = trained.store.query(product_id="P0002")
    latest = rows.sort_values("date").groupby("store_id")["on_hand"].last().sum()
    result = ask(service, product_id="P0002")
    assert result["inventory"]["on_hand"] == pytest.approx(latest)


def test_plot_is_written_and_found(service: ForecastService) -> None:
    result = ask(service, days=14, category=None, product_id="P0003", plot=True)
    path = service.plot_path(result["plot_id"])
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 5000
    assert (path.parent / "forecast_plot.png").read_bytes() == path.read_bytes()
    for bad in ("../../etc/passwd", "0" * 32, "forecast_plot"):
        with pytest.raises(PlotNotFoundError):
            service.plot_path(bad)


def test_all_series_export(service: ForecastService) -> None:
    frame = service.all_series(ForecastQuery(days=3))
    assert list(frame.columns) == ["product_id", "store_id", "date", "yhat", "yhat_lower",
                                   "yhat_upper", "prophet", "lstm"]
    assert len(frame) == 6 * 3


def test_no_model_yet(settings) -> None:
    from restock.data.store import SalesStore

    service = ForecastService(settings, SalesStore(settings.db_url, settings.uploads_dir),
                              ModelRegistry(settings.models_dir))
    assert service.health()["model_version"] is None
    with pytest.raises(NoModelError):
        ask(service)


def test_follows_the_current_pointer(service: ForecastService, trained: Trained,
                                     tmp_path) -> None:
    import shutil

    assert service.model().version == trained.version
    copy = "20000101-000000-000000-copy"
    shutil.copytree(trained.registry.path(trained.version), trained.settings.models_dir / copy)
    meta_path = trained.settings.models_dir / copy / "meta.json"
    import json

    meta = json.loads(meta_path.read_text())
    meta["version"] = copy
    meta_path.write_text(json.dumps(meta))
    try:
        trained.registry.activate(copy)
        assert ask(service, periods=1)["model_version"] == copy
    finally:
        trained.registry.activate(trained.version)
        shutil.rmtree(trained.settings.models_dir / copy)
    assert ask(service, periods=1)["model_version"] == trained.version


def test_stale_model_warning_after_new_data(service: ForecastService, trained: Trained) -> None:
    assert "stale_model" not in {w["code"] for w in ask(service)["warnings"]}
    # re-upload an existing row unchanged: a newer upload, the same data for other tests
    row = trained.store.query(product_id="P0001", store_id="S01").iloc[[-1]]
    trained.store.ingest_bytes(row.to_csv(index=False, date_format="%Y-%m-%d").encode())
    assert "stale_model" in {w["code"] for w in ask(service)["warnings"]}


def test_health_survives_a_damaged_current_version(trained: Trained, tmp_path) -> None:
    """``GET /`` must answer even when ``current`` names a version that is gone."""
    registry = ModelRegistry(tmp_path / "models")
    (tmp_path / "models" / "current").write_text("20990101-000000-000000-gone\n")
    service = ForecastService(trained.settings, trained.store, registry)
    assert service.health()["model_version"] is None


def test_old_plots_are_swept(service: ForecastService, trained: Trained) -> None:
    import os

    folder = trained.settings.plots_dir
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / ("0" * 32 + ".png")
    stale.write_bytes(b"\x89PNG old")
    os.utime(stale, (0, 0))
    fresh = ask(service, days=3, product_id="P0001", plot=True)["plot_id"]
    assert not stale.exists() and service.plot_path(fresh).exists()


def test_a_discontinued_series_is_named_in_the_warnings(service: ForecastService,
                                                         trained: Trained) -> None:
    import json
    import shutil

    registry = trained.registry
    source = registry.path(trained.version)
    version, staging = registry.staging_dir()
    shutil.copytree(source, staging, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("meta.json", snapshot.FOLDER))
    arrays = stored(trained)
    series = arrays.series_frame()
    series["discontinued"] = series["product_id"] == "P0002"
    snapshot.write(staging, snapshot.build(
        arrays.freq, series, arrays.forecast, arrays.dates, arrays.backtest_steps,
        arrays.backtest_y, arrays.backtest_yhat, arrays.history, arrays.history_dates))
    meta = json.loads((source / "meta.json").read_text())
    registry.seal(version, staging, {k: v for k, v in meta.items() if k != "manifest"})
    try:
        registry.activate(version)
        codes = {w["code"]: w["message"] for w in ask(service, product_id="P0002")["warnings"]}
        assert "2 of 2 selected series" in codes["discontinued"]
        assert "discontinued" not in {
            w["code"] for w in ask(service, product_id="P0001")["warnings"]}
    finally:
        registry.activate(trained.version)
        shutil.rmtree(registry.path(version))


def test_history_is_a_request_option(service: ForecastService, trained: Trained) -> None:
    held = int((~np.isnan(stored(trained).history[0])).sum())  # a series from day one
    default = ask(service, product_id="P0001", store_id="S01")
    assert len(default["history"]) == 28
    assert ask(service, product_id="P0001", store_id="S01", history=0)["history"] == []
    everything = ask(service, product_id="P0001", store_id="S01", history=5000)
    assert len(everything["history"]) == held
    assert everything["history"][-28:] == default["history"]
    assert everything["warnings"] == default["warnings"]  # history shapes only the answer
    with pytest.raises(RequestValidationError, match="history"):
        ask(service, history=-1)


def test_a_stored_group_sum_equals_summing_its_rows(service: ForecastService,
                                                    trained: Trained) -> None:
    """A store alone is read from the sums written with the version; the same series
    selected with every category too are summed at request time: the answers match."""
    categories = sorted(set(series_table(trained)["category"]) - {""})
    arrays = stored(trained)
    assert "store_id" in arrays.groups and "category" in arrays.groups
    for store in ("S01", "S02"):
        ready = ask(service, days=40, store_id=store, on_hand=10.0, history=500)
        summed = ask(service, days=40, store_id=store, category=categories, on_hand=10.0,
                                  history=500)
        ready["selection"]["category"] = categories
        assert ready == summed


def test_a_version_in_the_earlier_parquet_layout_still_loads(
        service: ForecastService, trained: Trained) -> None:
    import json
    import shutil

    registry = trained.registry
    source = registry.path(trained.version)
    arrays = stored(trained)
    history = pd.DataFrame({
        "unique_id": np.repeat(arrays.uids, len(arrays.history_dates)),
        "ds": np.tile(pd.to_datetime(arrays.history_dates), len(arrays.uids)),
        "y": np.asarray(arrays.history).ravel()}).dropna()
    version, staging = registry.staging_dir()
    shutil.copytree(source, staging, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("meta.json", snapshot.FOLDER))
    arrays.forecast_frame().to_parquet(staging / "forecasts.parquet", index=False)
    series = arrays.series_frame().drop(columns="clipped")
    series.to_parquet(staging / "series.parquet", index=False)
    history.to_parquet(staging / "history.parquet", index=False)
    meta = json.loads((source / "meta.json").read_text())
    registry.seal(version, staging, {k: v for k, v in meta.items() if k != "manifest"})
    category = sorted(set(series_table(trained)["category"]) - {""})[0]
    selections = [{}, {"product_id": "P0001"}, {"store_id": "S01"}, {"category": category}]
    expected = [ask(service, days=20, on_hand=5.0, history=200, **chosen)
                for chosen in selections]
    try:
        registry.activate(version)
        again = [ask(service, days=20, on_hand=5.0, history=200, **chosen)
                 for chosen in selections]
    finally:
        registry.activate(trained.version)
        shutil.rmtree(registry.path(version))
    for before, after in zip(expected, again):
        assert after.pop("model_version") == version
        before.pop("model_version")
        assert after == before


def test_stockouts_in_the_history_are_counted_in_the_warning(service: ForecastService,
                                                             trained: Trained) -> None:
    """The demo's tills stop at zero stock: those days are counted per series at training."""
    rows = trained.store.query()
    out = rows[rows["on_hand"] == 0].groupby(["product_id", "store_id"]).size()
    assert out.sum() > 0 and (out.reindex(pd.MultiIndex.from_frame(
        rows[["product_id", "store_id"]].drop_duplicates())).fillna(0) == 0).any()
    for (product, store), count in out.items():
        codes = {w["code"]: w for w in ask(service, product_id=product,
                                           store_id=store)["warnings"]}
        assert codes["stockouts_in_history"]["severity"] == "warning"
        assert codes["stockouts_in_history"]["message"].startswith(f"{count} period")
    total = {w["code"]: w["message"] for w in ask(service)["warnings"]}
    assert total["stockouts_in_history"].startswith(f"{out.sum()} periods")
    clean = rows.groupby(["product_id", "store_id"])["on_hand"].min().loc[lambda m: m > 0]
    for product, store in clean.index:
        assert "stockouts_in_history" not in {
            w["code"] for w in ask(service, product_id=product, store_id=store)["warnings"]}


def test_a_snapshot_written_before_stockout_counts_still_loads(trained: Trained,
                                                               tmp_path) -> None:
    import json
    import shutil

    root = tmp_path / "old"
    shutil.copytree(trained.registry.path(trained.version), root)
    folder = root / snapshot.FOLDER
    (folder / "stats.stockouts.npy").unlink()
    index = json.loads((folder / snapshot.INDEX).read_text())
    index["arrays"].remove("stats.stockouts")
    (folder / snapshot.INDEX).write_text(json.dumps(index))
    old = snapshot.load(root, trained.registry.meta(trained.version))
    assert old.stats["stockouts"].tolist() == [0] * len(old.uids)
    assert stored(trained).stats["stockouts"].sum() > 0


def test_a_censored_backtest_point_does_not_shrink_the_error_sigma() -> None:
    """Stockout periods are dropped from the backtest (NaN actuals): a plan row and a
    one-series forecast both take the sigma of the points that were scored."""
    from types import SimpleNamespace

    from restock.serving import aggregation

    snapshot = SimpleNamespace(
        backtest_y=np.array([[5.0, 6.0, np.nan, np.nan, 7.0, 5.0]]),
        backtest_yhat=np.array([[3.0, 9.0, 4.0, 4.0, 4.0, 8.0]]),
        backtest_steps=np.array([1, 2, 3, 1, 2, 3]), forecast={}, history=np.zeros((1, 5)),
        backtested=np.array([True]))
    scored = np.sqrt(np.mean(np.square([2.0, -3.0, 3.0, -3.0])))  # 2.78; zeros gave 2.27
    residuals = aggregation.series_residuals(snapshot, np.array([0]))
    plan = aggregation.error_sigmas(residuals, snapshot.history, snapshot.backtest_steps, 3)
    assert plan[0] == pytest.approx(scored)
    sums = aggregation.sum_rows(snapshot, np.array([0]))
    one = aggregation.Aggregate({}, sums.residual, sums.history)
    assert aggregation.error_sigma(one, snapshot.backtest_steps, 3) == pytest.approx(scored)


def test_the_version_keeps_the_demand_imputed_on_stockout_days(trained: Trained,
                                                               tmp_path) -> None:
    """The inventory maths judge demand: a stockout day holds what training imputed there,
    every other cell the sales; answers keep showing the sales (``history``)."""
    import json
    import shutil

    arrays = stored(trained)
    rows, columns, imputed = arrays.censored
    history = np.asarray(arrays.history)
    assert len(rows) and (imputed > history[rows, columns]).any()
    assert (imputed >= history[rows, columns]).all()
    demand = arrays.demand(np.arange(len(arrays.uids)))
    assert (demand[rows, columns] == imputed).all()
    untouched = np.ones(history.shape, bool)
    untouched[rows, columns] = False
    assert np.array_equal(demand[untouched], history[untouched], equal_nan=True)
    picked = np.array([rows[0], (rows[0] + 1) % len(arrays.uids), rows[0]])[::-1]
    assert np.array_equal(arrays.demand(picked), demand[picked], equal_nan=True)

    root = tmp_path / "old"  # a version written before the censored cells were kept
    shutil.copytree(trained.registry.path(trained.version), root)
    folder = root / snapshot.FOLDER
    index = json.loads((folder / snapshot.INDEX).read_text())
    for name in snapshot.CENSORED_ARRAYS:
        (folder / f"{name}.npy").unlink()
        index["arrays"].remove(name)
    (folder / snapshot.INDEX).write_text(json.dumps(index))
    old = snapshot.load(root, trained.registry.meta(trained.version))
    assert np.array_equal(old.demand(np.arange(len(old.uids))), history, equal_nan=True)


@pytest.fixture(scope="module")
def with_new_products(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForecastService]:
    """P0001's category also holds P0098 and P0099, launched 30 days ago: too new to be
    backtested, so they have no residuals to add to their group's."""
    from restock.data.demo import generate_demo_sales
    from tests.conftest import train_home

    frame = generate_demo_sales(products=3, stores=1, days=150, seed=3)
    recent = frame[(frame["product_id"] == "P0001")
                   & (frame["date"] > frame["date"].max() - pd.Timedelta(days=30))]
    new = pd.concat([recent.assign(product_id=p) for p in ("P0098", "P0099")])
    trained = train_home(tmp_path_factory.mktemp("new_products"),
                         pd.concat([frame, new], ignore_index=True))
    yield ForecastService(trained.settings, trained.store, trained.registry)
    trained.store.close()


def widths(result: dict) -> np.ndarray:
    return np.array([f["yhat_upper"] - f["yhat"] for f in result["forecast"]])


def test_a_group_with_series_too_new_to_backtest_widens_in_proportion(
        with_new_products: ForecastService) -> None:
    from restock.models.intervals import half_widths
    from restock.serving import aggregation, selection

    service = with_new_products
    arrays = service.model().snapshot
    level = service.settings.interval_level
    single = {p: widths(ask(service, days=10, product_id=p))
              for p in ("P0001", "P0098", "P0099")}
    # P0001's own residuals are the only ones measured in its category ("Garden", with
    # the two new products): they give the width, scaled by the share of the stored
    # widths P0001 holds
    residual = aggregation.series_residuals(
        arrays, selection.select(arrays, product_id="P0001").rows)[0]
    measured = half_widths(arrays.backtest_steps, residual, 10, level)
    share = sum(w[0] for w in single.values()) / single["P0001"][0]
    assert share > 1.5
    garden = ask(service, days=10, category="Garden")  # stored sums
    np.testing.assert_allclose(widths(garden), measured * share, rtol=1e-6, atol=2e-4)
    # two products of three, summed at request time
    pair = ask(service, days=10, product_id=["P0001", "P0099"])
    np.testing.assert_allclose(
        widths(pair), measured * (single["P0001"][0] + single["P0099"][0]) / single["P0001"][0],
        rtol=1e-6, atol=2e-4)


def test_a_group_of_series_none_backtested_adds_their_widths(
        with_new_products: ForecastService) -> None:
    service = with_new_products
    pair = ask(service, days=10, product_id=["P0098", "P0099"])
    expected = sum(widths(ask(service, days=10, product_id=p)) for p in ("P0098", "P0099"))
    assert (expected > 0).all()
    np.testing.assert_allclose(widths(pair), expected, rtol=1e-6, atol=2e-4)


def test_a_group_with_nothing_measured_to_scale_adds_its_widths(
        with_new_products: ForecastService) -> None:
    """P0001 backtested but with a zero stored width (as a series that never sold has):
    its residuals cannot say how wide the new product's errors are."""
    from restock.serving import aggregation, selection

    service = with_new_products
    arrays = service.model().snapshot
    rows = selection.select(arrays, product_id=["P0001", "P0099"]).rows
    p0001, p0099 = (selection.select(arrays, product_id=p).rows[0] for p in ("P0001", "P0099"))
    upper = np.array(arrays.forecast["yhat_upper"])
    upper[p0001] = arrays.forecast["yhat"][p0001]
    flat = replace(arrays, forecast={**arrays.forecast, "yhat_upper": upper})
    assert aggregation.unscored_share(arrays, rows) > 1
    assert np.isnan(aggregation.unscored_share(flat, rows))
    result = aggregation.aggregate(flat, rows, None, 10, 0.95)
    np.testing.assert_allclose(result.point["yhat_upper"] - result.point["yhat"],
                               upper[p0099, :10] - arrays.forecast["yhat"][p0099, :10])
    # the sigma has no measured errors to scale either: the history's spread
    sigma = aggregation.error_sigma(result, arrays.backtest_steps, 1.0)
    assert sigma == pytest.approx(float(np.nanstd(np.nan_to_num(result.history, nan=0.0))))
    # the warnings judge the residuals as measured, unscaled
    plain = aggregation.aggregate(arrays, rows, None, 10, 0.95)
    np.testing.assert_array_equal(plain.residual, aggregation.sum_rows(arrays, rows).residual)
