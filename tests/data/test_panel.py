"""From stored rows to the regular, zero-filled panel the models fit."""

from __future__ import annotations

import pandas as pd
import pytest

from restock.data.panel import TOTAL_ID, build_panel, horizon_steps, model_horizon, snap_to_calendar


def rows(records: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=["date", "product_id", "store_id", "quantity"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["category"] = "c"
    return frame


def test_gaps_are_zero_filled_up_to_the_last_date_and_total_sums() -> None:
    panel = build_panel(rows([("2024-01-01", "A", "", 1), ("2024-01-03", "A", "", 2),
                              ("2024-01-02", "B", "S", 3), ("2024-01-04", "B", "", 4)]))
    assert panel.freq == "D"
    ids = panel.series.set_index(["product_id", "store_id"])["unique_id"]
    series = {k: g.set_index("ds")["y"].tolist() for k, g in panel.long.groupby("unique_id")}
    assert series[ids[("A", "")]] == [1, 0, 2, 0]
    assert series[ids[("B", "S")]] == [3, 0, 0]
    assert series[ids[("B", "")]] == [4]
    assert series[TOTAL_ID] == [1, 3, 2, 4]
    a = panel.series.set_index("unique_id").loc[ids[("A", "")]]
    assert a["gap_share"] == pytest.approx(0.5) and a["n_obs"] == 4
    assert list(panel.long.columns) == ["unique_id", "ds", "y"]


def test_weekly_rows_are_snapped_to_the_dataset_weekday() -> None:
    dates = pd.date_range("2024-01-05", periods=6, freq="W-FRI").strftime("%Y-%m-%d")
    records = [(d, "A", "", float(i)) for i, d in enumerate(dates)]
    records.append(("2024-01-10", "A", "", 10.0))  # a Wednesday belongs to Friday 12th
    panel = build_panel(rows(records))
    assert panel.freq == "W-FRI"
    a = panel.long[panel.long["unique_id"] != TOTAL_ID]
    assert (a["ds"].dt.dayofweek == 4).all()
    assert a.set_index("ds").loc["2024-01-12", "y"] == 11.0


def test_month_start_snapping() -> None:
    snapped = snap_to_calendar(pd.Series(pd.to_datetime(["2024-01-01", "2024-01-15"])), "MS")
    assert snapped.tolist() == [pd.Timestamp("2024-01-01")] * 2


@pytest.mark.parametrize("days, freq, steps", [(365, "D", 365), (365, "W-FRI", 53),
                                               (365, "MS", 12), (1, "MS", 1), (14, "W-MON", 2)])
def test_horizon_steps(days: int, freq: str, steps: int) -> None:
    assert horizon_steps(days, freq) == steps


@pytest.mark.parametrize(("freq", "max_days", "steps"), [
    ("D", 0, 365), ("W-SUN", 0, 104), ("MS", 0, 24), ("ME", 0, 24),  # by frequency
    ("D", 60, 60), ("W-MON", 60, 9), ("MS", 800, 27),  # RESTOCK_MAX_HORIZON_DAYS overrides
])
def test_model_horizon_by_frequency_unless_overridden(freq: str, max_days: int, steps: int) -> None:
    assert model_horizon(freq, max_days) == steps
