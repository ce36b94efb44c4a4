"""Shared fixtures: settings in a temporary home, and stores on SQLite and PostgreSQL.

PostgreSQL tests use the real server at RESTOCK_TEST_POSTGRES_URL, each in a schema of its
own. They are skipped (with the reason printed) only when the server truly does not
answer, and never when RESTOCK_REQUIRE_SERVICES=1, as in CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from restock.config import Settings
from restock.data.store import SalesStore

POSTGRES_URL = os.environ.get(
    "RESTOCK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RESTOCK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("RESTOCK_REQUIRE_SERVICES") == "1"


def service_unavailable(what: str, error: Exception) -> None:
    """Skip when a service is absent on a developer machine; fail in CI."""
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and RESTOCK_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"home": tmp_path / "home"}, environ={})


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as error:  # noqa: BLE001 - any connection failure means "not here"
        engine.dispose()
        service_unavailable(f"PostgreSQL at {POSTGRES_URL}", error)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    schema = "t_" + uuid.uuid4().hex[:12]
    with postgres_admin.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with postgres_admin.begin() as conn:
        conn.execute(sa.text(f"drop schema {schema} cascade"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'restock.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[SalesStore]:
    sales_store = SalesStore(db_url, tmp_path / "uploads")
    yield sales_store
    sales_store.close()


class Trained:
    """A home with demo data ingested and one model trained on it (shared, read-only)."""

    def __init__(self, settings: Settings, store: SalesStore, version: str,
                 events: list[dict]) -> None:
        from restock.registry import ModelRegistry

        self.settings = settings
        self.store = store
        self.registry = ModelRegistry(settings.models_dir, keep=settings.keep_versions)
        self.version = version
        self.events = events


def train_home(home: Path, frame, **overrides) -> Trained:
    """Ingest ``frame`` (canonical columns) into a fresh home and retrain with 2 epochs."""
    from restock.registry import ModelRegistry
    from restock.training import retrain

    settings = Settings.from_env({"home": home, "lstm_epochs": 2, "prophet_workers": 1,
                                  **overrides}, environ={})
    store = SalesStore(settings.db_url, settings.uploads_dir)
    csv = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d")).to_csv(index=False)
    store.ingest_bytes(csv.encode(), "train.csv")
    events: list[dict] = []
    version = retrain(settings, store, ModelRegistry(settings.models_dir), on_event=events.append)
    return Trained(settings, store, version, events)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """3 products x 2 stores x 150 days of demo sales, trained once for the session."""
    from restock.data.demo import generate_demo_sales

    frame = generate_demo_sales(products=3, stores=2, days=150, seed=3)
    result = train_home(tmp_path_factory.mktemp("trained"), frame)
    yield result
    result.store.close()


def ask(service, **values):
    """``service.forecast`` for a flat request, declared and validated as the API does."""
    from restock.query import split

    return service.forecast(*split(values))
