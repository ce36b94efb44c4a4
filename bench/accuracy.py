"""Accuracy benchmark: the restock ensemble against standard peers on M3 monthly and pizzaplace.

Data: ``../shared/data`` next to the repository, or the directory in ``RESTOCK_BENCH_DATA``
(see its README for sources and licences). The data is read in place, never copied into
the repository; when it is absent the benchmark says so and exits cleanly.

Splits: M3 monthly uses its own train/test files (horizon 18); pizzaplace holds out the
last 28 days of every series. On the same split, in the same run, it scores:

- the restock ensemble as a production retrain builds it (``training.build_ensemble``),
  ``weights="auto"``, and the same fitted members combined 0.6 prophet + 0.4 lstm
  (exactly what ``weights="seed"`` predicts);
- each member as refitted inside the ensemble;
- peers: statsforecast SeasonalNaive, AutoETS and AutoTheta, Prophet with default settings
  per series, and an untuned mlforecast + LightGBM (the quick-start recipe).

Scores are means over series of MASE (in-sample seasonal-naive scale, season 12 monthly /
7 daily), sMAPE (percent), WAPE and bias, from ``restock.models.metrics``, plus the 95%
interval coverage of ``auto`` on the test.

The selection rule itself is validated with a nested holdout on the ensemble's own
backtest: rules are chosen on the earlier windows only and scored on the last one, at the
dates the earlier (overlapping) windows do not hold, next to every member and the global
rule scored on the same points.

Usage: ``python bench/accuracy.py [--datasets m3,pizzaplace] [--lstm-epochs 50]``
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the restock command sets it

from restock.calendar import frequency_of  # noqa: E402 - after the OpenMP setting
from restock.config import Settings
from restock.models.backtest import drop_last
from restock.models.ensemble import (
    SEED_WEIGHTS,
    EnsembleForecaster,
    backtest_step,
    combine_forecasts,
)
from restock.models.metrics import mase_scales, score_series, summarize
from restock.models.selection import apply_choice, select
from restock.training import build_ensemble

REPO = Path(__file__).resolve().parents[1]
WORKERS = os.cpu_count() or 1
PEERS = ["SeasonalNaive", "AutoETS", "AutoTheta", "Prophet (default)", "LightGBM (mlforecast)"]


@dataclass
class Split:
    name: str
    freq: str
    h: int
    train: pd.DataFrame
    test: pd.DataFrame


def data_dir() -> Path:
    return Path(os.environ.get("RESTOCK_BENCH_DATA") or REPO.parent / "shared" / "data")


def _long(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, parse_dates=["date"])
    return pd.DataFrame(
        {"unique_id": raw["product_id"].astype(str), "ds": raw["date"], "y": raw["quantity"].astype(float)}
    )


def load_m3(root: Path) -> Split:
    return Split(
        "M3 monthly", "MS", 18, _long(root / "m3_monthly_train.csv"), _long(root / "m3_monthly_test.csv")
    )


def load_pizzaplace(root: Path) -> Split:
    data = _long(root / "pizzaplace_daily.csv").sort_values(["unique_id", "ds"])
    cutoff = data["ds"].max() - pd.Timedelta(days=28)
    return Split("pizzaplace daily", "D", 28, data[data["ds"] <= cutoff], data[data["ds"] > cutoff])


def run_ensemble(
    split: Split, lstm_epochs: int, dump: Path | None
) -> tuple[pd.DataFrame, EnsembleForecaster, float]:
    """The auto ensemble's forecast (with every member's column and the seed combination)."""
    # every member refitted on every series, so each has its test score (production
    # refits only what the chosen rules use; the auto forecast is the same)
    settings = Settings.from_env({"prophet_workers": WORKERS, "lstm_epochs": lstm_epochs,
                                  "refit_members": "all"})
    started = time.perf_counter()
    model = build_ensemble(settings, "auto", lstm_epochs, split.h).fit(split.train, split.freq)
    forecast = model.predict(split.h)
    elapsed = time.perf_counter() - started
    if dump:
        model.save(dump / split.name.replace(" ", "_"))
    aliases = [m.alias for m in model.members_]
    seed = np.array([SEED_WEIGHTS.get(a, 0.0) for a in aliases])
    # weights="seed" fits the very same members (deterministic) and combines them like this
    forecast["ensemble_seed"] = np.maximum(
        combine_forecasts(forecast[aliases].to_numpy(float), np.tile(seed, (len(forecast), 1))), 0
    )
    forecast = forecast.rename(columns={"yhat": "ensemble_auto"})
    return forecast, model, elapsed


def run_statsforecast(split: Split) -> tuple[pd.DataFrame, dict[str, float]]:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

    season = frequency_of(split.freq).season_length
    frames, seconds = [], {}
    for model in (SeasonalNaive(season_length=season), AutoETS(season_length=season),
                  AutoTheta(season_length=season)):
        started = time.perf_counter()
        sf = StatsForecast(models=[model], freq=split.freq, n_jobs=WORKERS)
        frames.append(sf.forecast(df=split.train, h=split.h).set_index(["unique_id", "ds"]))
        seconds[str(model)] = time.perf_counter() - started
    return pd.concat(frames, axis=1).reset_index(), seconds


def run_lightgbm(split: Split) -> tuple[pd.DataFrame, float]:
    """mlforecast's quick-start recipe, untuned: lags 1..m and 2m, a rolling mean, calendar."""
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean

    season = frequency_of(split.freq).season_length
    started = time.perf_counter()
    forecaster = MLForecast(
        models={"LightGBM": lgb.LGBMRegressor(n_estimators=200, verbosity=-1, n_jobs=WORKERS,
                                              random_state=0)},
        freq=split.freq,
        lags=[*range(1, season + 1), 2 * season],
        lag_transforms={1: [RollingMean(window_size=season)]},
        date_features=["dayofweek"] if frequency_of(split.freq).within_week else ["month"],
    )
    forecaster.fit(split.train)
    forecast = forecaster.predict(split.h)
    forecast["LightGBM"] = forecast["LightGBM"].clip(lower=0)
    return forecast, time.perf_counter() - started


def _default_prophet(batch: list[tuple[str, pd.DataFrame]], freq: str, h: int) -> pd.DataFrame:
    """Prophet() with its defaults; uncertainty sampling off, which leaves yhat unchanged."""
    for name in ("cmdstanpy", "prophet"):
        logging.getLogger(name).disabled = True
    from prophet import Prophet

    out = []
    for uid, history in batch:
        model = Prophet(uncertainty_samples=0).fit(history)
        future = model.make_future_dataframe(periods=h, freq=freq, include_history=False)
        out.append(pd.DataFrame({"unique_id": uid, "ds": future["ds"], "Prophet": model.predict(future)["yhat"]}))
    return pd.concat(out, ignore_index=True)


def run_default_prophet(split: Split) -> tuple[pd.DataFrame, float]:
    started = time.perf_counter()
    series = [(uid, g[["ds", "y"]]) for uid, g in split.train.groupby("unique_id")]
    batches = [series[i :: WORKERS * 4] for i in range(WORKERS * 4)]
    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("forkserver")) as pool:
        parts = list(pool.map(_default_prophet, batches, [split.freq] * len(batches), [split.h] * len(batches)))
    return pd.concat(parts, ignore_index=True), time.perf_counter() - started


def nested_holdout(model: EnsembleForecaster, split: Split) -> list[str]:
    """Choose rules on the backtest's earlier windows, score them on its last window."""
    frame = model.backtest_
    last = int(frame["window"].max())
    if last < 1:
        return ["nested holdout: needs at least two backtest windows"]
    aliases = [m.alias for m in model.members_]
    # without a member the screening left out; with those left out for their refit's sake,
    # whose verdict looked at the last window too (the screening's is on all windows of
    # the sample; the stricter check, screening on windows 0-1 alone, is not made here)
    dropped = [a for a, v in model.weights_.get("refits", {}).items() if not v["keep"]]
    candidates = [a for a in aliases if a in model.weights_["aliases"] or a in dropped]
    h = int(frame["step"].max())
    scales = mase_scales(drop_last(split.train, h + last * backtest_step(h)), split.freq)
    earlier, final = frame[frame["window"] < last], frame[frame["window"] == last]
    # the windows overlap (origins half a horizon apart): the last one is scored only at
    # dates the earlier ones do not hold, or the rules would be judged on values they chose on
    seen = final["unique_id"].map(earlier.groupby("unique_id")["ds"].max())
    final = final[~(final["ds"] <= seen)].copy()
    selection = select(earlier, candidates, scales)
    values = final[candidates].to_numpy(float)
    final["selected"] = np.nan
    for uid, index in final.groupby("unique_id").indices.items():
        final.iloc[index, final.columns.get_loc("selected")] = apply_choice(
            values[index], candidates, selection.choice(uid))
    final["global"] = apply_choice(values, candidates, selection.global_choice)
    scores = summarize(score_series(final, ["selected", "global", *aliases], scales))["mase"]
    best = scores[candidates].idxmin()  # a left-out member's score covers its sample only
    return [
        f"nested holdout (rules chosen on windows 0-{last - 1}, scored on window {last} "
        f"at the dates they do not hold): "
        f"selected {scores['selected']:.3f}, global rule {scores['global']:.3f} "
        f"({', '.join(selection.global_choice.members)}), best single member {best} "
        f"{scores[best]:.3f}; members: "
        + ", ".join(f"{a} {scores[a]:.3f}" for a in aliases)
    ]


def evaluate(split: Split, lstm_epochs: int, dump: Path | None) -> str:
    print(f"== {split.name}: {split.train['unique_id'].nunique()} series, h={split.h}", flush=True)
    ours, model, ours_seconds = run_ensemble(split, lstm_epochs, dump)
    print(f"   restock ensemble fitted in {ours_seconds:.0f}s", flush=True)
    peers, peer_seconds = run_statsforecast(split)
    prophet, peer_seconds["Prophet (default)"] = run_default_prophet(split)
    lightgbm, peer_seconds["LightGBM (mlforecast)"] = run_lightgbm(split)
    table = split.test.merge(ours, on=["unique_id", "ds"], how="left")
    for frame in (peers, prophet, lightgbm):
        table = table.merge(frame, on=["unique_id", "ds"], how="left")
    table = table.rename(columns={"Prophet": "Prophet (default)",
                                  "LightGBM": "LightGBM (mlforecast)"})
    models = [c for c in table.columns if c not in ("unique_id", "ds", "y", "yhat_lower", "yhat_upper")]
    summary = summarize(score_series(table, models, mase_scales(split.train, split.freq)))
    if dump:
        table.to_parquet(dump / f"{split.name.replace(' ', '_')}_test.parquet", index=False)
    coverage = float(((table["y"] >= table["yhat_lower"]) & (table["y"] <= table["yhat_upper"])).mean())
    peers_best = summary.loc[PEERS, "mase"].min()
    lines = [
        f"### {split.name} (h={split.h}, {split.train['unique_id'].nunique()} series)",
        "",
        "| model | MASE | sMAPE | WAPE | bias | seconds |",
        "|---|---|---|---|---|---|",
    ]
    timing = {"ensemble_auto": ours_seconds} | peer_seconds
    for name, row in summary.sort_values("mase").iterrows():
        seconds = f"{timing[name]:.0f}" if name in timing else ""
        lines.append(f"| {name} | {row.mase:.3f} | {row.smape:.2f} | {row.wape:.3f} | "
                     f"{row.bias:+.3f} | {seconds} |")
    auto = summary.loc["ensemble_auto", "mase"]
    lines += [
        "",
        f"auto / best peer MASE = {auto:.3f} / {peers_best:.3f} = {auto / peers_best:.3f} "
        f"(target <= 0.95); 95% interval coverage on the test: {coverage:.1%} (target 93-97%)",
        *nested_holdout(model, split),
        f"selection: {model.weights_summary()}",
        f"member seconds: {model.durations_}",
        "",
    ]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="m3,pizzaplace")
    parser.add_argument("--lstm-epochs", type=int, default=50)
    parser.add_argument("--dump", type=Path, help="also save the fitted ensemble and the test table here")
    args = parser.parse_args()
    root = data_dir()
    if not (root / "m3_monthly_train.csv").exists():
        print(f"benchmark data not found in {root}; set RESTOCK_BENCH_DATA. Skipping.")
        return 0
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    loaders = {"m3": load_m3, "pizzaplace": load_pizzaplace}
    for name in args.datasets.split(","):
        evaluate(loaders[name](root), args.lstm_epochs, args.dump)
    return 0


if __name__ == "__main__":
    sys.exit(main())
