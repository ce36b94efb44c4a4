"""Policy simulation: the replay's bookkeeping by hand, no look-ahead, lead times, seeds,
the three policies on one demand, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from restock import snapshot as snapshots
from restock.cli import cli
from restock.cli import simulate as _register  # noqa: F401  (registers the subcommand)
from restock.errors import InvalidParameterError, UnknownSeriesError
from restock.query import InventoryPolicy
from restock.serving import aggregation
from restock.serving.service import LoadedModel
from restock.simulation import (POLICIES, Levels, NoBacktestError, SimulationOptions,
                                forecast_at, forecast_levels, lead_periods, metrics, replay,
                                restock_sigma, simulate, windows_of)

H, WINDOWS, STRIDE = 4, 3, 2  # backtest_step(4) == 2: windows start at periods 0, 2, 4
SPAN = (WINDOWS - 1) * STRIDE + H


def tiny_snapshot(demand: np.ndarray, yhat: list[np.ndarray],
                  before: int = 20) -> snapshots.Snapshot:
    """One daily series whose last ``SPAN`` days are ``demand``, backtested in 3 windows
    of 4 days with the given predictions per window."""
    history = np.r_[np.full(before, 10.0), demand][None, :]
    days = pd.date_range("2024-01-01", periods=history.shape[1], freq="D")
    actual = np.concatenate([demand[w * STRIDE:w * STRIDE + H] for w in range(WINDOWS)])
    series = pd.DataFrame({"unique_id": ["a"], "product_id": ["P1"], "store_id": ["S1"],
                           "category": ["C"]})
    future = pd.date_range(days[-1] + pd.Timedelta(days=1), periods=H + 1, freq="D")
    steps = np.tile(np.arange(1, H + 1), WINDOWS)
    return snapshots.build("D", series, {"yhat": np.full((1, H), 10.0)},
                           [d.date().isoformat() for d in future], steps, actual[None, :],
                           np.concatenate(yhat)[None, :], history,
                           [d.date().isoformat() for d in days], group_sums=False)


def test_a_hand_computed_replay() -> None:
    # reorder point 8, order up to 15, lead time 1 period, 8 in stock, 5 sold each period:
    # t0: 8 -> 3, order 12 (due t2) | t1: 3 served of 5, backorder 2 (stockout), position 10
    # t2: +12 -> 10, 5 -> 5, order 10 (due t4, after the end) | t3: 5 -> 0
    run = replay(np.full(4, 5.0), Levels(np.full(4, 8.0), np.full(4, 15.0)),
                 np.array([1, 1]), start_stock=8.0)
    assert run.on_hand.tolist() == [3.0, -2.0, 5.0, 0.0]
    assert run.ordered.tolist() == [12.0, 0.0, 10.0, 0.0]
    assert run.arrived.tolist() == [0.0, 0.0, 12.0, 0.0]
    assert run.stockout.tolist() == [False, True, False, False]
    figures = metrics([run], 0.95, unit_cost=2.0)
    assert figures["fill_rate"] == pytest.approx(18 / 20)
    assert figures["cycles"] == 2  # until the arrival at t2 (short), then t2..t3 (not)
    assert figures["cycle_service_level"] == pytest.approx(0.5)
    assert figures["stockout_periods"] == 1
    assert figures["average_on_hand"] == pytest.approx((3 + 0 + 5 + 0) / 4)
    assert figures["average_on_hand_value"] == pytest.approx(4.0)
    assert figures["orders"] == 2
    assert figures["fill_rate_vs_target"] == pytest.approx(0.9 - 0.95)


@pytest.mark.parametrize("lead", [1, 3, 5])
def test_an_order_arrives_after_its_lead_time(lead: int) -> None:
    run = replay(np.full(12, 1.0), Levels(np.full(12, 100.0), np.full(12, 200.0)),
                 np.full(12, lead), start_stock=100.0)
    assert run.ordered[0] > 0  # at the reorder point from the first period
    assert (run.arrived[:lead + 1] == 0).all()
    assert run.arrived[lead + 1] == run.ordered[0]


def test_seeded_lead_time_draws_reproduce() -> None:
    policy = InventoryPolicy(lead_time_days=7, lead_time_std_days=3)
    draws = [lead_periods(200, policy, 1.0, np.random.default_rng(seed)) for seed in (7, 7, 8)]
    assert np.array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], draws[2])
    assert draws[0].min() >= 1 and len(set(draws[0].tolist())) > 3
    fixed = lead_periods(5, InventoryPolicy(lead_time_days=7), 1.0, np.random.default_rng(0))
    assert fixed.tolist() == [7] * 5


def test_the_replay_never_uses_a_later_windows_forecast() -> None:
    demand = np.full(SPAN, 10.0)
    honest = [np.full(H, 10.0)] * WINDOWS
    # the last window (from period 4 on) forecast a boom: had the replay looked ahead, the
    # levels of periods 0-3 would rise with it
    boom = [np.full(H, 10.0), np.full(H, 10.0), np.full(H, 1000.0)]
    policy = InventoryPolicy(lead_time_days=2, cover_days=2)
    levels = {}
    for name, yhat in (("honest", honest), ("boom", boom)):
        arrays = tiny_snapshot(demand, yhat)
        windows = windows_of(arrays.backtest_steps, arrays.backtest_y[0])
        assert windows.starts.tolist() == [0, 2, 4] and windows.span == SPAN
        levels[name] = forecast_levels(windows, arrays.backtest_yhat[0], np.array([1.0]), 1.0,
                                       policy)
    assert np.array_equal(levels["honest"].reorder[:4], levels["boom"].reorder[:4])
    assert (levels["boom"].reorder[4:] > levels["honest"].reorder[4:] + 1000).all()


def test_the_forecast_known_at_a_period_is_the_latest_windows_rest() -> None:
    yhat = [np.array([1.0, 2, 3, 4]), np.array([5.0, 6, 7, 8]), np.array([9.0, 10, 11, 12])]
    arrays = tiny_snapshot(np.full(SPAN, 10.0), yhat)
    windows = windows_of(arrays.backtest_steps, arrays.backtest_y[0])
    predicted = arrays.backtest_yhat[0]
    assert [(p.tolist(), age) for p, age in (forecast_at(windows, predicted, t)
                                             for t in (1, 3, 7))] == [
        ([2, 3, 4], 1), ([6, 7, 8], 1), ([12], 3)]  # period 3: window 1 from step 2 on


def test_the_three_policies_run_on_the_same_demand(trained) -> None:
    model = LoadedModel.read(trained.registry, trained.version)
    report, runs = simulate(model.snapshot, model.version,
                            InventoryPolicy(lead_time_std_days=2),
                            SimulationOptions(category=list(
                                model.snapshot.keys["category"].values[:1]), seed=5))
    assert runs and set(report["total"]) == set(POLICIES)
    for run in runs:
        first = run.runs["restock"].demand
        assert all(np.array_equal(first, run.runs[name].demand) for name in POLICIES)
    demands = {report["total"][name]["demand"] for name in POLICIES}
    assert len(demands) == 1 and demands.pop() > 0
    again, _ = simulate(model.snapshot, model.version, InventoryPolicy(lead_time_std_days=2),
                        SimulationOptions(category=report["selection"]["category"], seed=5))
    assert again == report  # seeded: the same draws, the same figures
    assert len(report["series"]) == report["selection"]["series"] == len(runs)


def test_bad_input_is_named(trained) -> None:
    model = LoadedModel.read(trained.registry, trained.version)
    arrays = model.snapshot
    with pytest.raises(InvalidParameterError, match="lead_time_days 400"):
        simulate(arrays, model.version, InventoryPolicy(lead_time_days=400), SimulationOptions())
    with pytest.raises(UnknownSeriesError, match="unknown product_id"):
        simulate(arrays, model.version, InventoryPolicy(), SimulationOptions(product_id="nope"))
    with pytest.raises(NoBacktestError, match="no backtest period"):
        simulate(arrays, model.version, InventoryPolicy(),
                 SimulationOptions(start="2001-01-01", end="2001-02-01"))


def test_a_fresh_forecasts_sigma_is_servings_and_older_ones_are_wider(trained) -> None:
    model = LoadedModel.read(trained.registry, trained.version)
    arrays, row = model.snapshot, int(model.snapshot.table_rows[0])
    by_age = restock_sigma(arrays, row, 10, 7.0, 1.0)
    sums = aggregation.sum_rows(arrays, np.array([row]))
    serving = aggregation.error_sigma(aggregation.Aggregate({}, sums.residual, sums.history),
                                      arrays.backtest_steps, 7.0)
    assert by_age[0] == pytest.approx(serving)
    assert by_age[-1] >= by_age[0]


def test_a_series_never_backtested_has_no_windows() -> None:
    assert windows_of(np.array([1, 2, 1, 2]), np.full(4, np.nan)) is None


def test_the_cli_simulates_in_every_format(trained) -> None:
    runner = CliRunner()
    home = ["--home", str(trained.settings.home)]
    table = runner.invoke(cli, [*home, "simulate", "--service-level", "0.9"])
    assert table.exit_code == 0, table.output
    assert "restock" in table.output and "min_max" in table.output
    answer = runner.invoke(cli, [*home, "simulate", "--format", "json", "--seed", "3"])
    assert json.loads(answer.output)["seed"] == 3
    csv = runner.invoke(cli, [*home, "simulate", "--format", "csv"])
    assert csv.output.splitlines()[0].startswith("series,policy,cycle_service_level")
    bad = runner.invoke(cli, [*home, "simulate", "--product", "nope"])
    assert bad.exit_code == 2 and "unknown product_id" in bad.output
    out_of_range = runner.invoke(cli, [*home, "simulate", "--unit-cost", "0"])
    assert out_of_range.exit_code == 2 and "unit_cost" in out_of_range.output


def test_a_date_range_narrows_the_replay() -> None:
    arrays = tiny_snapshot(np.arange(1.0, SPAN + 1), [np.full(H, 4.0)] * WINDOWS)
    everything, _ = simulate(arrays, "v", InventoryPolicy(lead_time_days=1),
                             SimulationOptions(product_id="P1"))
    first, last = everything["period"]["start"], everything["period"]["end"]
    assert everything["period"]["periods"] == SPAN and last == arrays.history_dates[-1]
    later = (pd.Timestamp(first) + pd.Timedelta(days=3)).date()
    narrowed, runs = simulate(arrays, "v", InventoryPolicy(lead_time_days=1),
                              SimulationOptions(product_id="P1", start=later))
    assert narrowed["period"] == {"start": later.isoformat(), "end": last, "periods": SPAN - 3}
    assert runs[0].runs["restock"].demand.tolist() == list(range(4, SPAN + 1))
