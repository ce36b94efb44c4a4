"""From stored rows to the regular, zero-filled panel the models fit."""

from __future__ import annotations

import pandas as pd
import pytest

from restock.data.panel import TOTAL_ID, build_panel, snap_to_calendar


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


def test_a_series_silent_for_over_a_year_is_marked_discontinued_and_still_summable() -> None:
    days = pd.date_range("2023-01-01", "2024-12-31", freq="D")
    records = [(f"{d:%Y-%m-%d}", "ACTIVE", "", 2.0) for d in days]
    records += [(f"{d:%Y-%m-%d}", "GONE", "", 1.0) for d in days[:90]]  # last sale 2023-03-31
    records += [(f"{d:%Y-%m-%d}", "RECENT", "", 1.0) for d in days[:100]]
    records += [("2024-06-01", "RECENT", "", 5.0)]  # quiet for 7 months: not discontinued
    records += [(f"{d:%Y-%m-%d}", "NEVER", "", 0.0) for d in days[:10]]  # recorded, never sold
    panel = build_panel(rows(records))
    info = panel.series.set_index("product_id")
    assert info["discontinued"].to_dict() == {"ACTIVE": False, "GONE": True, "RECENT": False,
                                              "NEVER": True, "": False}
    assert info.loc["GONE", "last_sale"] == pd.Timestamp("2023-03-31")
    assert info.loc["RECENT", "last_sale"] == pd.Timestamp("2024-06-01")
    assert info.loc["NEVER", "last_sale"] == pd.Timestamp("2023-01-10")
    # the zeros still run to the end: every forecast starts on the same date
    ends = panel.long.groupby("unique_id")["ds"].max()
    assert set(ends) == {pd.Timestamp("2024-12-31")}
    series = panel.long[panel.long["unique_id"] != TOTAL_ID].groupby("ds")["y"].sum()
    total = panel.long[panel.long["unique_id"] == TOTAL_ID].set_index("ds")["y"]
    pd.testing.assert_series_equal(series, total, check_names=False)


def test_weekly_discontinued_threshold_is_a_year_of_weeks() -> None:
    weeks = pd.date_range("2022-01-07", periods=150, freq="W-FRI")
    records = [(f"{d:%Y-%m-%d}", "A", "", 1.0) for d in weeks]
    records += [(f"{d:%Y-%m-%d}", "B", "", 1.0) for d in weeks[:97]]  # silent 53 weeks
    records += [(f"{d:%Y-%m-%d}", "C", "", 1.0) for d in weeks[:98]]  # silent 52 weeks
    info = build_panel(rows(records)).series.set_index("product_id")
    assert info["discontinued"].to_dict() == {"A": False, "B": True, "C": False, "": False}


def test_uploaded_prices_follow_the_panel_and_hold_until_they_change() -> None:
    frame = rows([("2024-01-01", "A", "", 2.0), ("2024-01-03", "A", "", 1.0),
                  ("2024-01-02", "B", "", 4.0)]).assign(price=[5.0, 6.0, None])
    panel = build_panel(frame)
    uid = panel.series.set_index("product_id").loc["A", "unique_id"]
    a = panel.long[panel.long["unique_id"] == uid]
    assert a["price"].tolist() == [5.0, 5.0, 6.0]  # the zero-filled day keeps the last price
    assert build_panel(rows([("2024-01-01", "A", "", 2.0)])).long.columns.tolist() == [
        "unique_id", "ds", "y"]  # no price uploaded: no column
