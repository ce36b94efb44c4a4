"""Real-browser fixtures: Debian's Chromium driven by Python Playwright against a real
``restock serve`` subprocess, and the built React demo served from a second origin.

Chromium (/usr/bin/chromium, or RESTOCK_CHROMIUM), the ``playwright`` package and the demo
build (``npm run build:demo`` -> frontend/dist-demo) are looked for once; when one is
missing the tests are skipped with the reason printed, and fail instead under
RESTOCK_REQUIRE_SERVICES=1 (CI). Never ``playwright install``: the browser is Debian's.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = ROOT / "frontend" / "dist-demo"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = os.environ.get("RESTOCK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# The real-server helper of the web tests (gunicorn subprocess on a free port, temp home).
sys.path.insert(0, str(ROOT / "tests" / "web"))
from test_serve import Server  # noqa: E402


def _root_conftest():
    # tests/conftest.py, loaded under its own name: a plain `import conftest` here would
    # find this very file (pytest imports every rootless conftest as "conftest").
    spec = importlib.util.spec_from_file_location("restock_tests_root_conftest",
                                                  ROOT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


service_unavailable = _root_conftest().service_unavailable  # skip here, fail in CI


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; repeated here so `--strict-markers` never trips.
    config.addinivalue_line("markers", "e2e: real-browser tests (Chromium via Playwright)")


class StaticSite:
    """A directory served over HTTP on a free port, in a thread: a second origin."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[object]:
    """One headless Chromium for the session (pages get fresh contexts)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        service_unavailable("the Python package playwright (pip install -e '.[dev]')", error)
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        service_unavailable(f"Chromium at {CHROMIUM} (apt-get install chromium)",
                            FileNotFoundError(CHROMIUM))
    manager = sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as error:  # noqa: BLE001 - any launch failure means "no browser here"
        manager.stop()
        service_unavailable(f"Chromium at {CHROMIUM}", error)
    yield browser
    browser.close()
    manager.stop()


@pytest.fixture(scope="session")
def second_origin() -> Iterator[StaticSite]:
    """frontend/dist-demo served from its own origin (its port exists even without a build,
    so the API server can list it in RESTOCK_CORS_ORIGINS before anything is checked)."""
    site = StaticSite(DEMO_DIR)
    yield site
    site.stop()


@pytest.fixture
def demo_site(second_origin: StaticSite) -> StaticSite:
    """The React demo page, built by `make frontend` (npm run build:demo)."""
    if not (DEMO_DIR / "index.html").is_file():
        service_unavailable(f"the React demo build {DEMO_DIR} (cd frontend && npm ci && "
                            "npm run build:demo, or make frontend)",
                            FileNotFoundError(DEMO_DIR / "index.html"))
    return second_origin


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/e2e/, emptied once per session (git-ignored)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def restock_server(tmp_path_factory: pytest.TempPathFactory,
                   second_origin: StaticSite) -> Iterator[Server]:
    """`restock serve` on a free port with an empty home; the demo's origin allowed by CORS."""
    home = tmp_path_factory.mktemp("e2e") / "home"
    server = Server(home, RESTOCK_CORS_ORIGINS=second_origin.origin,
                    RESTOCK_RATELIMIT_DEFAULT="100000 per minute")
    yield server
    server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each phase's report on the item, so fixtures can tell a failed test."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)
