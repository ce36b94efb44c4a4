"""The LightGBM members alone on M3 monthly and pizzaplace: accuracy, cost, and variants.

Same splits and scores as ``bench/accuracy.py`` (M3's own test file, h=18; pizzaplace's last
28 days; mean MASE with the in-sample seasonal-naive scale). Each variant is a set of
``GBMForecaster`` hyperparameters, the ``changes`` member (``GBMChangeForecaster``, the
ensemble's ``gbm_diff``), plus two target treatments neither member offers, kept here to
show why: ``raw`` (no scaling) and ``standard`` (mlforecast's ``LocalStandardScaler``, which
centres the target, so only the l2/l1 objectives apply).

Usage: ``RESTOCK_BENCH_DATA=/path/to/data python bench/gbm.py [--datasets m3,pizzaplace]
[--variants default,l2,...] [--cv] [--demo]``
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd
from mlforecast.target_transforms import LocalStandardScaler
from utilsforecast.processing import backtest_splits

from accuracy import Split, data_dir, load_m3, load_pizzaplace
from restock.calendar import frequency_of
from restock.models import gbm
from restock.models.gbm import GBMChangeForecaster, GBMForecaster, MeanScaler
from restock.models.metrics import mase_scales, score_series, summarize

N_JOBS = 2


class _Unscaled(MeanScaler):
    """Every scale 1: the raw target."""

    def fit_transform(self, df: pd.DataFrame) -> pd.DataFrame:
        self.scales_ = pd.Series(1.0, index=pd.unique(df[self.id_col]))
        return self.update(df)


class _Standard(LocalStandardScaler):
    """mlforecast's standard scaler, with the (empty) ``state`` the member saves after fit."""

    def state(self) -> dict[str, float]:
        return {}


class _Raw(GBMForecaster):
    """The level member on the raw target (every scale 1)."""

    def _target_transform(self, scales):
        return _Unscaled(None)


class _Standardised(GBMForecaster):
    """The level member on mlforecast's standardised target (centred: l2/l1 only)."""

    def _target_transform(self, scales):
        return _Standard()


#: the class that trains each target; a class, not an instance setting, so that the
#: clones ``cross_validate`` fits per window keep the variant's target
TARGETS: dict[str, type[GBMForecaster]] = {
    "mean": GBMForecaster, "raw": _Raw, "standard": _Standardised, "changes": GBMChangeForecaster,
}


VARIANTS: dict[str, tuple[str, dict]] = {
    "default": ("mean", {}),
    "price": ("mean", {"use_price": True}),
    "scale_all": ("mean", {"scale_window": 0}),
    "scale28": ("mean", {"scale_window": 28}),
    "poisson": ("mean", {"objective": "poisson"}),
    "tweedie1.2": ("mean", {"tweedie_variance_power": 1.2}),
    "l2": ("mean", {"objective": "l2"}),
    "l1": ("mean", {"objective": "l1"}),
    "raw_tweedie": ("raw", {}),
    "standard_l2": ("standard", {"objective": "l2"}),
    "no_cv_refit": ("mean", {"cv_refit": False}),
    "trees600_lr0.03": ("mean", {"n_estimators": 600, "learning_rate": 0.03}),
    "changes": ("changes", {}),
}


def make(variant: str) -> GBMForecaster:
    target, params = VARIANTS[variant]
    return TARGETS[target](n_jobs=N_JOBS, **params)


def score(split: Split, forecast: pd.DataFrame, alias: str) -> pd.Series:
    """Mean MASE, sMAPE, WAPE and bias over series (``restock.models.metrics``)."""
    frame = split.test.merge(forecast, on=["unique_id", "ds"], how="left")
    scores = score_series(frame, [alias], mase_scales(split.train, split.freq))
    return summarize(scores).loc[alias]


def run(split: Split, variant: str, cv: bool) -> str:
    """One variant on one split."""
    model = make(variant)
    started = time.perf_counter()
    model.fit(split.train, split.freq)
    fitted = time.perf_counter()
    forecast = model.predict(split.h)
    predicted = time.perf_counter()
    scores = score(split, forecast, model.alias)
    line = (
        f"| {split.name} | {variant} | {scores['mase']:.3f} | {scores['wape']:.3f} | "
        f"{scores['bias']:+.3f} | {fitted - started:.1f} | "
        f"{predicted - fitted:.2f} | {len(model.skipped_)} |"
    )
    if cv:
        h = frequency_of(split.freq).backtest_horizon
        started = time.perf_counter()
        table = make(variant).cross_validate(split.train, split.freq, h, 3, h // 2)
        seconds = time.perf_counter() - started
        line += f" {seconds:.1f} | {backtest_mase(split, table, h, model.alias):.3f} |"
    return line


def backtest_mase(split: Split, table: pd.DataFrame, h: int, alias: str) -> float:
    """Mean MASE of a ``cross_validate`` table against the training data's own actuals."""
    data = split.train.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    actuals = []
    splits = backtest_splits(data, 3, h, "unique_id", "ds", split.freq, step_size=h // 2)
    for window, (_, _, valid) in enumerate(splits):
        valid = valid.assign(window=window, step=valid.groupby("unique_id").cumcount() + 1)
        actuals.append(valid[["unique_id", "window", "step", "y"]])
    frame = pd.concat(actuals).merge(table, on=["unique_id", "window", "step"])
    scores = score_series(frame, [alias], mase_scales(split.train, split.freq))
    return float(summarize(scores).loc[alias, "mase"])


def demo_split() -> Split:
    from restock.data.demo import generate_demo_sales

    sales = generate_demo_sales(products=250, stores=2, days=730, seed=0)
    data = pd.DataFrame(
        {"unique_id": sales["product_id"] + "/" + sales["store_id"],
         "ds": pd.to_datetime(sales["date"]), "y": sales["quantity"].astype(float),
         "price": sales["price"].astype(float)}
    )
    cutoff = data["ds"].max() - pd.Timedelta(days=28)
    train, test = data[data["ds"] <= cutoff], data[data["ds"] > cutoff]
    return Split("demo 500x730 daily", "D", 28, train, test)


def main() -> int:
    global N_JOBS
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default="m3,pizzaplace")
    parser.add_argument("--variants", default="default")
    parser.add_argument("--cv", action="store_true", help="also time cross_validate (3 windows)")
    parser.add_argument("--demo", action="store_true", help="also the 500 x 730 demo data")
    parser.add_argument("--n-jobs", type=int, default=N_JOBS, help="LightGBM threads")
    parser.add_argument("--predict-h", type=int, default=0, help="time predict(h) on the demo")
    args = parser.parse_args()
    N_JOBS = args.n_jobs
    warnings.simplefilter("ignore")
    root = data_dir()
    if not (root / "m3_monthly_train.csv").exists():
        print(f"no benchmark data in {root}; set RESTOCK_BENCH_DATA")
        return 0
    loaders = {"m3": load_m3, "pizzaplace": load_pizzaplace}
    splits = [loaders[name](root) for name in args.datasets.split(",") if name]
    if args.demo:
        splits.append(demo_split())
    header = "| data | variant | MASE | WAPE | bias | fit s | predict s | skipped |"
    print(header + (" cross_validate s | backtest MASE |" if args.cv else ""), flush=True)
    for split in splits:
        for variant in args.variants.split(","):
            print(run(split, variant, args.cv), flush=True)
    if args.predict_h:
        split = demo_split()
        model = make("default").fit(split.train, split.freq)
        started = time.perf_counter()
        model.predict(args.predict_h)
        print(f"predict(h={args.predict_h}) on {split.train['unique_id'].nunique()} daily series: "
              f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
