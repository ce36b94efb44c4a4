"""Apps for the API tests: a fresh one per test with a controllable job body, and one
sharing a model really trained once per session (tiny demo data, 2 LSTM epochs)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from restock.config import Settings
from restock.data.demo import write_demo_csv
from restock.data.store import SalesStore
from restock.registry import ModelRegistry
from restock.web import create_app
from webtools import StepTask


@pytest.fixture
def step_task() -> Iterator[StepTask]:
    task = StepTask()
    yield task
    task.release.set()


def build(settings: Settings, **options: Any) -> Flask:
    app = create_app(settings, **options)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def make_app(settings: Settings, step_task: StepTask) -> Iterator[Callable[..., Flask]]:
    """Build apps over the test's home with overrides; all are closed at teardown."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        options = {k: overrides.pop(k) for k in ("task", "heartbeat") if k in overrides}
        options.setdefault("task", step_task)
        app = build(settings.with_overrides(**overrides), **options)
        apps.append(app)
        return app

    yield factory
    step_task.release.set()
    for app in apps:
        app.extensions["restock"].close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with demo sales and one really trained, active model version."""
    from restock.training import retrain

    home = tmp_path_factory.mktemp("trained") / "home"
    settings = Settings.from_env({"home": home, "lstm_epochs": 2}, environ={})
    csv = home.parent / "demo.csv"
    write_demo_csv(csv, products=3, stores=2, days=120, seed=3)
    store = SalesStore(settings.db_url, settings.uploads_dir)
    try:
        store.ingest_file(csv)
        retrain(settings, store, ModelRegistry(settings.models_dir), on_event=lambda e: None)
    finally:
        store.close()
    return home


@pytest.fixture
def trained_app(trained_home: Path, tmp_path: Path, step_task: StepTask) -> Iterator[Flask]:
    """An app over a private copy of the trained home (tests may activate or upload)."""
    home = tmp_path / "trained"
    shutil.copytree(trained_home, home, ignore=shutil.ignore_patterns("jobs.lock"))
    app = build(Settings.from_env({"home": home}, environ={}), task=step_task)
    yield app
    step_task.release.set()
    app.extensions["restock"].close()


@pytest.fixture(scope="module")
def demo_csv(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small demo upload (3 products x 2 stores x 120 days) for the real-server tests."""
    path = tmp_path_factory.mktemp("demo") / "demo.csv"
    write_demo_csv(path, products=3, stores=2, days=120, seed=5)
    return path.read_bytes()
