"""The forecast subcommand through click's runner, on the session's trained home."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from restock.cli import cli
from restock.cli import forecast as _register  # noqa: F401
from tests.conftest import Trained


def test_plot_into_a_missing_folder_creates_it(trained: Trained, tmp_path: Path) -> None:
    png = tmp_path / "charts" / "2026" / "p1.png"
    result = CliRunner().invoke(
        cli, ["--home", str(trained.settings.home), "forecast", "--days", "14",
              "--plot", str(png)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert png.read_bytes().startswith(b"\x89PNG")
