"""Model subcommands: retrain with live progress, list versions, activate (rollback)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from restock.cli import cli, echo_json, fail, format_option, pass_settings
from restock.cli.data import open_store
from restock.config import Settings
from restock.errors import RestockError
from restock.registry import ModelRegistry


def open_registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry(settings.models_dir, keep=settings.keep_versions)


class ProgressPrinter:
    """A one-line bar on a terminal; one line per stage or epoch when piped to a log."""

    def __init__(self, width: int = 30) -> None:
        self.width = width
        self.tty = sys.stderr.isatty()
        self.last_stage: str | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        stage, progress = event["stage"], float(event.get("progress", 0.0))
        filled = int(round(progress * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        detail = event.get("message", "")
        if "epoch" in event:
            detail = f"epoch {event['epoch']}" + (f"/{event['epochs']}" if "epochs" in event
                                                  else "")
            if event.get("loss") is not None:
                detail += f" loss {event['loss']:.4f}"
            if event.get("val_loss") is not None:
                detail += f" val {event['val_loss']:.4f}"
        line = f"[{bar}] {progress * 100:5.1f}% {stage:<9} {detail}"
        if self.tty:
            click.echo("\r" + line[:120].ljust(120), nl=False, err=True)
            if stage == "done":
                click.echo("", err=True)
        elif stage != self.last_stage or "epoch" in event:
            click.echo(line, err=True)
        self.last_stage = stage


@cli.command()
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False,
                                                        path_type=Path))
@click.option("--weights", type=click.Choice(["auto", "seed"]), default=None,
              help="auto: fitted on a backtest (default); seed: fixed 60% Prophet + 40% LSTM.")
@click.option("--epochs", type=click.IntRange(1), default=None,
              help="Maximum LSTM epochs (default $RESTOCK_LSTM_EPOCHS or 50).")
@pass_settings
def retrain(settings: Settings, file: Path | None, weights: str | None,
            epochs: int | None) -> None:
    """Retrain the ensemble on the stored history (ingesting FILE first if given)."""
    from restock.training import retrain as run_retrain

    store = open_store(settings)
    registry = open_registry(settings)
    try:
        version = run_retrain(settings, store, registry, upload=file, weights=weights,
                              epochs=epochs, on_event=ProgressPrinter())
    except RestockError as error:
        fail(error)
    meta = registry.meta(version)
    click.echo(f"new version: {version} ({meta['series']} series, {meta['rows']} rows, "
               f"frequency {meta['frequency']})")
    if not meta["metrics_summary"]:
        click.echo("backtest: no series is long enough to hold out a horizon yet")
        return
    click.echo("backtest (mean over series):")
    for member, scores in meta["metrics_summary"].items():
        figures = "  ".join(f"{k.upper()} {v:.3f}" for k, v in scores.items()
                            if isinstance(v, (int, float)))
        click.echo(f"  {member:<15} {figures}")


@cli.group()
def models() -> None:
    """List model versions and choose the active one."""


@models.command("list")
@format_option("json")
@pass_settings
def list_models(settings: Settings, fmt: str) -> None:
    """Every kept version, newest first, with its backtest MASE."""
    versions = open_registry(settings).versions()
    if fmt == "json":
        echo_json(versions)
        return
    if not versions:
        click.echo("no models yet: run `restock retrain`")
        return
    click.echo(f"{'version':<30} {'trained_at':<26} {'rows':>9} {'series':>7} "
               f"{'MASE':>6}  active")
    for v in versions:
        mase = f"{v['mase']:.3f}" if v["mase"] is not None else "-"
        click.echo(f"{v['version']:<30} {v['trained_at'] or '-':<26} {v['rows'] or 0:>9} "
                   f"{v['series'] or 0:>7} {mase:>6}  {'*' if v['active'] else ''}")


@models.command("activate")
@click.argument("version")
@pass_settings
def activate(settings: Settings, version: str) -> None:
    """Make VERSION the active model (roll back or forward)."""
    try:
        open_registry(settings).activate(version)
    except RestockError as error:
        fail(error)
    click.echo(f"active version: {version}")
