"""Initial schema: sales, uploads, jobs, job_events (as restock created them before
migrations, with ``metadata.create_all``).

A database created that way has some or all of these tables and no ``alembic_version``:
this revision creates only the missing tables (with their indexes) and alembic stamps it,
so it is adopted instead of failing with "table already exists". The tables are spelt out
here, not imported from ``tables.py``, so this revision stays what it was when
``tables.py`` changes (later changes get revisions of their own).

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _sales() -> None:
    op.create_table(
        "sales",
        sa.Column("product_id", sa.String(200), primary_key=True),
        sa.Column("store_id", sa.String(200), primary_key=True, server_default=""),
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("category", sa.String(200), nullable=False, server_default=""),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("price", sa.Float),
        sa.Column("on_hand", sa.Float),
        sa.Column("upload_seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_sales_category", "sales", ["category"])
    op.create_index("ix_sales_date", "sales", ["date"])


def _uploads() -> None:
    op.create_table(
        "uploads",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("upload_id", sa.String(36), nullable=False, unique=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("inserted", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
    )


def _jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False, server_default="retrain"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stage", sa.String(20)),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("upload_id", sa.String(36)),
        sa.Column("model_version", sa.String(64)),
        sa.Column("error", sa.JSON),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )


def _job_events() -> None:
    op.create_table(
        "job_events",
        sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.job_id"), primary_key=True),
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


# in dependency order (job_events refers to jobs)
TABLES = {"sales": _sales, "uploads": _uploads, "jobs": _jobs, "job_events": _job_events}


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in existing:
            create()


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
