"""The data subcommands through click's runner: exit codes, JSON summaries, stderr problems."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from restock.cli import cli
from restock.cli import data as _register  # noqa: F401


@pytest.fixture
def run(tmp_path: Path):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--home", str(tmp_path / "home"), *args],
                             catch_exceptions=False)

    return invoke


def test_ingest_prints_summary_then_series_and_export(run, tmp_path: Path) -> None:
    csv = tmp_path / "s.csv"
    csv.write_text("date,sku,qty,colour\n2024-01-01,A,3,red\n2024-01-02,A,4,blue\n")
    result = run("ingest", str(csv))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("rows_read", "inserted", "updated", "total_rows", "series")} \
        == {"rows_read": 2, "inserted": 2, "updated": 0, "total_rows": 2, "series": 1}
    assert "ignored columns: colour" in result.stderr
    listed = json.loads(run("series", "--format", "json").stdout)
    assert listed[0]["product_id"] == "A" and listed[0]["rows"] == 2
    out = tmp_path / "out.csv"
    assert run("export", str(out)).exit_code == 0
    assert out.read_text().splitlines()[1] == "2024-01-01,A,,,3,,,"


def test_ingest_items_replaces_the_settings_or_names_the_bad_cell(run, tmp_path: Path) -> None:
    sales = tmp_path / "s.csv"
    sales.write_text("date,product_id,store_id,quantity,on_order\n2024-01-01,A,S1,3,4\n")
    assert run("ingest", str(sales)).exit_code == 0
    items = tmp_path / "items.csv"
    items.write_text("product_id,moq,case_pack\nA,10,6\n")
    result = run("ingest-items", str(items))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["upload"]["rows"] == 1
    listed = json.loads(run("items", "--format", "json").stdout)["items"]
    assert [(i["product_id"], i["store_id"], i["moq"], i["order_multiple"]) for i in listed] \
        == [("A", None, 10, 6)]  # as GET /items has it: null, every store
    assert run("items", "--format", "csv").stdout.splitlines()[1].startswith("A,,")
    items.write_text("product_id,moq\nA,-2\nZ,1\n")
    result = run("ingest-items", str(items))
    assert result.exit_code == 2
    assert "line 2, column moq" in result.stderr and "line 3, column product_id" in result.stderr
    assert json.loads(run("items", "--format", "json").stdout)["items"] == listed


def test_bad_file_exits_2_with_problems_and_stores_nothing(run, tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("date,product_id,quantity\n2024-01-01,A,3\n2024-02-30,A,-1\n")
    result = run("ingest", str(csv))
    assert result.exit_code == 2
    assert "line 3, column date: impossible date '2024-02-30'" in result.stderr
    assert "line 3, column quantity: negative value -1" in result.stderr
    assert json.loads(run("series", "--format", "json").stdout) == []


def test_skip_and_duplicate_options(run, tmp_path: Path) -> None:
    csv = tmp_path / "mixed.csv"
    csv.write_text("date,product_id,quantity\n2024-01-01,A,3\n2024-01-01,A,5\n2024-01-02,A,x\n")
    result = run("ingest", str(csv), "--on-error", "skip", "--on-duplicate", "last")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["skipped"] == 1
    assert "skipped line 4, column quantity" in result.stderr


def test_demo_data_then_ingest(run, tmp_path: Path) -> None:
    out = tmp_path / "demo.csv"
    result = run("demo-data", str(out), "--products", "3", "--stores", "2", "--days", "20")
    assert result.exit_code == 0 and "wrote 120 rows" in result.stdout
    frame = pd.read_csv(out)
    assert {"date", "product_id", "store_id", "category", "quantity", "price",
            "on_hand"} <= set(frame.columns)
    assert json.loads(run("ingest", str(out)).stdout)["inserted"] == 120


# -- commands that write a file create its folder (issue 11) --------------------------------

def test_export_and_demo_data_create_missing_folders(run, tmp_path: Path) -> None:
    demo = tmp_path / "fresh" / "restock-data" / "demo.csv"
    result = run("demo-data", str(demo), "--products", "1", "--stores", "1", "--days", "5")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(demo)) == 5
    assert run("ingest", str(demo)).exit_code == 0
    out = tmp_path / "missing" / "dir" / "x.csv"
    result = run("export", str(out))
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 6


def test_an_output_folder_that_cannot_be_made_is_a_clear_error(run, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    result = run("export", str(tmp_path / "taken" / "x.csv"))
    assert result.exit_code == 2
    assert f"error: cannot create the folder '{tmp_path / 'taken'}'" in result.stderr
    assert "Traceback" not in result.output


def test_ingest_names_utf16_and_far_off_dates(run, tmp_path: Path) -> None:
    wide = tmp_path / "excel.csv"
    wide.write_bytes("date,product_id,quantity\n2024-01-01,A,3\n".encode("utf-16"))
    result = run("ingest", str(wide))
    assert result.exit_code == 2
    assert "error: the file looks like UTF-16 (little-endian) text; save it as UTF-8" \
        in result.stderr
    future = tmp_path / "future.csv"
    future.write_text("date,product_id,quantity\n2024-01-01,A,3\n9999-12-31,A,1\n")
    result = run("ingest", str(future))
    assert result.exit_code == 2
    assert "line 3, column date: date '9999-12-31' is after the latest allowed date" \
        in result.stderr
    assert json.loads(run("series", "--format", "json").stdout) == []
