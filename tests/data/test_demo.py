"""The demo generator: the shape, invariants and retail patterns other modules rely on.

Sizes are small (a few thousand rows per frame) so the file runs in about a second; the
1,000 x 1,000 timing is a measurement, not a test.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from restock.data.demo import (COLUMNS, DEFAULT_END, generate_demo_sales, inject_stockouts,
                               write_demo_csv)
from restock.errors import InvalidParameterError


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    """One store, a full year: enough for weekly, yearly and intermittent patterns."""
    return generate_demo_sales(products=80, stores=1, days=365)


def test_shape_columns_and_dtypes() -> None:
    frame = generate_demo_sales(products=12, stores=3, days=40)
    assert len(frame) == 12 * 3 * 40
    assert tuple(frame.columns) == COLUMNS
    assert frame["date"].dtype == np.dtype("datetime64[ns]")
    assert frame["price"].dtype == np.float64
    assert frame["quantity"].dtype == np.int64
    assert frame["on_hand"].dtype == np.int64
    for column in ("product_id", "store_id", "category"):
        assert all(isinstance(value, str) for value in frame[column])
    assert frame["product_id"].str.fullmatch(r"P\d{4}").all()
    assert frame["store_id"].str.fullmatch(r"S\d{2}").all()
    assert frame["product_id"].nunique() == 12
    assert frame["store_id"].nunique() == 3


def test_defaults_are_reproducible_daily_dates_ending_at_the_fixed_end() -> None:
    frame = generate_demo_sales()
    assert len(frame) == 50 * 2 * 730
    dates = pd.DatetimeIndex(frame["date"].unique()).sort_values()
    assert dates[-1] == pd.Timestamp(DEFAULT_END) == pd.Timestamp(2026, 10, 31)
    assert len(dates) == 730
    assert (np.diff(dates.values) == np.timedelta64(1, "D")).all()


def test_end_date_is_honoured() -> None:
    frame = generate_demo_sales(products=2, stores=1, days=10, end=date(2024, 3, 1))
    assert frame["date"].min() == pd.Timestamp(2024, 2, 21)
    assert frame["date"].max() == pd.Timestamp(2024, 3, 1)


def test_no_negatives_and_positive_prices(year: pd.DataFrame) -> None:
    assert (year["quantity"] >= 0).all()
    assert (year["on_hand"] >= 0).all()
    assert (year["price"] > 0).all()
    assert not year.isna().any().any()


def test_keys_unique_and_rows_sorted_by_series_then_date(year: pd.DataFrame) -> None:
    frame = generate_demo_sales(products=5, stores=3, days=30)
    assert not frame.duplicated(["date", "product_id", "store_id"]).any()
    ordered = frame.sort_values(["product_id", "store_id", "date"], kind="stable")
    assert ordered.index.equals(frame.index)
    assert not year.duplicated(["date", "product_id", "store_id"]).any()


def test_same_seed_same_frame_other_seed_different() -> None:
    first = generate_demo_sales(products=10, stores=2, days=90, seed=3)
    again = generate_demo_sales(products=10, stores=2, days=90, seed=3)
    other = generate_demo_sales(products=10, stores=2, days=90, seed=4)
    pd.testing.assert_frame_equal(first, again)
    assert not first["quantity"].equals(other["quantity"])
    assert not first["price"].equals(other["price"])


def test_each_product_has_one_category_and_several_categories_exist(year: pd.DataFrame) -> None:
    per_product = year.groupby("product_id")["category"].nunique()
    assert (per_product == 1).all()
    assert year["category"].nunique() >= 4


def test_weekly_seasonality_weekend_peak(year: pd.DataFrame) -> None:
    by_weekday = year.groupby(year["date"].dt.dayofweek)["quantity"].mean()
    assert by_weekday.max() / by_weekday.min() > 1.2
    assert by_weekday.idxmax() in (4, 5, 6)  # Friday to Sunday


def test_yearly_seasonality_garden_sells_in_summer(year: pd.DataFrame) -> None:
    garden = year[year["category"] == "Garden"]
    assert not garden.empty
    month = garden["date"].dt.month
    summer = garden.loc[month.isin([5, 6, 7]), "quantity"].mean()
    winter = garden.loc[month.isin([11, 12, 1]), "quantity"].mean()
    assert summer > 2 * winter


def test_intermittent_and_regular_series_both_present(year: pd.DataFrame) -> None:
    zero_share = (year["quantity"] == 0).groupby(year["product_id"]).mean()
    assert (zero_share > 0.5).mean() >= 0.1  # slow movers: mostly zero days
    assert (zero_share < 0.1).mean() >= 0.2  # and plenty of everyday sellers


def test_promotions_lower_price_and_lift_sales(year: pd.DataFrame) -> None:
    regular_price = year.groupby("product_id")["price"].transform("max")
    on_promo = year["price"] < regular_price
    assert 0.03 < on_promo.mean() < 0.3
    relative = year["quantity"] / year.groupby("product_id")["quantity"].transform("mean")
    assert relative[on_promo].mean() > 1.2 * relative[~on_promo].mean()


def test_stock_varies_and_occasionally_runs_out(year: pd.DataFrame) -> None:
    distinct = year.groupby("product_id")["on_hand"].nunique()
    assert (distinct > 5).mean() > 0.9
    stockout_days = (year["on_hand"] == 0).mean()
    assert 0.0 < stockout_days < 0.1


def test_write_demo_csv_writes_canonical_csv(tmp_path: Path) -> None:
    out = tmp_path / "demo.csv"
    rows = write_demo_csv(out, products=4, stores=2, days=15, seed=11)
    lines = out.read_text().splitlines()
    assert rows == 4 * 2 * 15 == len(lines) - 1
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1].split(",")[0] == "2026-10-17"
    read = pd.read_csv(out, parse_dates=["date"])
    expected = generate_demo_sales(products=4, stores=2, days=15, seed=11)
    pd.testing.assert_frame_equal(read, expected)


@pytest.mark.parametrize(
    "kwargs", [{"products": 0}, {"stores": -1}, {"days": 0}, {"days": 2.5}]
)
def test_invalid_sizes_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidParameterError):
        generate_demo_sales(**kwargs)  # type: ignore[arg-type]


def test_injected_stockouts_are_runs_of_empty_shelves_and_the_rest_is_unchanged() -> None:
    base = generate_demo_sales(products=6, stores=2, days=200, seed=4)
    hit = generate_demo_sales(products=6, stores=2, days=200, seed=4, stockouts=0.5)
    again = generate_demo_sales(products=6, stores=2, days=200, seed=4, stockouts=0.5)
    pd.testing.assert_frame_equal(hit, again)
    assert hit.dtypes.equals(base.dtypes)
    changed = (hit["on_hand"] != base["on_hand"]) | (hit["quantity"] != base["quantity"])
    keys = ["product_id", "store_id"]
    assert hit.loc[changed, keys].drop_duplicates().shape[0] == 6  # half the 12 series
    assert (hit.loc[changed, "on_hand"] == 0).all()
    assert (hit["quantity"] <= base["quantity"]).all()
    assert (hit.loc[changed & (hit["quantity"] > 0), "quantity"]
            < base.loc[changed & (hit["quantity"] > 0), "quantity"]).all()
    pd.testing.assert_frame_equal(hit.loc[~changed], base.loc[~changed])


def test_injection_works_without_stock_figures_and_spares_the_hold_out() -> None:
    rows = generate_demo_sales(products=4, stores=1, days=120, seed=2).drop(columns="on_hand")
    cut = rows["date"].max() - pd.Timedelta(days=27)
    out = inject_stockouts(rows, 1.0, seed=5, runs=3, length=(2, 4), before=cut)
    empty = out["on_hand"] == 0
    assert out.loc[~empty, "on_hand"].isna().all()
    assert out.loc[empty, "date"].max() < cut
    per_series = out[empty].groupby("product_id").size()
    assert len(per_series) == 4 and per_series.between(2, 12).all()
    with pytest.raises(InvalidParameterError):
        inject_stockouts(rows, 1.5)
