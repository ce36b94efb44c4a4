"""Stockouts: censored periods are found, imputed for training and never scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from restock.data import censoring
from restock.data.panel import TOTAL_ID, build_panel
from restock.models.base import no_progress
from restock.models.ensemble import EnsembleForecaster
from restock.models.statistical import SeasonalNaiveForecaster

START = pd.Timestamp("2024-01-01")  # a Monday
OUT = (24, 25, 26)  # days of product A that end with no stock


def sales(days: int = 56, out: tuple[int, ...] = OUT) -> pd.DataFrame:
    """A: 10 + weekday units a day, stock recorded, out of stock on ``out`` (2 sold on the
    first of them, then nothing); B: 3 a day, no stock figures."""
    records = []
    for day in range(days):
        quantity, stock = 10.0 + day % 7, 50.0
        if day in out:
            quantity, stock = (2.0 if day == out[0] else 0.0), 0.0
        records.append((START + pd.Timedelta(days=day), "A", "", "c", quantity, stock))
        records.append((START + pd.Timedelta(days=day), "B", "", "c", 3.0, np.nan))
    return pd.DataFrame(records, columns=["date", "product_id", "store_id", "category",
                                          "quantity", "on_hand"])


def series_of(panel, product: str) -> pd.DataFrame:
    uid = panel.series.set_index("product_id").loc[product, "unique_id"]
    return panel.long[panel.long["unique_id"] == uid].set_index("ds")


def test_stockout_days_train_on_imputed_demand_and_keep_their_sales() -> None:
    panel = build_panel(sales())
    a, b = series_of(panel, "A"), series_of(panel, "B")
    out_days = [START + pd.Timedelta(days=d) for d in OUT]
    assert a.index[a["censored"]].tolist() == out_days
    # same weekday 1 and 2 weeks either side, all uncensored: exactly 10 + weekday
    assert a.loc[out_days, "y"].tolist() == [10.0 + d % 7 for d in OUT]
    assert a.loc[out_days, "sales"].tolist() == [2.0, 0.0, 0.0]
    others = a.drop(index=out_days)
    assert (others["y"] == others["sales"]).all() and not others["censored"].any()
    assert not b["censored"].any()  # no stock figures: nothing is known to be censored
    stockouts = panel.series.set_index("product_id")["stockouts"]
    assert stockouts["A"] == 3 and stockouts["B"] == 0
    assert panel.series.set_index("unique_id").loc[TOTAL_ID, "stockouts"] == 3
    total = panel.long[panel.long["unique_id"] == TOTAL_ID].set_index("ds")
    assert total.loc[out_days, "y"].tolist() == [13.0 + d % 7 for d in OUT]
    assert total.loc[out_days, "sales"].tolist() == [5.0, 3.0, 3.0]
    history = panel.history().set_index(["unique_id", "ds"])["y"]
    assert history[(a["unique_id"].iat[0], out_days[1])] == 0.0  # what was really sold


def test_without_stock_figures_or_censoring_the_panel_is_unchanged() -> None:
    plain = build_panel(sales().drop(columns="on_hand"))
    ignored = build_panel(sales(), censor=False)
    assert list(plain.long.columns) == ["unique_id", "ds", "y"]
    pd.testing.assert_frame_equal(plain.long, ignored.long)
    assert (ignored.series["stockouts"] == 0).all()
    assert series_of(ignored, "A").loc[START + pd.Timedelta(days=25), "y"] == 0.0


def test_a_weekly_period_is_censored_by_its_last_stock_figure() -> None:
    rows = sales(days=35, out=(6,))  # out on Sunday 7 Jan: the week's last day
    rows.loc[(rows["product_id"] == "A") & (rows["date"] == START + pd.Timedelta(days=9)),
             "on_hand"] = 0.0  # out on Wednesday 10 Jan, restocked the next day: not censored
    panel = build_panel(rows, "W-SUN")
    a = series_of(panel, "A")
    assert a.index[a["censored"]].tolist() == [pd.Timestamp("2024-01-07")]


def test_imputation_falls_back_and_never_goes_below_the_sales() -> None:
    values = np.array([[4.0, 1.0], [6.0, 9.0], [8.0, 5.0], [np.nan, 7.0]])
    censored = np.array([[False, False], [True, True], [False, False], [True, False]])
    filled = censoring.impute_demand(values, censored, season=4)  # no same-season neighbour
    # local mean of the uncensored periods within a season: (4 + 8) / 2 = 6; B sold 9 > (1+5+7)/3
    assert filled[1].tolist() == [6.0, 9.0]
    assert np.isnan(filled[3, 0])  # before the start stays missing
    assert censoring.impute_demand(np.array([[0.0]]), np.array([[True]]), 7)[0, 0] == 0.0


class Recording(SeasonalNaiveForecaster):
    """Seasonal naive that records every frame it was fitted on."""

    seen: list[pd.DataFrame] = []

    def fit(self, df, freq, on_progress=no_progress):  # type: ignore[override]
        Recording.seen.append(df.copy())
        return super().fit(df, freq, on_progress)

    def cross_validate(self, df, *args, **kwargs):  # type: ignore[override]
        Recording.seen.append(df.copy())
        return super().cross_validate(df, *args, **kwargs)


def test_members_fit_the_imputed_demand_and_the_backtest_skips_censored_points() -> None:
    out = (50, 51, 52, 58)  # held out by the backtest: its last 7 + 2 * 4 days
    panel = build_panel(sales(days=63, out=out))
    Recording.seen = []
    model = EnsembleForecaster([Recording()], backtest_h=7, backtest_windows=3).fit(
        panel.long, panel.freq)
    assert Recording.seen and all("censored" not in f for f in Recording.seen)
    uid_a = panel.series.set_index("product_id").loc["A", "unique_id"]
    fitted = Recording.seen[-1].set_index(["unique_id", "ds"])["y"]
    out_days = [START + pd.Timedelta(days=d) for d in out]
    assert [fitted[(uid_a, d)] for d in out_days] == [10.0 + d % 7 for d in out]
    scored = model.backtest_[model.backtest_["unique_id"] == uid_a]
    assert len(scored) and not scored["ds"].isin(out_days).any()
    untouched = model.backtest_[model.backtest_["unique_id"] != uid_a]
    assert untouched.groupby("unique_id").size().eq(3 * 7).all()  # 3 windows of 7


@pytest.mark.parametrize("flag", [True, False])
def test_censored_points_split_the_flag_off(flag: bool) -> None:
    frame = pd.DataFrame({"unique_id": ["a", "a"], "ds": pd.to_datetime(["2024-01-01",
                                                                         "2024-01-02"]),
                          "y": [1.0, 2.0], "censored": [flag, False]})
    rest, points = censoring.censored_points(frame)
    assert "censored" not in rest and len(points) == int(flag)
    assert len(censoring.unscored(frame.drop(columns="censored"), points)) == 2 - int(flag)
