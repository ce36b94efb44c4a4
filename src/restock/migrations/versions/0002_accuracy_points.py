"""Live accuracy tracking: ``accuracy_points``, each forecast of a once-active model version
next to the actual sale that arrived later (see ``restock.accuracy``).

Spelt out here, not imported from ``tables.py``, so this revision stays what it was.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a database adopted by 0001 from ``metadata.create_all`` may hold the table already
    if "accuracy_points" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "accuracy_points",
        sa.Column("model_version", sa.String(64), primary_key=True),
        sa.Column("product_id", sa.String(200), primary_key=True),
        sa.Column("store_id", sa.String(200), primary_key=True, server_default=""),
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("category", sa.String(200), nullable=False, server_default=""),
        sa.Column("cutoff", sa.Date, nullable=False),
        sa.Column("frequency", sa.String(20), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("actual", sa.Float, nullable=False),
        sa.Column("yhat", sa.Float, nullable=False),
        sa.Column("yhat_lower", sa.Float, nullable=False),
        sa.Column("yhat_upper", sa.Float, nullable=False),
        sa.Column("naive", sa.Float, nullable=False),
        sa.Column("scale", sa.Float),
        sa.Column("backtest_mase", sa.Float),
        sa.Column("upload_seq", sa.Integer, nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_accuracy_points_date", "accuracy_points", ["date"])


def downgrade() -> None:
    op.drop_index("ix_accuracy_points_date", "accuracy_points")
    op.drop_table("accuracy_points")
