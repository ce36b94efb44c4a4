"""From stored sales rows to the regular panel the models fit.

Stores record sales only on days something happened or was entered, so the rows are
snapped to the dataset's calendar, summed per period, and every series is filled with
zeros from its first period up to the dataset's last one: a product that stopped selling
has zero demand, and all forecasts then start on the same date, so groups can be summed.

A series with no sale for over a year before the dataset's end (``DISCONTINUED_AFTER_DAYS``)
is marked ``discontinued`` in the series table, with its ``last_sale``, so that serving can
say so instead of quietly forecasting years of zero-fill. Its zeros are kept, not cut:
cutting them would start its forecast earlier than the others' and break group sums, and
the fill cannot run away, as upload dates are bounded (``schema.Limits``).

Where ``on_hand`` was uploaded, a period that ended with no stock is censored
(:mod:`restock.data.censoring`): the models fit an imputed demand there (``y``), the
recorded sales stay in ``sales`` for the history a version shows, the ``censored`` flag
keeps those periods out of the backtest's scores, and the series table counts them
(``stockouts``; the total's is the count over all series). The total's ``y`` is the sum
of its series' ``y``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from restock.calendar import frequency_of, horizon_steps
from restock.data import censoring
from restock.data.frequency import infer_frequency

TOTAL_ID = "__total__"
#: a series whose last sale is longer ago than this, at the dataset's end, is discontinued
DISCONTINUED_AFTER_DAYS = 365


@dataclass
class Panel:
    """Model input (``long``: unique_id, ds, y, and price when uploaded; ``sales`` and
    ``censored`` when some period ended out of stock) and what each series id stands for."""

    long: pd.DataFrame
    series: pd.DataFrame  # unique_id, product_id, store_id, category, first_date, n_obs, ...
    freq: str

    @property
    def last_date(self) -> pd.Timestamp:
        return pd.Timestamp(self.long["ds"].max())

    def history(self) -> pd.DataFrame:
        """``unique_id, ds, y`` with ``y`` the recorded sales (not the imputed demand of
        censored periods): what a version shows as history; with ``demand``, the
        imputed demand the models fitted, when some period was censored."""
        if censoring.SALES not in self.long:
            return self.long[["unique_id", "ds", "y"]]
        return self.long[["unique_id", "ds", censoring.SALES, "y"]].rename(
            columns={"y": "demand"}).rename(columns={censoring.SALES: "y"})


def snap_to_calendar(dates: pd.Series, freq: str) -> pd.Series:
    """Map each date onto the period of ``freq`` it belongs to (a no-op for daily data)."""
    dates = pd.to_datetime(dates).dt.normalize()
    if freq == "D":
        return dates
    offset = pd.tseries.frequencies.to_offset(freq)
    roll = offset.rollback if freq == "MS" else offset.rollforward
    mapping = {d: roll(d) for d in pd.unique(dates)}
    return dates.map(mapping)


def build_panel(rows: pd.DataFrame, freq: str | None = None, *,
                censor: bool = True) -> Panel:
    """Regular, zero-filled series per (product_id, store_id) plus their total.

    ``rows`` has the store's canonical columns. Series ids are opaque (``s00001``...) so
    they are safe as file names whatever the product ids contain. ``censor=False`` ignores
    ``on_hand`` (the stockout benchmark's baseline: stockout zeros taken as demand).
    """
    if rows.empty:
        raise ValueError("no sales rows to build a panel from")
    freq = freq or infer_frequency(rows["date"])
    data = rows.assign(ds=snap_to_calendar(rows["date"], freq), store_id=rows["store_id"]
                       .fillna(""))
    data = data.sort_values(["product_id", "store_id", "ds"], kind="stable")
    keys = data[["product_id", "store_id"]].drop_duplicates().reset_index(drop=True)
    width = max(5, len(str(len(keys))))
    keys["unique_id"] = [f"s{i:0{width}d}" for i in range(1, len(keys) + 1)]
    data = data.merge(keys, on=["product_id", "store_id"])

    per_period = data.groupby(["unique_id", "ds"], sort=True)["quantity"].sum()
    calendar = pd.date_range(per_period.index.get_level_values("ds").min(),
                             data["ds"].max(), freq=freq)
    wide = per_period.unstack("unique_id").reindex(calendar)
    observed = wide.notna()
    started = observed.cummax()
    values = wide.fillna(0.0).where(started)
    last_sale = _last_sale(wide, observed)
    silent = len(calendar) - 1 - calendar.get_indexer(last_sale)
    stockout = (censoring.stockout_periods(data, calendar, values.columns) if censor
                else pd.DataFrame(False, index=calendar, columns=values.columns))
    stockout &= values.notna()
    demand = pd.DataFrame(censoring.impute_demand(
        values.to_numpy(), stockout.to_numpy(), frequency_of(freq).season_length),
        index=calendar, columns=values.columns)
    stats = pd.DataFrame({
        "first_date": values.apply(lambda c: c.first_valid_index()),
        "n_obs": started.sum(),
        "gap_share": 1 - observed.sum() / started.sum(),
        "zero_share": (values == 0).sum() / started.sum(),
        "mean": values.mean(),
        "last_sale": last_sale,
        "discontinued": silent >= horizon_steps(DISCONTINUED_AFTER_DAYS, freq),
        "stockouts": stockout.sum(),
    })
    long = _melt(demand, "y")
    total = pd.DataFrame({"unique_id": TOTAL_ID, "ds": calendar,
                          "y": demand.sum(axis=1, min_count=1).fillna(0.0).to_numpy()})
    if stockout.to_numpy().any():
        long[censoring.SALES] = _melt(values, "y")["y"].to_numpy()
        long[censoring.CENSORED] = _melt(stockout.where(values.notna()), "y")["y"].to_numpy(
            bool)
        total[censoring.SALES] = values.sum(axis=1, min_count=1).fillna(0.0).to_numpy()
        total[censoring.CENSORED] = False
    long = pd.concat([long, total], ignore_index=True)
    long = long.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    long = long[["unique_id", "ds", "y",
                 *(c for c in (censoring.SALES, censoring.CENSORED) if c in long)]]
    long["y"] = long["y"].astype(float)
    if "price" in data and data["price"].notna().any():
        long = long.merge(_prices(data, calendar), on=["unique_id", "ds"], how="left")

    category = data.groupby("unique_id")["category"].last()
    series = keys.set_index("unique_id").join(stats).join(category).reset_index()
    series["category"] = series["category"].fillna("")
    total_row = pd.DataFrame([{
        "unique_id": TOTAL_ID, "product_id": "", "store_id": "", "category": "",
        "first_date": calendar[0], "n_obs": len(calendar), "gap_share": 0.0,
        "zero_share": float((total["y"] == 0).mean()), "mean": float(total["y"].mean()),
        "last_sale": _last_sale(total.set_index("ds")[["y"]], None).iloc[0],
        "discontinued": False, "stockouts": int(stockout.to_numpy().sum()),
    }])
    series = pd.concat([series, total_row], ignore_index=True)
    series["n_obs"] = series["n_obs"].astype(int)
    series["stockouts"] = series["stockouts"].astype(int)
    series["discontinued"] = series["discontinued"].astype(bool)
    return Panel(long=long, series=series, freq=freq)


def _melt(wide: pd.DataFrame, name: str) -> pd.DataFrame:
    """``unique_id, ds, <name>`` of a [periods x series] frame, without the cells before a
    series starts (NaN), series by series."""
    return (wide.rename_axis("ds").reset_index()
            .melt(id_vars="ds", var_name="unique_id", value_name=name).dropna(subset=[name]))


def _prices(data: pd.DataFrame, calendar: pd.DatetimeIndex) -> pd.DataFrame:
    """``unique_id, ds, price``: each period's mean uploaded price, carried over the periods
    without one (a price holds until it changes; before the first one, the first one)."""
    wide = (data.dropna(subset=["price"]).groupby(["unique_id", "ds"])["price"].mean()
            .unstack("unique_id").reindex(calendar).ffill().bfill())
    return (wide.rename_axis("ds").reset_index()
            .melt(id_vars="ds", var_name="unique_id", value_name="price"))


def _last_sale(wide: pd.DataFrame, observed: pd.DataFrame | None) -> pd.Series:
    """Per column, the last period with a positive quantity; for a column that never sold,
    its last recorded period (``observed``) or else its first."""
    sold = wide.gt(0)
    last = sold.iloc[::-1].idxmax()
    never = ~sold.any()
    if never.any():
        fallback = (observed if observed is not None else wide.notna()).iloc[::-1].idxmax()
        last[never] = fallback[never]
    return last
