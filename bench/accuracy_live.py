"""Live accuracy on the development sets: train, retrain, upload the test period, read the scores.

For each development set (``/work/shared/data`` or ``RESTOCK_BENCH_DATA``; the splits of
``bench/accuracy.py``: M3 monthly's own train/test files, pizzaplace's last 28 days held
out; a missing file is skipped) the script, in a fresh restock home (SQLite in a temporary
folder), ingests the training part, runs the production ``training.retrain`` with the
``AccuracyTracker`` attached, uploads the test period as a normal upload and reads the
stored live scores with ``accuracy_report`` (what ``GET /accuracy`` and ``restock
accuracy`` show): total and per-level MASE, WAPE, bias, coverage and FVA, and the warnings.

It then recomputes the same figures with plain numpy from the version's forecasts
(``forecasts.parquet`` as the registry reads it) and the test actuals of the split (not the
store), with the MASE scale and the seasonal naive forecast taken from the split's training
part, and prints the largest absolute difference per metric: a check that the live scores
are what they claim to be.

The retrain fits a cheap member set (``--members``, default seasonal naive + optimized
Theta, as ``bench/policy.py`` does: the full production ensemble takes tens of minutes per
retrain on the shared development machine); ``training.build_ensemble`` is replaced for the
run and nothing else of the retrain changes. ``--m3-series N`` scores a seeded subset of M3.

Usage: ``PYTHONPATH=src python bench/accuracy_live.py [--datasets pizzaplace,m3]
[--m3-series 0] [--out bench/results/accuracy_live.md]``
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmarks' loaders

from accuracy import Split, data_dir, load_m3, load_pizzaplace  # noqa: E402
from machine import cpu_model, total_ram  # noqa: E402
from policy import MEMBERS  # noqa: E402

from restock import training  # noqa: E402
from restock.accuracy import AccuracyTracker, accuracy_report, version_forecasts  # noqa: E402
from restock.calendar import frequency_of  # noqa: E402
from restock.config import Settings  # noqa: E402
from restock.data.store import SalesStore  # noqa: E402
from restock.models.ensemble import EnsembleForecaster  # noqa: E402
from restock.registry import ModelRegistry  # noqa: E402

#: loader and the file whose ``category`` column names each product's category
DATASETS = {"pizzaplace": (load_pizzaplace, "pizzaplace_daily.csv"),
            "m3": (load_m3, "m3_monthly_train.csv")}
METRICS = ("mase", "wape", "bias", "coverage", "fva")


def sales_csv(long: pd.DataFrame, categories: pd.Series) -> bytes:
    """A split's rows (``unique_id, ds, y``) as the upload a shop would send."""
    return pd.DataFrame({"date": long["ds"].dt.strftime("%Y-%m-%d"),
                         "product_id": long["unique_id"],
                         "category": long["unique_id"].map(categories),
                         "quantity": long["y"]}).to_csv(index=False).encode()


def cheap_ensemble(members: list[str]) -> Callable[..., EnsembleForecaster]:
    """A stand-in for ``training.build_ensemble`` that fits only ``members`` (same weights,
    interval level and backtest settings as production)."""
    def build(settings: Settings, weights: str, epochs: int,
              forecast_h: int | None = None) -> EnsembleForecaster:
        return EnsembleForecaster(members=[MEMBERS[m](n_jobs=2) for m in members],
                                  weights=weights, level=settings.interval_level,
                                  backtest_windows=settings.backtest_windows,
                                  forecast_h=forecast_h)
    return build


def live_scores(split: Split, categories: pd.Series, members: list[str],
                home: Path) -> tuple[dict[str, Any], pd.DataFrame, dict[str, float]]:
    """Ingest, retrain, upload the test period; the report, the version's forecasts and
    the seconds of each step."""
    settings = Settings.from_env({"home": home, "database_url": ""})
    store = SalesStore.from_settings(settings)
    seconds = {}
    try:
        registry = ModelRegistry(settings.models_dir, keep=settings.keep_versions)
        AccuracyTracker.attach(store, registry)
        started = time.perf_counter()
        store.ingest_bytes(sales_csv(split.train, categories), "train.csv")
        seconds["ingest training part"] = time.perf_counter() - started
        started = time.perf_counter()
        with mock.patch.object(training, "build_ensemble", cheap_ensemble(members)):
            version = training.retrain(settings, store, registry)
        seconds["retrain"] = time.perf_counter() - started
        started = time.perf_counter()
        store.ingest_bytes(sales_csv(split.test, categories), "test.csv")
        seconds["upload test period (scored)"] = time.perf_counter() - started
        started = time.perf_counter()
        report = accuracy_report(store, registry)
        seconds["accuracy_report"] = time.perf_counter() - started
        forecasts = version_forecasts(registry, version).forecasts
    finally:
        store.close()
    return report, forecasts, seconds


# -- the independent computation ---------------------------------------------------------


def scale_of(values: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast (lag 1 when the season gives none)."""
    for lag in (season, 1):
        if len(values) > lag:
            mae = np.abs(values[lag:] - values[:-lag]).mean()
            if mae > 0:
                return float(mae)
    return float("nan")


def figures(y: np.ndarray, yhat: np.ndarray, naive: np.ndarray, inside: np.ndarray,
            scale: float) -> dict[str, float]:
    """MASE, WAPE, bias, coverage and FVA as README "Live accuracy" defines them."""
    error = np.abs(y - yhat).mean()
    volume = np.abs(y).sum()
    model, base = error / scale, np.abs(y - naive).mean() / scale
    return {"mase": model, "wape": np.abs(y - yhat).sum() / volume,
            "bias": (yhat - y).sum() / volume, "coverage": inside.mean(),
            "fva": 1 - model / base}


def recompute(split: Split, categories: pd.Series, forecasts: pd.DataFrame,
              season: int) -> pd.DataFrame:
    """Every series' and group's figures from the forecasts and the split alone: one row
    per (level, name)."""
    train = split.train.pivot(index="ds", columns="unique_id", values="y")  # NaN before start
    test = split.test.pivot(index="ds", columns="unique_id", values="y")
    test = test.reindex(columns=train.columns).fillna(0.0)
    wide = {c: forecasts.pivot(index="date", columns="product_id", values=c)
            .reindex(index=test.index, columns=train.columns)
            for c in ("yhat", "yhat_lower", "yhat_upper")}
    steps = np.arange(len(test))
    naive = pd.DataFrame({uid: train[uid].dropna().to_numpy()[-season:][steps % season]
                          for uid in train.columns}, index=test.index)
    inside = (wide["yhat_lower"] <= test) & (test <= wide["yhat_upper"])
    groups = {("series", uid): [uid] for uid in train.columns}
    groups |= {("category", c): list(ids) for c, ids in
               categories.reindex(train.columns).groupby(categories.reindex(train.columns))
               .groups.items()}
    groups |= {("store", ""): list(train.columns), ("total", None): list(train.columns)}
    rows = []
    for (level, name), ids in groups.items():
        # a group's history: summed per period, from its first row, gaps after it zero
        history = train[ids].sum(axis=1, min_count=1)
        history = history[history.notna().cummax()].fillna(0.0).to_numpy()
        rows.append({"level": level, "name": name, **figures(
            test[ids].sum(axis=1).to_numpy(), wide["yhat"][ids].sum(axis=1).to_numpy(),
            naive[ids].sum(axis=1).to_numpy(), inside[ids].to_numpy().ravel(),
            scale_of(history, season))})
    return pd.DataFrame(rows)


def stored_rows(report: dict[str, Any]) -> pd.DataFrame:
    """The report's score rows keyed like ``recompute``'s."""
    scores = pd.DataFrame(report["scores"])
    names = {"series": "product_id", "category": "category", "store": "store_id"}
    scores["name"] = [row[names[row["level"]]] if row["level"] in names else None
                      for _, row in scores.iterrows()]
    return scores


def expected_warnings(report_version: dict[str, Any], forecasts: pd.DataFrame,
                      split: Split, ours: pd.DataFrame, season: int) -> list[str]:
    """The warning codes the rules (README "Live accuracy") give on these figures."""
    found = []
    backtest = forecasts.drop_duplicates("product_id").set_index("product_id")["backtest_mase"]
    series = ours[ours["level"] == "series"].set_index("name")["mase"]
    both = pd.concat([series, backtest], axis=1, keys=["live", "past"]).dropna()
    periods = split.test["ds"].nunique()
    if len(both) and periods >= season and both["live"].mean() > 1.5 * both["past"].mean():
        found.append("model_degraded")
    total = pd.DataFrame(report_version["points"])
    error = total["forecast"] - total["actual"]
    if len(error) >= 6 and ((error > 0).all() or (error < 0).all()):
        found.append("forecast_bias")
    return found


def run(name: str, members: list[str], m3_series: int) -> list[str]:
    """Markdown lines with one data set's figures."""
    loader, category_file = DATASETS[name]
    root = data_dir()
    if not (root / category_file).exists():
        print(f"skipping {name}: {root / category_file} is absent")
        return []
    split = loader(root)
    note = ""
    if name == "m3" and m3_series:
        rng = np.random.default_rng(0)
        keep = set(rng.choice(sorted(split.train["unique_id"].unique()), m3_series,
                              replace=False))
        split = Split(split.name, split.freq, split.h, split.train[split.train["unique_id"]
                      .isin(keep)], split.test[split.test["unique_id"].isin(keep)])
        note = f", seeded subset of {m3_series} series (numpy default_rng(0))"
    raw = pd.read_csv(root / category_file, usecols=["product_id", "category"])
    categories = raw.drop_duplicates("product_id").set_index("product_id")["category"] \
        .astype(str)
    categories.index = categories.index.astype(str)
    season = frequency_of(split.freq).season_length
    with tempfile.TemporaryDirectory() as home:
        report, forecasts, seconds = live_scores(split, categories, members, Path(home))
    stored = stored_rows(report)
    ours = recompute(split, categories, forecasts, season)
    both = stored.merge(ours, on=["level", "name"], suffixes=("", "_numpy"), how="outer",
                        indicator=True)
    missing = int((both["_merge"] != "both").sum())
    diffs = {m: float(np.nanmax(np.abs(both[m].astype(float) - both[f"{m}_numpy"])))
             for m in METRICS}
    version = report["versions"][0]
    codes = sorted(w["code"] for w in report["warnings"])
    expected = sorted(expected_warnings(version, forecasts, split, ours, season))
    per_series = stored[stored["level"] == "series"]
    lines = [f"\n## {split.name} (h {split.h}, {per_series.shape[0]} series{note}; "
             f"members {', '.join(members)})\n",
             "Steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()) + ".\n",
             f"Version {version['model_version']}, cutoff {version['cutoff']}, "
             f"{version['periods']} periods scored ({version['first_date']} to "
             f"{version['last_date']}), backtest MASE {version['backtest_mase']:.3f}, "
             f"live MASE {version['live_mase']:.3f} (both: mean over series).\n",
             "| level | rows | MASE | WAPE | bias | coverage | FVA |", "|---" * 7 + "|"]
    for level in ("total", "store", "category", "series"):
        rows = stored[stored["level"] == level]
        label = " (mean over rows)" if len(rows) > 1 else ""
        cells = [f"{rows[m].astype(float).mean():.3f}" if m != "bias"
                 else f"{rows[m].astype(float).mean():+.3f}" for m in METRICS]
        lines.append(f"| {level}{label} | {len(rows)} | " + " | ".join(cells) + " |")
    categories_rows = stored[stored["level"] == "category"]
    if 1 < len(categories_rows) <= 10:
        lines += ["", "| category | series | MASE | WAPE | bias | coverage | FVA |",
                  "|---" * 7 + "|"]
        lines += [f"| {r.category} | {r.series} | {r.mase:.3f} | {r.wape:.3f} | "
                  f"{r.bias:+.3f} | {r.coverage:.3f} | {r.fva:.3f} |"
                  for r in categories_rows.itertuples()]
    lines += ["", f"Warnings: {', '.join(codes) or 'none'} "
              f"(the rules recomputed give: {', '.join(expected) or 'none'}).",
              "", "Independent numpy recomputation (forecasts.parquet + the split's test "
              f"actuals), max abs difference over all {len(ours)} rows"
              + (f", {missing} rows unmatched" if missing else "") + ": "
              + ", ".join(f"{m} {d:.2e}" for m, d in diffs.items()) + "."]
    print("\n".join(lines), flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="pizzaplace,m3")
    parser.add_argument("--members", default="seasonal_naive,theta")
    parser.add_argument("--m3-series", type=int, default=0,
                        help="score a seeded subset of M3's 1,428 series (0: all)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/accuracy_live.md"))
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()
    lines = []
    for name in args.datasets.split(","):
        lines += run(name, args.members.split(","), args.m3_series)
    header = [
        "# Live accuracy on the development sets (`bench/accuracy_live.py`)\n",
        f"Run {started} on {cpu_model()}, {os.cpu_count()} cores, {total_ram()} RAM, "
        f"Python {platform.python_version()}; load average at the start "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (shared machine, other jobs "
        "running), under `nice -n 19`.\n",
        f"Command: `RESTOCK_BENCH_DATA={data_dir()} PYTHONPATH=src nice -n 19 "
        f"python bench/accuracy_live.py {' '.join(sys.argv[1:])}".rstrip() + "`\n",
        "Each set: a fresh restock home (SQLite), the training part ingested, "
        "`training.retrain` with the accuracy tracker attached, the test period uploaded as "
        "a normal upload, then `accuracy_report` (what `GET /accuracy` / `restock accuracy` "
        "return). The retrain fits only the members named (seasonal naive + optimized "
        "Theta by default, as `bench/policy.py`; `training.build_ensemble` is swapped for "
        "the run), so the figures are those of that cheap ensemble, not of the production "
        "one (see `accuracy.md` for it). Series rows: MASE on the series' own scale; "
        "category/store/total rows: the group's summed series. Mean-over-rows lines "
        "average the rows of a level.\n",
        "The numpy check shares no scoring code with restock: it reads the version's "
        "forecasts and takes actuals, MASE scales and the seasonal naive forecast from the "
        "split itself. It follows the documented rules, so it checks the implementation "
        "of those rules, not the rules: a group's scale is its summed training history "
        "from its first row. On M3, whose series start at different dates, series entering "
        "a group make its summed history jump, which inflates the scale and makes group "
        "MASE far lower than the series' there; compare groups by WAPE."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header + lines) + "\n")


if __name__ == "__main__":
    main()
