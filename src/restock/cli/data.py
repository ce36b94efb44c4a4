"""Data subcommands: ingest, ingest-items, items, export, series, demo-data."""

from __future__ import annotations

from pathlib import Path

import click

from restock.accuracy import AccuracyTracker
from restock.cli import cli, echo_json, fail, format_option, pass_settings, prepare_output
from restock.config import Settings
from restock.data.items import settings_csv
from restock.data.store import SalesStore
from restock.errors import RestockError
from restock.registry import ModelRegistry


def open_store(settings: Settings) -> SalesStore:
    """The store, scoring served forecasts after each upload it applies (``restock.accuracy``)."""
    store = SalesStore.from_settings(settings)
    AccuracyTracker.attach(store, ModelRegistry(settings.models_dir, keep=settings.keep_versions))
    return store


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--on-error", type=click.Choice(["reject", "skip"]), default="reject",
              help="reject: any bad row rejects the file (default); skip: store the good rows.")
@click.option("--on-duplicate", type=click.Choice(["error", "last"]), default="error",
              help="last: a key repeated inside the file keeps its last row.")
@pass_settings
def ingest(settings: Settings, file: Path, on_error: str, on_duplicate: str) -> None:
    """Validate FILE and merge it into the sales history (all rows or none)."""
    store = open_store(settings)
    try:
        result = store.ingest_file(file, on_error=on_error, on_duplicate=on_duplicate)
    except RestockError as error:
        fail(error)
    summary = result.to_dict()
    for noisy in ("filename", "skipped_problems", "ignored_columns"):
        summary.pop(noisy)
    echo_json(summary)
    if result.ignored_columns:
        click.echo(f"ignored columns: {', '.join(result.ignored_columns)}", err=True)
    for problem in result.skipped_problems:
        click.echo(f"skipped line {problem['row']}, column {problem['column']}: "
                   f"{problem['problem']}", err=True)


@cli.command("ingest-items")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_settings
def ingest_items(settings: Settings, file: Path) -> None:
    """Replace the item and supplier settings with FILE's rows (all rows or none):
    product_id[, store_id], lead times, review period, moq, order multiple, caps, unit
    cost, service level."""
    store = open_store(settings)
    try:
        result = store.replace_items(file.read_bytes(), file.name)
    except RestockError as error:
        fail(error)
    echo_json(result)


@cli.command()
@format_option("json", "csv")
@pass_settings
def items(settings: Settings, fmt: str) -> None:
    """The item and supplier settings in force (empty cells: not set)."""
    store = open_store(settings)
    frame = store.item_settings()
    if fmt == "json":
        echo_json(store.items_in_force(frame))
    elif fmt == "csv":
        click.echo(settings_csv(frame), nl=False)
    elif frame.empty:
        click.echo("no item settings yet: run `restock ingest-items FILE`")
    else:
        click.echo(frame.to_string(index=False, na_rep="-"))


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_settings
def export(settings: Settings, file: Path) -> None:
    """Write the whole history to FILE as canonical CSV ('-' for stdout)."""
    store = open_store(settings)
    with click.open_file(str(prepare_output(file)), "w", encoding="utf-8", lazy=False) as out:
        for chunk in store.export_csv():
            out.write(chunk)


@cli.command()
@format_option("json")
@pass_settings
def series(settings: Settings, fmt: str) -> None:
    """List every (product, store) series with its row count, dates and demand stats."""
    frame = open_store(settings).series()
    if fmt == "json":
        echo_json(frame.to_dict("records"))
    elif frame.empty:
        click.echo("no data yet: run `restock ingest FILE`")
    else:
        click.echo(frame.to_string(index=False))


@cli.command("demo-data")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--products", default=50, show_default=True, type=click.IntRange(1))
@click.option("--stores", default=2, show_default=True, type=click.IntRange(1))
@click.option("--days", default=730, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--stockouts", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="share of series that also suffer supply disruptions (runs of days "
                   "out of stock, sales truncated)")
def demo_data(out: Path, products: int, stores: int, days: int, seed: int,
              stockouts: float) -> None:
    """Generate realistic retail sales (seasonality, promotions, slow movers) into OUT."""
    from restock.data.demo import write_demo_csv

    rows = write_demo_csv(prepare_output(out), products=products, stores=stores, days=days,
                          seed=seed, stockouts=stockouts)
    click.echo(f"wrote {rows} rows to {out}")
