"""Database subcommands: ``restock db upgrade`` and ``restock db current``.

Every process that opens the store upgrades the schema itself (under a lock); ``db upgrade``
does it on purpose, e.g. as a deployment step before the web and worker processes start.
"""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa

from restock import migrations
from restock.cli import cli, echo_json, pass_settings
from restock.config import Settings
from restock.data.store import make_engine


def _engine(settings: Settings) -> sa.Engine:
    url = settings.db_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url)


def _shown(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


@cli.group()
def db() -> None:
    """The database schema (alembic migrations)."""


@db.command()
@click.option("--revision", default="head", show_default=True,
              help="Revision to upgrade to.")
@pass_settings
def upgrade(settings: Settings, revision: str) -> None:
    """Create or upgrade the schema to REVISION; adopts a database made before migrations."""
    engine = _engine(settings)
    try:
        before, after = migrations.upgrade(engine, revision)
    finally:
        engine.dispose()
    echo_json({"database": _shown(settings.db_url), "before": before, "after": after,
               "head": migrations.head()})


@db.command()
@pass_settings
def current(settings: Settings) -> None:
    """Print the schema revision of the database and the newest one restock knows."""
    engine = _engine(settings)
    try:
        with engine.execution_options(read_only=True).connect() as conn:
            revision = migrations.current(conn)
    finally:
        engine.dispose()
    echo_json({"database": _shown(settings.db_url), "current": revision,
               "head": migrations.head()})
