"""Every table restock keeps, in one SQLAlchemy Core ``MetaData``.

One definition serves SQLite (the default) and PostgreSQL (scale-out), so the same code
and the same tests run on both.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from restock.query import ITEM_COLUMNS

metadata = sa.MetaData()


def aware(value: datetime | None) -> datetime | None:
    """A ``DateTime(timezone=True)`` value as read back, in UTC: SQLite hands back naive
    datetimes, PostgreSQL aware ones, and an answer must not say which database it came
    from (every timestamp here is written as UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


sales = sa.Table(
    "sales",
    metadata,
    sa.Column("product_id", sa.String(200), primary_key=True),
    sa.Column("store_id", sa.String(200), primary_key=True, server_default=""),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("category", sa.String(200), nullable=False, server_default=""),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("price", sa.Float),
    sa.Column("on_hand", sa.Float),
    sa.Column("upload_seq", sa.Integer, nullable=False),
    # stock ordered and not yet received (added by revision 0003, hence after upload_seq)
    sa.Column("on_order", sa.Float),
)
sa.Index("ix_sales_category", sales.c.category)
sa.Index("ix_sales_date", sales.c.date)


def _upload_record() -> list[sa.Column]:
    """What every kind of upload records: ``seq`` (the order uploads were committed in),
    its id (the kept file's name), the name it was sent under, its hash and when."""
    return [sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("upload_id", sa.String(36), nullable=False, unique=True),
            sa.Column("filename", sa.String(255), nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False)]


uploads = sa.Table(
    "uploads",
    metadata,
    # seq records the order uploads were committed in: the last writer of a key wins
    *_upload_record(),
    sa.Column("rows_read", sa.Integer, nullable=False),
    sa.Column("inserted", sa.Integer, nullable=False),
    sa.Column("updated", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
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

job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.job_id"), primary_key=True),
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("event", sa.String(20), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

accuracy_points = sa.Table(
    "accuracy_points",
    metadata,
    # one row per forecast a once-active model version made and the actual that came later:
    # re-uploading the same actuals overwrites the row (idempotent), a correction updates it
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
sa.Index("ix_accuracy_points_date", accuracy_points.c.date)

item_uploads = sa.Table(
    "item_uploads",
    metadata,
    # one row per item settings upload; the newest one's rows are the settings in force
    *_upload_record(),
    sa.Column("rows", sa.Integer, nullable=False),
)

item_settings = sa.Table(
    "item_settings",
    metadata,
    # store_id "" is the product's row for every store; a row with a store overrides it
    sa.Column("product_id", sa.String(200), primary_key=True),
    sa.Column("store_id", sa.String(200), primary_key=True, server_default=""),
    *[sa.Column(name, sa.Float) for name in ITEM_COLUMNS],  # NULL: not set by the item
    sa.Column("upload_seq", sa.Integer, nullable=False),
)
