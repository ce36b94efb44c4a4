"""One declaration of a forecast request (restock.query): the API, the CLI and the README
all follow it, and the bounds that used to disagree between them now agree."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from restock.cli import cli
from restock.config import Settings
from restock.cli import forecast as _register  # noqa: F401
from restock.query import bounds_text, fields, markdown_table
from restock.web import create_app

ROOT = Path(__file__).resolve().parents[2]

#: each was accepted by one door and refused by another, or refused with different statuses
OUT_OF_RANGE = [
    ({"cover_days": 0}, "cover_days"),  # was 400 from the inventory code
    ({"cover_days": -1}, "cover_days"),  # was 422 from the schema
    ({"service_level": 0.99995}, "service_level"),  # schema said < 1, inventory <= 0.9999
    ({"service_level": 0.5}, "service_level"),
    ({"lead_time_days": 3650.5}, "lead_time_days"),
    ({"holding_cost": 2.0}, "body"),  # EOQ needs both costs: was a 400
    ({"history": -1}, "history"),
    ({"days": 10, "periods": 2}, "body"),
]


@pytest.fixture(scope="module")
def trained_app(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app over a copy of the trained home for the module: these tests only read."""
    home = tmp_path_factory.mktemp("declaration") / "home"
    shutil.copytree(trained_home, home, ignore=shutil.ignore_patterns("jobs.lock"))
    app = create_app(Settings.from_env({"home": home}, environ={}))
    app.config["TESTING"] = True
    yield app
    app.extensions["restock"].close()


def _post(app: Flask, body: dict[str, Any]) -> Any:
    return app.test_client().post("/forecast", json=body)


def _cli_args(body: dict[str, Any]) -> list[str]:
    flags = {"lead_time_days": "--lead-time", "product_id": "--product"}
    args: list[str] = []
    for name, value in body.items():
        args += [flags.get(name, "--" + name.replace("_", "-")), str(value)]
    return args


@pytest.mark.parametrize(("body", "field"), OUT_OF_RANGE)
def test_the_api_and_the_cli_refuse_the_same_values_with_the_same_message(
        trained_app: Flask, body: dict[str, Any], field: str) -> None:
    response = _post(trained_app, body)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request"
    assert (error["details"]["problems"][0]["loc"] or ["body"])[0] == field

    home = trained_app.extensions["restock"].settings.home
    result = CliRunner().invoke(cli, ["--home", str(home), "forecast", *_cli_args(body)])
    assert result.exit_code == 2, result.output
    assert f"error: {error['message']}" in result.output


@pytest.mark.parametrize("body", [
    {"service_level": 0.9999},  # the declared maximum: the inventory code used to refuse it
    {"lead_time_days": 3650, "review_period_days": 3650},  # the UIs used to stop at 365
    {"cover_days": 0.5, "history": 0},
])
def test_values_at_the_declared_bounds_are_answered(trained_app: Flask,
                                                    body: dict[str, Any]) -> None:
    response = _post(trained_app, {"days": 7, **body})
    assert response.status_code == 200, response.get_json()
    inventory = response.get_json()["inventory"]
    if "service_level" in body:
        assert inventory["service_level"] == body["service_level"]


def test_history_is_a_request_option_with_a_small_default(trained_app: Flask) -> None:
    default = _post(trained_app, {"days": 7}).get_json()
    assert len(default["history"]) == fields()["history"].default
    more = _post(trained_app, {"days": 7, "history": 60}).get_json()
    assert len(more["history"]) == 60
    assert more["history"][-28:] == default["history"]
    assert _post(trained_app, {"days": 7, "history": 0}).get_json()["history"] == []
    # warnings judge the same recent window whatever history the answer carries
    assert more["warnings"] == default["warnings"]


def test_openapi_publishes_the_declared_fields_defaults_and_bounds(trained_app: Flask) -> None:
    spec = trained_app.test_client().get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    request = next(v for k, v in schemas.items() if k.startswith("ForecastRequest"))
    assert set(request["properties"]) == set(fields())
    assert request["additionalProperties"] is False
    words = {"exclusiveMinimum": "<", "minimum": "<=", "exclusiveMaximum": "<", "maximum": "<="}
    for name, field in fields().items():
        published = request["properties"][name]
        options = published.get("anyOf", [published])
        number = next((o for o in options if o.get("type") in ("number", "integer")), None)
        if number is None:
            continue
        low = next((f"{number[k]:g} {words[k]} " for k in ("exclusiveMinimum", "minimum")
                    if k in number), "")
        high = next((f" {words[k]} {number[k]:g}" for k in ("exclusiveMaximum", "maximum")
                     if k in number), "")
        assert f"{low}x{high}" == bounds_text(field), name
        assert published.get("default") == field.default, name


def test_the_readme_table_is_the_declaration() -> None:
    assert markdown_table() in (ROOT / "README.md").read_text(), \
        "README's request table is out of date: paste `python -m restock.query` into it"


def test_cli_options_show_the_declared_defaults_and_bounds() -> None:
    result = CliRunner().invoke(cli, ["forecast", "--help"], terminal_width=400)
    assert result.exit_code == 0
    assert "--service-level FLOAT" in result.output
    assert "[0.5 < x <= 0.9999]" in result.output
    assert "--history INTEGER" in result.output
