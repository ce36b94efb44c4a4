"""Stockouts in the history: forecast bias with and without censoring (issue 15, item 3).

Supply disruptions (:func:`restock.data.demo.inject_stockouts`: runs of days that end with
zero ``on_hand``, sales truncated) are injected into the training part of each data set,
never into its hold-out. The same cheap ensemble (``--members``, default seasonal naive +
optimized Theta + ETS + Croston SBA, statsforecast only: the full production ensemble takes
tens of minutes per retrain on this 2-core machine) is then fitted three times through the
production panel and ``EnsembleForecaster``:

- ``clean``: the data without injected stockouts (the reference);
- ``uncensored``: injected stockouts, ``on_hand`` ignored (``build_panel(censor=False)``):
  the stockout zeros are learnt as demand, as before this change;
- ``censored``: injected stockouts, censored periods imputed and not scored (restock now).

Each forecasts the hold-out; the score is the bias ``sum(forecast - actual) / sum(actual)``
of the series hit by an injected stockout (and, as a check, of the others), against the
hold-out's actual sales, plus their MASE. Data: the demo generator (``--demo-products`` x 2
stores x 730 days, seed 7; its own policy stockouts are in every arm) and the development
sets in ``/work/shared/data`` (``RESTOCK_BENCH_DATA``; a missing file is skipped), which
have no stock figures: ``on_hand`` is recorded only in the injected runs.

Usage: ``PYTHONPATH=src python bench/stockouts.py [--datasets demo,pizzaplace,m3]``;
writes ``bench/results/stockouts.md`` and ``bench/results/stockouts.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from restock.data.demo import generate_demo_sales, inject_stockouts
from restock.data.panel import TOTAL_ID, build_panel
from restock.models.ensemble import EnsembleForecaster
from restock.models.metrics import bias, mase, mase_scale
from restock.models.statistical import (CrostonSBAForecaster, ETSForecaster,
                                        SeasonalNaiveForecaster, ThetaForecaster)
from restock.calendar import frequency_of
from machine import cpu_model, total_ram  # bench/machine.py, beside this script

DATA = Path(os.environ.get("RESTOCK_BENCH_DATA", "/work/shared/data"))
RESULTS = Path(__file__).resolve().parent / "results"
MEMBERS = {"seasonal_naive": SeasonalNaiveForecaster, "theta": ThetaForecaster,
           "ets": ETSForecaster, "croston_sba": CrostonSBAForecaster}
ARMS = ("clean", "uncensored", "censored")


@dataclass(frozen=True)
class Setup:
    """A data set's hold-out and its injection: share of series hit, runs per series and
    their length range in periods."""

    holdout: int
    share: float
    runs: int
    length: tuple[int, int]


SETUPS = {"demo": Setup(28, 0.3, 4, (5, 14)), "pizzaplace": Setup(28, 0.3, 4, (5, 14)),
          "m3": Setup(18, 0.3, 2, (2, 4))}
FILES = {"pizzaplace": "pizzaplace_daily.csv", "m3": "m3_monthly_train.csv"}


def rows_of(name: str, demo_products: int) -> pd.DataFrame | None:
    """Canonical rows of a data set (None when its file is missing)."""
    if name == "demo":
        return generate_demo_sales(products=demo_products, stores=2, days=730, seed=7)
    path = DATA / FILES[name]
    if not path.exists():
        return None
    rows = pd.read_csv(path, parse_dates=["date"])
    rows["store_id"] = rows["store_id"].fillna("").astype(str) if "store_id" in rows else ""
    rows["category"] = rows.get("category", pd.Series("", index=rows.index)).fillna("")
    return rows


def forecast(rows: pd.DataFrame, censor: bool, h: int, members: list[str],
             freq: str) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Hold-out forecasts (``product_id, store_id, ds, yhat``), the series table and
    seconds for the ensemble fitted on ``rows``."""
    started = time.perf_counter()
    panel = build_panel(rows, freq, censor=censor)
    model = EnsembleForecaster([MEMBERS[m](n_jobs=2) for m in members]).fit(panel.long,
                                                                          panel.freq)
    predicted = model.predict(h)
    keys = panel.series[["unique_id", "product_id", "store_id"]]
    predicted = predicted[predicted["unique_id"] != TOTAL_ID].merge(keys, on="unique_id")
    return predicted[["product_id", "store_id", "ds", "yhat"]], panel.series, \
        time.perf_counter() - started


def scores(predicted: pd.DataFrame, actual: pd.DataFrame, train: pd.DataFrame,
           season: int, hit: set) -> dict[str, dict[str, float]]:
    """Bias (pooled over the group's volume) and mean MASE of the series hit by an
    injected stockout and of the others."""
    joined = actual.merge(predicted, on=["product_id", "store_id", "ds"], how="inner")
    history = train.groupby(["product_id", "store_id"])["quantity"].apply(np.asarray)
    out = {}
    for group, wanted in (("hit", True), ("not_hit", False)):
        part = joined[[(k in hit) == wanted for k in
                       zip(joined["product_id"], joined["store_id"])]]
        mases = [mase(g["quantity"], g["yhat"], mase_scale(history[k], season))
                 for k, g in part.groupby(["product_id", "store_id"])]
        out[group] = {"series": int(part.groupby(["product_id", "store_id"]).ngroups),
                      "bias": bias(part["quantity"], part["yhat"]),
                      "mase": float(np.nanmean(mases)) if mases else float("nan")}
    return out


def run(name: str, rows: pd.DataFrame, setup: Setup, members: list[str]) -> dict:
    """The three arms on one data set."""
    rows = rows.assign(ds=pd.to_datetime(rows["date"]))
    dates = np.sort(rows["date"].unique())
    cut = pd.Timestamp(dates[-setup.holdout])
    train, actual = rows[rows["date"] < cut].drop(columns="ds"), rows[rows["date"] >= cut]
    actual = actual.rename(columns={"date": "when"})[["product_id", "store_id", "ds",
                                                      "quantity"]]
    freq = "MS" if name == "m3" else "D"
    actual = actual.assign(ds=actual["ds"] if freq == "D" else
                           actual["ds"].dt.to_period("M").dt.to_timestamp())
    train = train.sort_values(["product_id", "store_id", "date"], kind="stable",
                              ignore_index=True)
    if "on_hand" not in train:
        train["on_hand"] = np.nan
    injected = inject_stockouts(train, setup.share, seed=11, runs=setup.runs,
                                length=setup.length)  # same order as ``train``
    emptied = (injected["on_hand"] == 0) & (train["on_hand"] != 0)
    hit = set(zip(injected.loc[emptied, "product_id"], injected.loc[emptied, "store_id"]))
    season = frequency_of(freq).season_length
    result = {"setup": setup.__dict__,
              "series": int(train.groupby(["product_id", "store_id"]).ngroups),
              "hit_series": len(hit), "injected_periods": int(emptied.sum()), "arms": {}}
    for arm, data, censor in (("clean", train, True), ("uncensored", injected, False),
                              ("censored", injected, True)):
        predicted, _, seconds = forecast(data, censor, setup.holdout, members, freq)
        result["arms"][arm] = {**scores(predicted, actual, train, season, hit),
                               "seconds": round(seconds, 1)}
        print(name, arm, result["arms"][arm], flush=True)
    return result


def markdown(results: dict, members: list[str]) -> str:
    lines = ["# Stockouts in the history: forecast bias with and without censoring", "",
             "`bench/stockouts.py` (issue 15, item 3). Stockouts are injected into the "
             "training part of each data set (runs of periods ending with zero `on_hand`, "
             "sales truncated; `restock.data.demo.inject_stockouts`, seed 11), never into "
             "the hold-out. The same ensemble "
             f"({', '.join(members)}; statsforecast members only, the full production "
             "ensemble is too slow to run three times per data set on 2 cores) is fitted "
             "on the clean data, on the injected data with `on_hand` ignored (stockout "
             "zeros learnt as demand) and on the injected data with censoring (imputed, "
             "not scored). Bias = sum(forecast - actual) / sum(actual) over the hold-out "
             "of the group's series (0 is unbiased, -0.10 is 10 % under-forecast); MASE "
             "is the mean over the group's series.", "",
             "| data set | series hit / all | injected periods | group | clean bias | "
             "uncensored bias | censored bias | clean MASE | uncensored MASE | "
             "censored MASE |", "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for name, result in results.items():
        setup = result["setup"]
        for group in ("hit", "not_hit"):
            arms = result["arms"]
            lines.append(
                f"| {name} (h {setup['holdout']}; {setup['share']:.0%} hit, {setup['runs']} "
                f"runs of {setup['length'][0]}-{setup['length'][1]}) | {result['hit_series']}"
                f" / {result['series']} | {result['injected_periods']} | "
                f"{group.replace('_', ' ')} ({arms['clean'][group]['series']}) | "
                + " | ".join(f"{arms[a][group]['bias']:+.3f}" for a in ARMS) + " | "
                + " | ".join(f"{arms[a][group]['mase']:.3f}" for a in ARMS) + " |")
    lines += ["", f"Machine: {cpu_model()}, {os.cpu_count()} cores, {total_ram()}; load "
              f"average at the end {os.getloadavg()[0]:.2f}.", "", "Seconds per fit: " + "; ".join(
        f"{name} " + ", ".join(f"{a} {r['arms'][a]['seconds']}" for a in ARMS)
        for name, r in results.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="demo,pizzaplace,m3")
    parser.add_argument("--members", default="seasonal_naive,theta,ets,croston_sba")
    parser.add_argument("--demo-products", type=int, default=100)
    args = parser.parse_args()
    members = args.members.split(",")
    results = {}
    for name in args.datasets.split(","):
        rows = rows_of(name, args.demo_products)
        if rows is None:
            print(f"{name}: no data, skipped")
            continue
        results[name] = run(name, rows, SETUPS[name], members)
    (RESULTS / "stockouts.json").write_text(json.dumps(results, indent=1, default=float))
    (RESULTS / "stockouts.md").write_text(markdown(results, members))


if __name__ == "__main__":
    main()
