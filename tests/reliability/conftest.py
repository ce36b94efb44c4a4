"""Fixtures of the reliability tests: one tiny home trained once per session (copied per
test), and Redis for the Celery crash test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from reltools import FAST_SETTINGS, demo_frame, root_conftest


@pytest.fixture(scope="session")
def trained_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home (SQLite) with 3 products x 2 stores x 90 days and one active version, every
    member refitted (so every kind of artifact is there to audit and to damage)."""
    home = tmp_path_factory.mktemp("reliability-base") / "home"
    trained = root_conftest().train_home(home, demo_frame(), **FAST_SETTINGS,
                                         refit_members="all")
    trained.store.close()
    return home, trained.version


@pytest.fixture
def trained_copy(trained_base: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A private copy of the trained home: the test may crash, upload and retrain in it."""
    source, version = trained_base
    home = tmp_path / "home"
    shutil.copytree(source, home, ignore=shutil.ignore_patterns("jobs.lock"))
    return home, version


@pytest.fixture(scope="session")
def redis_client() -> Iterator[object]:
    import redis

    conf = root_conftest()
    client = redis.Redis.from_url(conf.REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        conf.service_unavailable(f"Redis at {conf.REDIS_URL}", error)
    yield client
    client.close()
