"""The ``restock`` command: a click group whose subcommands live in one module per concern.

The group builds ``Settings`` once (defaults < environment < ``--home``) and hands it to
every subcommand through ``ctx.obj``; subcommands are thin wrappers over the same
functions the HTTP API and the job workers call.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from restock.config import Settings
from restock.errors import DataValidationError, InvalidParameterError, RestockError
from restock.processes import use_safe_start_method

pass_settings = click.make_pass_decorator(Settings)

EXIT_BAD_INPUT = 2


def echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))


def format_option(*choices: str) -> Any:
    """``--format`` (as ``fmt``) of a command that prints a table by default; ``choices``
    are the machine-readable forms it also writes."""
    return click.option("--format", "fmt", type=click.Choice(["table", *choices]),
                        default="table")


def fail(error: RestockError) -> None:
    """Print a domain error for a person (and every row problem), then exit 2."""
    click.echo(f"error: {error.message}", err=True)
    if isinstance(error, DataValidationError):
        for problem in error.problems:
            where = f"line {problem.row}" if problem.row is not None else "file"
            column = f", column {problem.column}" if problem.column else ""
            click.echo(f"  {where}{column}: {problem.problem}", err=True)
        if error.total > len(error.problems):
            click.echo(f"  ... and {error.total - len(error.problems)} more", err=True)
    sys.exit(EXIT_BAD_INPUT)


def prepare_output(path: Path) -> Path:
    """Create the folder a command is about to write ``path`` into, as a user expects of
    `restock export reports/2026/sales.csv`; a folder that cannot be made (a file in the
    way, no permission) is a clear error, not a traceback. ``-`` (stdout) is left alone."""
    if str(path) != "-":
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(InvalidParameterError(
                f"cannot create the folder {str(path.parent)!r} for {str(path)!r}: "
                f"{exc.strerror or exc}"))
    return path


@click.group()
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data and model folder (default: $RESTOCK_HOME or ./restock-data).")
@click.version_option(package_name="restock")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """restock: demand forecasting and inventory planning."""
    try:
        ctx.obj = Settings.from_env({"home": home})
    except RestockError as error:
        fail(error)


def main() -> None:
    # OpenMP threads (LightGBM, torch) that busy-wait for work steal the cores from request
    # threads and Prophet workers; passive waiting costs them little. Set before either
    # library is loaded, for this process and every one it starts (gunicorn, Celery).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    use_safe_start_method()  # no pool may fork the (threaded) server
    from restock.cli import data, forecast, models, serve  # noqa: F401  (registers the subcommands)
    from restock.cli import worker  # noqa: F401
    from restock.cli import db  # noqa: F401
    from restock.cli import accuracy  # noqa: F401
    from restock.cli import plan  # noqa: F401
    from restock.cli import simulate  # noqa: F401

    cli(prog_name="restock")
