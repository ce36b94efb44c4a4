"""Policy simulation on the development sets: do the reorder points keep their promise?

For each data set (``/work/shared/data``, see its README; the script skips a missing file)
the script builds the panel, backtests an ensemble of cheap statsforecast members
(``--members``, default seasonal naive + optimized Theta: the full production ensemble takes
tens of minutes per retrain on this machine) through the production ``EnsembleForecaster``
and snapshot code, then replays, for every series, restock's policy, the seed's rule and
min/max (:mod:`restock.simulation`) at each target service level. Reported in aggregate over
all series: achieved fill rate and cycle service level against the target, and restock vs the
seed's rule (service level and average stock).

Usage: ``PYTHONPATH=src python bench/policy.py [--datasets pizzaplace,m3]
[--out bench/results/policy.md]`` (``RESTOCK_BENCH_DATA`` overrides the data folder).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd

from restock import snapshot
from restock.data.panel import build_panel
from restock.models.ensemble import EnsembleForecaster, default_backtest_h
from restock.models.statistical import ETSForecaster, SeasonalNaiveForecaster, ThetaForecaster
from restock.query import InventoryPolicy
from restock.simulation import POLICIES, SimulationOptions, metrics, simulate_series

DATA = Path(os.environ.get("RESTOCK_BENCH_DATA", "/work/shared/data"))
#: file, lead time (days), cover (days) per data set: a week's lead time for daily sales,
#: a month for monthly ones; orders of a month's (two months') demand
DATASETS = {"pizzaplace": ("pizzaplace_daily.csv", 7.0, 30.0),
            "m3": ("m3_monthly_train.csv", 30.0, 61.0)}
MEMBERS = {"seasonal_naive": SeasonalNaiveForecaster, "theta": ThetaForecaster,
           "ets": ETSForecaster}
TARGETS = (0.90, 0.95, 0.98)


def version_of(path: Path, members: list[str]) -> tuple[snapshot.Snapshot, float]:
    """The snapshot a retrain with ``members`` would write (backtest included), and the
    seconds it took."""
    started = time.perf_counter()
    rows = pd.read_csv(path, parse_dates=["date"])
    rows["store_id"] = rows.get("store_id", pd.Series("", index=rows.index))
    panel = build_panel(rows)
    ensemble = EnsembleForecaster([MEMBERS[m](n_jobs=2) for m in members])
    ensemble.fit(panel.long, panel.freq)
    horizon = default_backtest_h(panel.long, panel.freq)
    forecasts = ensemble.predict(horizon)
    forecasts["step"] = forecasts.groupby("unique_id").cumcount() + 1
    arrays = snapshot.from_frames(panel.freq, panel.series, forecasts, ensemble.backtest_,
                                  panel.history(), ensemble.clipped_,
                                  group_sums=False)
    return arrays, time.perf_counter() - started


def run(arrays: snapshot.Snapshot, target: float, lead: float, cover: float) -> dict:
    """Pooled figures per policy over every series (the total left out)."""
    policy = InventoryPolicy(service_level=target, lead_time_days=lead, cover_days=cover)
    runs = [simulate_series(arrays, int(row), policy, SimulationOptions())
            for row in arrays.table_rows]
    done = [r for r in runs if r is not None and r.dates]
    return {"series": len(done), **{name: metrics([r.runs[name] for r in done], target, None)
                                    for name in POLICIES}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="pizzaplace,m3")
    parser.add_argument("--members", default="seasonal_naive,theta")
    parser.add_argument("--out", type=Path, default=Path("bench/results/policy.md"))
    args = parser.parse_args()
    members = args.members.split(",")
    lines = []
    for name in args.datasets.split(","):
        file, lead, cover = DATASETS[name]
        if not (DATA / file).exists():
            print(f"skipping {name}: {DATA / file} is absent")
            continue
        arrays, seconds = version_of(DATA / file, members)
        lines += [f"\n## {name} ({file}, frequency {arrays.freq}, lead time {lead:g} days, "
                  f"order {cover:g} days of demand; members {', '.join(members)}; "
                  f"backtest + fit {seconds:.0f} s)\n",
                  "| target | series | policy | fill rate | vs target | CSL | vs target | "
                  "stockout periods | avg on hand | orders |", "|---" * 10 + "|"]
        for target in TARGETS:
            started = time.perf_counter()
            result = run(arrays, target, lead, cover)
            print(f"{name} {target}: {time.perf_counter() - started:.1f} s", flush=True)
            for policy in POLICIES:
                m = result[policy]
                lines.append(
                    f"| {target:.2f} | {result['series']} | {policy} | {m['fill_rate']:.3f} | "
                    f"{m['fill_rate_vs_target']:+.3f} | {m['cycle_service_level']:.3f} | "
                    f"{m['csl_vs_target']:+.3f} | {m['stockout_periods']} | "
                    f"{m['average_on_hand']:,.0f} | {m['orders']} |")
        print("\n".join(lines[-12:]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Policy simulation on the development sets (`bench/policy.py`)\n"
                        + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
