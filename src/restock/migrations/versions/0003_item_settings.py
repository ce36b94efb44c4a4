"""Item and supplier settings (issue 15 item 2): ``sales.on_order``, the stock ordered and
not yet received, and the item settings uploads with the rows of the newest one.

Spelt out here, not imported from ``tables.py``, so this revision stays what it was.

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SETTINGS = ("lead_time_days", "lead_time_std_days", "review_period_days", "moq",
            "order_multiple", "max_order_qty", "max_stock", "unit_cost", "service_level")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # a database adopted by 0001 from ``metadata.create_all`` may hold all of it already
    if "on_order" not in {c["name"] for c in inspector.get_columns("sales")}:
        op.add_column("sales", sa.Column("on_order", sa.Float))
    tables = inspector.get_table_names()
    if "item_uploads" not in tables:
        op.create_table(
            "item_uploads",
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("upload_id", sa.String(36), nullable=False, unique=True),
            sa.Column("filename", sa.String(255), nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("rows", sa.Integer, nullable=False),
        )
    if "item_settings" not in tables:
        op.create_table(
            "item_settings",
            sa.Column("product_id", sa.String(200), primary_key=True),
            sa.Column("store_id", sa.String(200), primary_key=True, server_default=""),
            *[sa.Column(name, sa.Float) for name in SETTINGS],
            sa.Column("upload_seq", sa.Integer, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("item_settings")
    op.drop_table("item_uploads")
    with op.batch_alter_table("sales") as batch:  # SQLite drops a column by a table copy
        batch.drop_column("on_order")
