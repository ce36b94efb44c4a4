"""The plan subcommand: what to order today, one row per series, as a table, CSV or JSON."""

from __future__ import annotations

import sys
from typing import Any

import click

from restock.cli import cli, echo_json, fail, format_option, pass_settings
from restock.cli.data import open_store
from restock.cli.options import options_for, request_of
from restock.cli.models import open_registry
from restock.config import Settings
from restock.errors import RestockError
from restock.query import plan_fields, split
from restock.serving import ForecastService

#: the table's columns (the CSV and JSON carry every plan column)
TABLE = [("product_id", "product", 12), ("store_id", "store", 8), ("order_now", "order", 6),
         ("suggested_order_qty", "qty", 10), ("on_hand", "on hand", 10),
         ("on_order", "on order", 10),
         ("reorder_point", "reorder pt", 11), ("order_up_to_level", "up to", 10),
         ("days_of_cover", "cover d", 8), ("stockout_date", "stockout", 11),
         ("abc_class", "abc", 4), ("xyz_class", "xyz", 4), ("warnings", "warnings", 0)]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return ",".join(value) if isinstance(value, list) else str(value)


@cli.command()
@options_for(plan_fields())
@format_option("json", "csv")
@pass_settings
def plan(settings: Settings, fmt: str, **options: Any) -> None:
    """What to order today: every selected series' plan, most urgent first."""
    try:
        query, policy = split(request_of(options))
    except RestockError as error:
        fail(error)
    service = ForecastService(settings, open_store(settings), open_registry(settings))
    try:
        result = service.plan(query, policy)
    except RestockError as error:
        fail(error)
    if fmt == "json":
        echo_json(result.to_dict())
    elif fmt == "csv":
        sys.stdout.write(result.csv())
    else:
        click.echo(f"model {result.model_version}  {len(result)} series  from {result.start}  "
                   f"ABC by {result.abc_basis}")
        click.echo("".join(f"{label:<{width}}" if width else label
                           for _, label, width in TABLE))
        for row in result.records():
            click.echo("".join(f"{_cell(row[key]):<{width}}" if width else _cell(row[key])
                               for key, _, width in TABLE))
