"""The simulate subcommand: replay restock's policy, the seed's rule and a min/max rule over
the active version's backtest windows, as a table, JSON or CSV."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, Callable

import click

from restock.cli import cli, echo_json, fail, format_option, pass_settings, prepare_output
from restock.cli.data import open_store
from restock.cli.models import open_registry
from restock.cli.options import options_for, request_of
from restock.config import Settings
from restock.errors import RestockError
from restock.query import STOCK_FIELDS, InventoryPolicy, split
from restock.serving import ForecastService
from restock.simulation import POLICIES, SimulationOptions, chart, simulate as run_simulation

#: fields the CLI takes its own way (``--plot`` is a file) or that play no part here
NOT_OPTIONS = {"plot", *STOCK_FIELDS}
#: the figures of the table and the CSV, per policy, with the table's headings
COLUMNS = {"cycle_service_level": "CSL", "fill_rate": "fill rate",
           "stockout_periods": "stockouts", "average_on_hand": "avg on hand",
           "average_on_hand_value": "avg value", "orders": "orders"}


def declared_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One option per field of ``SimulationOptions`` and ``InventoryPolicy``."""
    declared = {**SimulationOptions.model_fields, **InventoryPolicy.model_fields}
    return options_for({k: v for k, v in declared.items() if k not in NOT_OPTIONS})(command)


def _rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (series, policy), then per (total, policy); one series is its total."""
    rows = []
    series = report["series"] if len(report["series"]) > 1 else []
    for scope in [*series, {"unique_id": "total", **report["total"]}]:
        for name in POLICIES:
            rows.append({"series": scope["unique_id"], "policy": name,
                         **{c: scope[name][c] for c in COLUMNS}})
    return rows


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.3f}" if isinstance(value, float) else str(value)


@cli.command()
@declared_options
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the chart (on hand, orders, stockouts) as PNG to this file.")
@format_option("json", "csv")
@pass_settings
def simulate(settings: Settings, plot: Path | None, fmt: str, **options: Any) -> None:
    """Replay inventory policies over the backtest: achieved service level and fill rate
    against the target, stockouts, average stock and orders (nothing stored changes)."""
    try:
        chosen, policy = split(request_of(options), SimulationOptions)
    except RestockError as error:
        fail(error)
    service = ForecastService(settings, open_store(settings), open_registry(settings))
    try:
        model = service.model()
        report, runs = run_simulation(model.snapshot, model.version, policy, chosen)
    except RestockError as error:
        fail(error)
    if plot is not None:
        prepare_output(plot).write_bytes(chart(report, runs))
    rows = _rows(report)
    if fmt == "json":
        echo_json(report)
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")  # quotes an id with a comma
        writer.writerow(rows[0])
        writer.writerows(["" if v is None else v for v in row.values()] for row in rows)
    else:
        period = report["period"]
        click.echo(f"model {report['model_version']}  {report['selection']['series']} series  "
                   f"{period['start']}..{period['end']} ({period['periods']} periods)  target "
                   f"service level {policy.service_level:.1%}, lead time "
                   f"{policy.lead_time_days:g} days")
        click.echo(f"{'series':<24}{'policy':<10}" + "".join(f"{h:>13}" for h in COLUMNS.values()))
        for row in rows:
            click.echo(f"{row['series']:<24}{row['policy']:<10}"
                       + "".join(f"{_shown(row[c]):>13}" for c in COLUMNS))
        if report["skipped"]:
            click.echo(f"not backtested (skipped): {', '.join(report['skipped'])}")
