"""The app factory imports the blueprints, never the other way round (``web/services.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import restock.web

WEB = Path(restock.web.__file__).parent
#: the factory itself and the package's re-export of it
FACTORY = {"__init__.py", "app.py"}


def imports_of_the_factory(source: str) -> list[str]:
    """The import statements of ``source`` that load ``restock.web.app``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("restock.web.app")]
        elif isinstance(node, ast.ImportFrom) and node.module == "restock.web.app":
            found.append(node.module)
        elif isinstance(node, ast.ImportFrom) and node.module == "restock.web":
            # the package's names come from the factory too (create_app)
            found += [f"restock.web.{a.name}" for a in node.names
                      if a.name in ("app", *restock.web.__all__)]
    return found


def test_the_check_sees_every_way_of_importing_the_factory() -> None:
    assert imports_of_the_factory(
        "from restock.web.app import services\nimport restock.web.app\n"
        "from restock.web import app\ndef f():\n    from restock.web import create_app\n"
    ) == ["restock.web.app", "restock.web.app", "restock.web.app", "restock.web.create_app"]
    assert imports_of_the_factory("from restock.web.services import services\n") == []


@pytest.mark.parametrize("module", sorted(p.name for p in WEB.glob("*.py")
                                          if p.name not in FACTORY))
def test_no_web_module_imports_the_app_factory(module: str) -> None:
    assert imports_of_the_factory((WEB / module).read_text(encoding="utf-8")) == []
