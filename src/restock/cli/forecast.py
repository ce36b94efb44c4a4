"""The forecast subcommand: one selection's forecast and inventory plan, or every series."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from restock.cli import cli, echo_json, fail, pass_settings, prepare_output
from restock.cli.data import open_store
from restock.cli.models import open_registry
from restock.config import Settings
from restock.errors import RestockError
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


@cli.command()
@click.option("--product", "product_id", multiple=True, help="Product id (repeatable).")
@click.option("--store", "store_id", multiple=True, help="Store id (repeatable).")
@click.option("--category", multiple=True, help="Category (repeatable).")
@click.option("--days", type=click.IntRange(1), default=None, help="Horizon in calendar days.")
@click.option("--periods", type=click.IntRange(1), default=None,
              help="Horizon in periods of the data's frequency.")
@click.option("--service-level", type=float, default=0.95, show_default=True)
@click.option("--lead-time", type=float, default=7.0, show_default=True, help="Days.")
@click.option("--lead-time-std", type=float, default=0.0, show_default=True, help="Days.")
@click.option("--review-period", type=float, default=0.0, show_default=True, help="Days.")
@click.option("--on-hand", type=float, default=None,
              help="Units in stock (default: the latest stored on_hand of the selection).")
@click.option("--ordering-cost", type=float, default=None, help="Cost per order (EOQ).")
@click.option("--holding-cost", type=float, default=None,
              help="Holding cost per unit per year (EOQ).")
@click.option("--cover-days", type=float, default=30.0, show_default=True,
              help="Order quantity in days of demand when no EOQ costs are given.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the chart as PNG to this file.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option("--all-series", is_flag=True, help="Every series' forecast (csv or json).")
@pass_settings
def forecast(settings: Settings, product_id: tuple[str, ...], store_id: tuple[str, ...],
             category: tuple[str, ...], days: int | None, periods: int | None,
             service_level: float, lead_time: float, lead_time_std: float,
             review_period: float, on_hand: float | None, ordering_cost: float | None,
             holding_cost: float | None, cover_days: float, plot: Path | None, fmt: str,
             all_series: bool) -> None:
    """Forecast demand and plan inventory for a selection (default: everything)."""
    if plot is not None:
        prepare_output(plot)
    service = ForecastService(settings, open_store(settings), open_registry(settings))
    try:
        if all_series:
            frame = service.all_series(days=days, periods=periods)
            if fmt == "json":
                echo_json(frame.to_dict("records"))
            else:
                frame.to_csv(sys.stdout, index=False, float_format="%.4f")
            return
        result = service.forecast(
            days=days, periods=periods, product_id=list(product_id) or None,
            store_id=list(store_id) or None, category=list(category) or None,
            service_level=service_level, lead_time_days=lead_time,
            lead_time_std_days=lead_time_std, review_period_days=review_period,
            on_hand=on_hand, ordering_cost=ordering_cost, holding_cost=holding_cost,
            cover_days=cover_days, plot=plot is not None)
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
