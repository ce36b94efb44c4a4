"""The accuracy subcommand: live scores of served model versions, as a table, CSV or JSON."""

from __future__ import annotations

from datetime import datetime

import click

from restock.accuracy import accuracy_report, format_rows
from restock.cli import cli, echo_json, fail, format_option, pass_settings
from restock.cli.data import open_store
from restock.cli.models import open_registry
from restock.config import Settings
from restock.errors import RestockError


@cli.command()
@click.option("--product", "product_id", multiple=True, help="Product id (repeat for OR).")
@click.option("--store", "store_id", multiple=True, help="Store id (repeat for OR).")
@click.option("--category", multiple=True, help="Category (repeat for OR).")
@click.option("--version", default=None, help="One model version (default: every scored one).")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First forecast date to score (YYYY-MM-DD).")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last forecast date to score (YYYY-MM-DD).")
@format_option("csv", "json")
@pass_settings
def accuracy(settings: Settings, product_id: tuple[str, ...], store_id: tuple[str, ...],
             category: tuple[str, ...], version: str | None, start: datetime | None,
             end: datetime | None, fmt: str) -> None:
    """How served forecasts fared against the sales uploaded since: MASE, WAPE, bias,
    interval coverage and value added over seasonal naive (FVA), per series, category,
    store and in total, with warnings."""
    try:
        report = accuracy_report(
            open_store(settings), open_registry(settings), product_id=list(product_id) or None,
            store_id=list(store_id) or None, category=list(category) or None, version=version,
            start=start.date() if start else None, end=end.date() if end else None)
    except RestockError as error:
        fail(error)
    if fmt == "json":
        echo_json(report)
        return
    rows = format_rows(report)
    if fmt == "csv":
        click.echo(rows.to_csv(index=False, float_format="%.6g", lineterminator="\n"), nl=False)
        return
    for version_info in report["versions"]:
        backtest, live = version_info["backtest_mase"], version_info["live_mase"]
        click.echo(f"model {version_info['model_version']} (trained to "
                   f"{version_info['cutoff']}): {version_info['periods']} periods "
                   f"{version_info['first_date']}..{version_info['last_date']}, "
                   f"{version_info['series']} series, MASE live "
                   f"{'-' if live is None else f'{live:.3f}'} / backtest "
                   f"{'-' if backtest is None else f'{backtest:.3f}'}")
    shown = rows.drop(columns=["model_version"] if len(report["versions"]) == 1 else [])
    click.echo(shown.fillna("").to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for warning in report["warnings"]:
        click.echo(f"[{warning['severity']}] {warning['code']}: {warning['message']}")
