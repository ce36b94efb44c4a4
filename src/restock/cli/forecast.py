"""The forecast subcommand: one selection's forecast and inventory plan, or every series."""

from __future__ import annotations

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
from restock.query import fields, split
from restock.serving import ForecastService

INVENTORY_LABELS = [
    ("avg_daily_demand", "average daily demand"), ("demand_over_lead_time", "demand over lead time"),
    ("safety_stock", "safety stock"), ("reorder_point", "reorder point (min)"),
    ("max_level", "max level"), ("order_quantity", "order quantity"), ("eoq", "EOQ"),
    ("on_hand", "on hand"), ("days_of_cover", "days of cover"),
    ("stockout_date", "projected stockout"), ("order_now", "order now"),
    ("suggested_order_qty", "suggested order"), ("fill_rate", "fill rate"),
]


def _print_table(result: dict[str, Any]) -> None:
    selection = result["selection"]
    chosen = ", ".join(f"{k}={','.join(v)}" for k, v in selection.items()
                       if isinstance(v, list) and v) or "all products"
    click.echo(f"model {result['model_version']}  selection: {chosen} "
               f"({selection['series']} series)  frequency {result['frequency']}")
    click.echo(f"\n{'date':<12}{'forecast':>12}{'lower':>12}{'upper':>12}")
    for row in result["forecast"]:
        click.echo(f"{row['date']:<12}{row['yhat']:>12.2f}{row['yhat_lower']:>12.2f}"
                   f"{row['yhat_upper']:>12.2f}")
    total = sum(r["yhat"] for r in result["forecast"])
    click.echo(f"{'total':<12}{total:>12.2f}")
    inv = result["inventory"]
    click.echo(f"\ninventory (service level {inv['service_level']:.1%}, lead time "
               f"{inv['lead_time_days']:g} days):")
    for key, label in INVENTORY_LABELS:
        value = inv.get(key)
        if value is None:
            continue
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        click.echo(f"  {label:<24}{shown}")
    if result["warnings"]:
        click.echo("\nwarnings:")
        for warning in result["warnings"]:
            click.echo(f"  [{warning['severity']}] {warning['code']}: {warning['message']}")


#: request fields the CLI takes its own way (``--plot`` is a file to write, not a flag)
NOT_OPTIONS = {"plot"}


def declared_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per field of a forecast request (``restock.query``)."""
    return options_for({k: v for k, v in fields().items() if k not in NOT_OPTIONS})(command)


@cli.command()
@declared_options
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the chart as PNG to this file.")
@format_option("json", "csv")
@click.option("--all-series", is_flag=True, help="Every series' forecast (csv or json).")
@pass_settings
def forecast(settings: Settings, plot: Path | None, fmt: str, all_series: bool,
             **options: Any) -> None:
    """Forecast demand and plan inventory for a selection (default: everything)."""
    try:
        query, policy = split({**request_of(options), "plot": plot is not None})
    except RestockError as error:
        fail(error)
    if plot is not None:
        prepare_output(plot)
    service = ForecastService(settings, open_store(settings), open_registry(settings))
    try:
        if all_series:
            frame = service.all_series(query)
            if fmt == "json":
                echo_json(frame.to_dict("records"))
            else:
                frame.to_csv(sys.stdout, index=False, float_format="%.4f")
            return
        result = service.forecast(query, policy)
    except RestockError as error:
        fail(error)
    if plot is not None:
        plot.write_bytes(service.plot_path(result.pop("plot_id")).read_bytes())
    if fmt == "json":
        echo_json(result)
    elif fmt == "csv":
        click.echo("date,yhat,yhat_lower,yhat_upper,prophet,lstm")
        for row in result["forecast"]:
            click.echo(",".join("" if row[k] is None else str(row[k]) for k in
                                ("date", "yhat", "yhat_lower", "yhat_upper", "prophet", "lstm")))
    else:
        _print_table(result)
