"""Fixtures of the scale-out tests: Redis (skipped only when truly unreachable), demo
data, and a private deployment per test (see ``cluster``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from cluster import REDIS_URL, Topology, service_unavailable
from restock.data.demo import write_demo_csv
from restock.data.store import SalesStore


#: characters of each process log a failing test's report carries (its end)
LOG_TAIL = 20_000


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failing test's report carries the logs of its deployment's processes: a server
    that died between two requests otherwise leaves only "connection refused" behind."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for name, deployment in getattr(item, "funcargs", {}).items():
        if isinstance(deployment, Topology):
            for log in sorted(deployment.root.glob("*.log")):
                text = log.read_text(errors="replace")
                report.sections.append((f"{name}: {log.name}", text[-LOG_TAIL:]))


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        service_unavailable(f"Redis at {REDIS_URL}", error)
    yield client
    client.close()


@pytest.fixture(scope="session")
def demo_csv(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """3 products x 2 stores x 120 days: a retrain takes seconds."""
    path = tmp_path_factory.mktemp("demo") / "demo.csv"
    write_demo_csv(path, products=3, stores=2, days=120, seed=5)
    return path.read_bytes()


@pytest.fixture
def topology(tmp_path: Path, redis_client: redis.Redis) -> Iterator[Topology]:
    """A private deployment for one test (started by the test as it needs)."""
    deployment = Topology(tmp_path, redis_client, RESTOCK_JOB_LOCK_TTL="3")
    yield deployment
    deployment.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis_client: redis.Redis,
            postgres_admin: sa.Engine) -> Iterator[Topology]:
    """The documented topology, shared by a module's tests: PostgreSQL for the data (a
    schema of its own), Redis, ``restock serve --workers 2`` and one ``restock worker``."""
    schema = "t_" + uuid.uuid4().hex[:12]
    with postgres_admin.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    url = postgres_admin.url.render_as_string(hide_password=False)
    separator = "&" if "?" in url else "?"
    database_url = f"{url}{separator}options=-csearch_path%3D{schema}"
    deployment = Topology(tmp_path_factory.mktemp("cluster"), redis_client,
                          RESTOCK_DATABASE_URL=database_url)
    # create the tables once, before several processes race to create them on first start
    SalesStore(database_url, deployment.home / "uploads").close()
    try:
        deployment.start_server(workers=2)
        deployment.start_worker(concurrency=2)
        yield deployment
    finally:
        deployment.close()
        with postgres_admin.begin() as conn:
            conn.execute(sa.text(f"drop schema {schema} cascade"))
