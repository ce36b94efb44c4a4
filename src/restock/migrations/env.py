"""Alembic environment for restock: target ``restock.data.tables.metadata``.

Run by ``restock.migrations.upgrade`` with ``config.attributes["connection"]`` set (a
connection already in its transaction and holding the migration lock); with only
``sqlalchemy.url`` set (e.g. ``alembic`` commands a developer runs) it connects itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from restock.data import tables
from restock.migrations import compare_server_default

config = context.config
target_metadata = tables.metadata


def run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=compare_server_default,
        # SQLite cannot ALTER most things: later revisions' alter_column etc. run as
        # "move and copy" batches there
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    run(config.attributes["connection"])
else:
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url"), poolclass=sa.NullPool)
    with engine.begin() as connection:
        run(connection)
    engine.dispose()
