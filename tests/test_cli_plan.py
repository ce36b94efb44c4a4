"""The plan subcommand: options from the declaration, the service's rows, bad input."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from restock.cli import cli
from restock.cli import plan as _register  # noqa: F401
from restock.query import ForecastQuery, InventoryPolicy
from restock.serving import ForecastService
from restock.serving.plans import COLUMNS
from tests.conftest import Trained


def run(trained: Trained, *args: str):
    return CliRunner().invoke(cli, ["--home", str(trained.settings.home), "plan", *args],
                              catch_exceptions=False)


def test_csv_and_json_are_the_service_plan(trained: Trained) -> None:
    args = ["--store", "S01", "--lead-time", "10", "--service-level", "0.97"]
    expected = ForecastService(trained.settings, trained.store, trained.registry).plan(
        ForecastQuery(store_id=["S01"]), InventoryPolicy(lead_time_days=10, service_level=0.97))
    as_csv = run(trained, *args, "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    assert as_csv.output == expected.csv()
    assert list(csv.DictReader(io.StringIO(as_csv.output)).fieldnames) == list(COLUMNS)
    as_json = json.loads(run(trained, *args, "--format", "json").output)
    assert as_json["rows"] == expected.records() and as_json["series"] == 3
    table = run(trained, *args)
    assert table.exit_code == 0 and "reorder pt" in table.output


def test_options_come_from_the_plan_fields(trained: Trained) -> None:
    help_text = run(trained, "--help").output
    assert "--review-period" in help_text and "--cover-days" in help_text
    assert "--on-hand" not in help_text and "--history" not in help_text


def test_bad_input_names_the_problem(trained: Trained) -> None:
    out_of_range = run(trained, "--service-level", "1.5")
    assert out_of_range.exit_code != 0 and "service_level" in out_of_range.output
    unknown = run(trained, "--product", "P00O1")
    assert unknown.exit_code != 0 and "P0001" in unknown.output
