"""Alembic migrations on SQLite and the real PostgreSQL: an empty database, a database made
before migrations (adopted), processes starting at once, the schema matching tables.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner

from restock import migrations
from restock.data import tables
from restock.data.store import SalesStore, make_engine

RESTOCK_TABLES = {"sales", "uploads", "jobs", "job_events", "accuracy_points", "item_uploads",
                  "item_settings"}
SALES = b"date,product_id,store_id,quantity\n2024-01-01,A,S1,3\n2024-01-02,A,S1,4\n"


@pytest.fixture
def engine(db_url: str) -> sa.Engine:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_package_has_one_head_and_its_files() -> None:
    assert migrations.head() == "0003"
    assert (migrations.HERE / "env.py").is_file()
    assert (migrations.HERE / "script.py.mako").is_file()
    assert (migrations.HERE / "versions" / "0001_initial.py").is_file()
    assert (migrations.HERE / "versions" / "0002_accuracy_points.py").is_file()
    assert (migrations.HERE / "versions" / "0003_item_settings.py").is_file()


def test_empty_database_migrates_to_exactly_tables_py(engine: sa.Engine) -> None:
    assert table_names(engine) == set()
    assert migrations.upgrade(engine) == (None, migrations.head())
    assert table_names(engine) == RESTOCK_TABLES | {"alembic_version"}
    assert migrations.schema_diffs(engine) == []
    # nothing to do the second time
    assert migrations.upgrade(engine) == (migrations.head(), migrations.head())


def test_schema_diffs_see_a_difference(engine: sa.Engine) -> None:
    """The no-diff checks are meaningful: a dropped index or column default is reported."""
    migrations.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_sales_date"))
    diffs = migrations.schema_diffs(engine)
    assert [d[0] for d in diffs] == ["add_index"] and diffs[0][1].name == "ix_sales_date"


def test_store_opens_a_migrated_database(store: SalesStore) -> None:
    with store.engine.connect() as conn:
        assert migrations.current(conn) == migrations.head()
    assert migrations.schema_diffs(store.engine) == []
    assert store.ingest_bytes(SALES).inserted == 2


def test_database_from_before_migrations_is_adopted(db_url: str, engine: sa.Engine,
                                                    tmp_path: Path) -> None:
    """What the previous code left behind: every table from ``create_all``, rows in them,
    no alembic_version. It is stamped at head, its rows kept, and it matches tables.py."""
    tables.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(tables.uploads.insert().values(
            upload_id="u1", filename="old.csv", sha256="0" * 64, received_at=sa.func.now(),
            rows_read=2, inserted=2, updated=0, skipped=0, status="applied"))
        conn.execute(tables.sales.insert(), [
            {"product_id": "A", "store_id": "S1", "date": date(2024, 1, day),
             "quantity": float(day), "upload_seq": 1} for day in (1, 2)])
        conn.execute(tables.jobs.insert().values(
            job_id="j1", status="succeeded", params={}, created_at=sa.func.now()))
    assert "alembic_version" not in table_names(engine)

    store = SalesStore(db_url, tmp_path / "uploads")
    try:
        with store.engine.connect() as conn:
            assert migrations.current(conn) == migrations.head()
            assert conn.execute(sa.select(tables.jobs.c.job_id)).scalars().all() == ["j1"]
        assert migrations.schema_diffs(store.engine) == []
        assert store.stats()["rows"] == 2 and len(store.uploads()) == 1
        result = store.ingest_bytes(b"date,product_id,store_id,quantity\n2024-01-02,A,S1,9\n")
        assert (result.inserted, result.updated, result.total_rows) == (0, 1, 2)
        assert store.uploads()["seq"].tolist() == [1, 2]
    finally:
        store.close()


def test_older_database_without_job_tables_gets_them(engine: sa.Engine) -> None:
    """Before the job queue, restock made only sales and uploads: the missing tables are
    created on adoption, the existing ones left alone."""
    tables.metadata.create_all(engine, tables=[tables.sales, tables.uploads])
    with engine.begin() as conn:
        conn.execute(tables.uploads.insert().values(
            upload_id="u1", filename="a.csv", sha256="0" * 64, received_at=sa.func.now(),
            rows_read=1, inserted=1, updated=0, skipped=0, status="applied"))
    assert migrations.upgrade(engine) == (None, migrations.head())
    assert table_names(engine) == RESTOCK_TABLES | {"alembic_version"}
    assert migrations.schema_diffs(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.uploads)).scalar() == 1


def test_downgrade_to_base_and_back(engine: sa.Engine) -> None:
    migrations.upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(migrations.config(conn), "base")
    assert table_names(engine) <= {"alembic_version"}
    assert migrations.upgrade(engine) == (None, migrations.head())
    assert migrations.schema_diffs(engine) == []


def test_database_from_a_newer_restock_is_refused_clearly(engine: sa.Engine) -> None:
    migrations.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(RuntimeError, match="'9999', which this restock does not know"):
        migrations.upgrade(engine)


OPEN_STORE = """
import sys, time
from pathlib import Path
from restock.data.store import SalesStore
url, start, uploads = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
store = SalesStore(url, uploads)
store.close()
print("ok")
"""


def test_processes_starting_at_once_migrate_once(db_url: str, engine: sa.Engine,
                                                 tmp_path: Path) -> None:
    """Four processes open the same empty database at the same moment: all succeed, the
    schema is created once and matches tables.py."""
    start = time.time() + 4.0  # after every interpreter has imported restock
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_STORE, db_url, str(start),
                               str(tmp_path / f"uploads{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == ["ok"] * 4
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() \
            == [migrations.head()]
    assert migrations.schema_diffs(engine) == []


def test_cli_db_upgrade_and_current(tmp_path: Path) -> None:
    from restock.cli import cli
    from restock.cli import db as _register  # noqa: F401

    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    before = json.loads(runner.invoke(cli, [*home, "db", "current"],
                                      catch_exceptions=False).stdout)
    assert (before["current"], before["head"]) == (None, migrations.head())
    result = runner.invoke(cli, [*home, "db", "upgrade"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["before"] is None
    assert json.loads(result.stdout)["after"] == migrations.head()
    again = json.loads(runner.invoke(cli, [*home, "db", "upgrade"],
                                     catch_exceptions=False).stdout)
    assert again["before"] == again["after"] == migrations.head()
    now = json.loads(runner.invoke(cli, [*home, "db", "current"],
                                   catch_exceptions=False).stdout)
    assert now["current"] == migrations.head()


def test_a_locked_new_sqlite_file_is_tried_again(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite may refuse a process "database is locked" without waiting (another one is
    turning the new file to WAL): the upgrade is tried again, any other error is not."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    real, calls = migrations._upgrade, []

    def locked_once(*args: object) -> tuple[str | None, str | None]:
        calls.append(args)
        if len(calls) == 1:
            raise sa.exc.OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        return real(*args)

    monkeypatch.setattr(migrations, "_upgrade", locked_once)
    assert migrations.upgrade(engine) == (None, migrations.head()) and len(calls) == 2

    def broken(*args: object) -> tuple[str | None, str | None]:
        raise sa.exc.OperationalError("SELECT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(migrations, "_upgrade", broken)
    with pytest.raises(sa.exc.OperationalError, match="disk I/O"):
        migrations.upgrade(engine)
    engine.dispose()
