"""Live accuracy: the forecasts of model versions that served, scored against the actuals.

When an upload brings sales for dates that a once-active version forecast (``ModelRegistry
.ever_active``: the activation log plus ``current``), each forecast is stored next to its
actual in ``accuracy_points`` with the seasonal naive forecast made from the same cutoff
(the last season of the history the version was trained on, repeated; the last value
when the history is shorter than a season). Rows are keyed by (version, product, store, date), so
re-uploading the same actuals rewrites the same rows and a corrected actual replaces the
old one. Every version is scored on its own: two versions that forecast the same date
each get their row, and a report never mixes them.

Scores are computed when asked for, from the stored points, for the selection the
filters make: per series, per category and per store among the selected series, and their
total. A group is the sum of its series per date, as ``/forecast`` sums a group. MASE
divides by the in-sample MAE of the seasonal naive forecast (``metrics.mase_scale``): for
a series, on the history the version was trained on (saved with it, stored with each
point when scored); for a group, on the stored sales of its selected series summed per
period over the ``SCALE_PERIODS`` periods up to the cutoff (one SQL aggregate), from the
group's first row in that window, missing periods after it counted as zero (the panel's
rule). The forecast value added is ``1 - MASE_model / MASE_naive`` on the same points,
coverage the share of points (pooled over a group's series) whose actual fell inside the
version's interval.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from restock import snapshot
from restock.calendar import frequency_of
from restock.data import tables
from restock.data.panel import TOTAL_ID, snap_to_calendar
from restock.data.store import Filter, SalesStore
from restock.errors import InvalidParameterError, ModelNotFoundError, NoScoresError
from restock.inventory import make_warning
from restock.models.metrics import bias, mase, mase_scale, wape
from restock.registry import ModelRegistry
from restock.serving.selection import as_list, unknown_values

log = logging.getLogger(__name__)

#: periods of stored history up to a cutoff that a group's MASE scale is measured on (as
#: many as a version keeps of each series' history, ``training.HISTORY_PERIODS``)
SCALE_PERIODS = 400
#: ``model_degraded``: live MASE above the backtest MASE times this, over a season or more
DEGRADED_RATIO = 1.5
#: ``forecast_bias``: every one of at least this many periods erred the same way
BIAS_MIN_PERIODS = 6
LEVELS = ("series", "category", "store", "total")
SCORE_COLUMNS = ("model_version", "level", "product_id", "store_id", "category", "series",
                 "periods", "first_date", "last_date", "actual", "forecast", "mase", "wape",
                 "bias", "coverage", "fva")
_KEY = ["product_id", "store_id"]


@dataclass(frozen=True)
class VersionForecasts:
    """What accuracy tracking needs of one version: its cutoff, forecasts and history."""

    version: str
    freq: str
    cutoff: pd.Timestamp
    #: product_id, store_id, category, date, step, yhat, yhat_lower, yhat_upper, and the
    #: series' backtest MASE (NaN when it was too short to backtest)
    forecasts: pd.DataFrame
    #: the history it was trained on: periods up to the cutoff x (product_id, store_id),
    #: NaN before a series starts
    history: pd.DataFrame


def version_forecasts(registry: ModelRegistry, version: str) -> VersionForecasts:
    """Read a version's per-series forecasts, backtest MASE and history from its folder
    (the arrays through :mod:`restock.snapshot`, the backtest scores from ``metrics.json``)."""
    meta = registry.check(version)
    root = registry.path(version)
    arrays = snapshot.load(root, meta)
    series = arrays.series_frame()[["unique_id", *_KEY, "category"]]
    series = series[series["unique_id"] != TOTAL_ID]
    per_series = json.loads((root / "metrics.json").read_text()).get("per_series", {})
    series = series.assign(backtest_mase=series["unique_id"].map(
        lambda uid: (per_series.get(uid, {}).get("ensemble") or {}).get("mase")).astype(float))
    forecasts = arrays.forecast_frame()[["unique_id", "ds", "step", "yhat", "yhat_lower",
                                         "yhat_upper"]]
    frame = forecasts.merge(series, on="unique_id").drop(columns="unique_id")
    wide = pd.DataFrame(np.asarray(arrays.history)[arrays.table_rows].T,
                        index=pd.DatetimeIndex(arrays.history_dates, name="ds"),
                        columns=pd.MultiIndex.from_frame(series[_KEY]))
    return VersionForecasts(version, meta["frequency"], pd.Timestamp(meta["last_date"]),
                            frame.rename(columns={"ds": "date"}), wide)


# -- scoring -----------------------------------------------------------------------------


class AccuracyTracker:
    """Scores the forecasts an applied upload brings actuals for (``store.after_upload``)."""

    def __init__(self, store: SalesStore, registry: ModelRegistry) -> None:
        self.store = store
        self.registry = registry

    @classmethod
    def attach(cls, store: SalesStore, registry: ModelRegistry) -> "AccuracyTracker":
        """A tracker that scores after every upload ``store`` applies."""
        tracker = cls(store, registry)
        store.after_upload.append(tracker.score_upload)
        return tracker

    def score_upload(self, seq: int) -> int:
        """Score every once-active version on the periods upload ``seq`` brought sales for
        within its horizon; returns the points written. Cheap when the upload is outside
        every horizon: one indexed query per kept version, no version file read."""
        written = 0
        for version in self.registry.ever_active():
            try:
                meta = self.registry.meta(version)
            except ModelNotFoundError:  # pruned: what it scored is kept, nothing new to add
                continue
            cutoff = pd.Timestamp(meta["last_date"])
            freq = meta["frequency"]
            dates = pd.date_range(cutoff, periods=int(meta["horizon"]) + 1, freq=freq)[1:]
            periods = self._uploaded_periods(seq, freq, cutoff, dates)
            if periods:
                written += self._score(version_forecasts(self.registry, version), periods, seq)
        return written

    def _uploaded_periods(self, seq: int, freq: str, cutoff: pd.Timestamp,
                          dates: pd.DatetimeIndex) -> list[pd.Timestamp]:
        """The forecast periods that rows of upload ``seq`` fall into."""
        s = tables.sales.c
        stmt = (sa.select(s.date).distinct()
                .where(s.date > cutoff.date(), s.date <= _period_end(dates[-1], freq).date(),
                       s.upload_seq == seq))
        with self.store.reader.connect() as conn:
            days = conn.execute(stmt).scalars().all()
        if not days:
            return []
        snapped = snap_to_calendar(pd.Series(pd.to_datetime(days)), freq)
        return sorted(set(snapped) & set(dates))

    def _score(self, forecasts: VersionForecasts, periods: list[pd.Timestamp], seq: int) -> int:
        """Upsert the points of ``periods`` for every series the version forecast: the
        actual is the period's stored sales (all uploads), zero when a series sold nothing;
        the naive forecast and the MASE scale come from the version's own history."""
        freq, cutoff = forecasts.freq, forecasts.cutoff
        points = forecasts.forecasts[forecasts.forecasts["date"].isin(periods)]
        rows = self.store.query(start=cutoff.date() + pd.Timedelta(days=1),
                                end=_period_end(max(periods), freq).date())
        rows = rows.assign(date=snap_to_calendar(rows["date"], freq))
        actual = rows.groupby([*_KEY, "date"])["quantity"].sum().rename("actual")
        points = points.join(actual, on=[*_KEY, "date"]).fillna({"actual": 0.0})
        season = frequency_of(freq).season_length
        column = forecasts.history.columns.get_indexer(pd.MultiIndex.from_frame(points[_KEY]))
        naive = _naive(forecasts.history, season, column, points["step"].to_numpy(int))
        scale = np.array([mase_scale(values[~np.isnan(values)], season)
                          for values in forecasts.history.to_numpy(float).T])
        now = datetime.now(timezone.utc)
        records = [{
            "model_version": forecasts.version, "product_id": r.product_id,
            "store_id": r.store_id, "date": r.date.date(), "category": r.category,
            "cutoff": cutoff.date(), "frequency": freq, "step": int(r.step),
            "actual": float(r.actual), "yhat": float(r.yhat),
            "yhat_lower": float(r.yhat_lower), "yhat_upper": float(r.yhat_upper),
            "naive": float(guess),
            "scale": _finite(scale[c]) if c >= 0 else None,
            "backtest_mase": _finite(r.backtest_mase), "upload_seq": seq, "scored_at": now}
            for r, c, guess in zip(points.itertuples(index=False), column, naive)]
        if records:
            self._upsert(records)
        log.info("scored %d forecasts of version %s against upload %d", len(records),
                 forecasts.version, seq)
        return len(records)

    def _upsert(self, records: list[dict[str, Any]]) -> None:
        insert = postgresql.insert if self.store.dialect == "postgresql" else sqlite.insert
        stmt = insert(tables.accuracy_points)
        key = ["model_version", "product_id", "store_id", "date"]
        stmt = stmt.on_conflict_do_update(index_elements=key, set_={
            c.name: stmt.excluded[c.name] for c in tables.accuracy_points.columns
            if c.name not in key})
        with self.store.engine.begin() as conn:
            conn.execute(stmt, records)


def _period_end(period: pd.Timestamp, freq: str) -> pd.Timestamp:
    """The last day of the period labelled ``period`` (month starts label their month)."""
    if freq == "MS":
        return period + pd.offsets.MonthEnd(0)
    return period


def _naive(history: pd.DataFrame, season: int, column: np.ndarray,
           steps: np.ndarray) -> np.ndarray:
    """The seasonal naive forecast at the end of a [periods x series] history, for each
    (series column, step): the last season repeated; the last value for a series with
    less than a season; 0 for a column of -1 (no history)."""
    values = history.to_numpy(float)
    if len(values) >= season:
        last = values[-season:]
    else:
        last = np.full((season, values.shape[1]), np.nan)
    short = np.isnan(last).any(axis=0)
    latest = np.nan_to_num(history.ffill().to_numpy(float)[-1]) if len(values) else \
        np.zeros(values.shape[1])
    out = np.zeros(len(column))
    known = column >= 0
    where, step = column[known], steps[known]
    out[known] = np.where(short[where], latest[where], last[(step - 1) % season, where])
    return out


def group_sums(store: SalesStore, freq: str, cutoff: pd.Timestamp,
               filters: dict[str, list[str]]) -> pd.DataFrame:
    """Stored sales of the selected series per (category, store_id, period), the
    ``SCALE_PERIODS`` periods up to ``cutoff``: one aggregate query whose result grows with
    categories x stores x periods, not with the series; every group level sums it."""
    start = pd.date_range(end=cutoff, periods=SCALE_PERIODS, freq=freq)[0]
    s = tables.sales.c
    stmt = (sa.select(s.category, s.store_id, s.date, sa.func.sum(s.quantity))
            .where(*[s[column].in_(values) for column, values in filters.items() if values],
                   s.date >= start.date(), s.date <= _period_end(cutoff, freq).date())
            .group_by(s.category, s.store_id, s.date))
    with store.reader.connect() as conn:
        rows = pd.DataFrame(conn.execute(stmt).all(),
                            columns=["category", "store_id", "date", "quantity"])
    return rows.assign(date=snap_to_calendar(rows["date"], freq),
                       quantity=rows["quantity"].astype(float), all="")


def group_history(sums: pd.DataFrame, by: str, freq: str,
                  cutoff: pd.Timestamp) -> pd.DataFrame:
    """``group_sums`` per period and per value of column ``by``: NaN before a group's first
    row in the window, 0 in its gaps after it (the panel's rule)."""
    calendar = pd.date_range(end=cutoff, periods=SCALE_PERIODS, freq=freq)
    if sums.empty:
        return pd.DataFrame(index=calendar)
    wide = sums.groupby([by, "date"])["quantity"].sum().unstack(by).reindex(calendar)
    return wide.fillna(0.0).where(wide.notna().cummax())


# -- reporting ---------------------------------------------------------------------------


def accuracy_report(store: SalesStore, registry: ModelRegistry, *, product_id: Filter = None,
                    store_id: Filter = None, category: Filter = None,
                    version: str | None = None, start: date | None = None,
                    end: date | None = None) -> dict[str, Any]:
    """Scores of the stored points the filters select, per version (newest cutoff first),
    with the ``model_degraded`` and ``forecast_bias`` warnings; what ``GET /accuracy`` and
    ``restock accuracy`` show. Unknown filter values raise ``UnknownSeriesError``, a
    selection without scored points ``NoScoresError``."""
    filters = {"product_id": as_list(product_id), "store_id": as_list(store_id),
               "category": as_list(category)}
    if start is not None and end is not None and start > end:
        raise InvalidParameterError(f"start {start} is after end {end}")
    _check_known(store, filters)
    points = _read_points(store, filters, version, start, end)
    if points.empty:
        _explain_empty(store, registry, filters, version, start, end)
    scores: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    warnings: list[dict[str, str]] = []
    ordered = points.groupby("model_version")["cutoff"].max().sort_values(ascending=False)
    for name in ordered.index:
        group = points[points["model_version"] == name]
        freq = str(group["frequency"].iloc[0])
        version_scores = _score_version(store, group, freq, filters)
        scores.extend(version_scores)
        total = version_scores[-1]
        live, backtest_mase = _live_and_backtest(version_scores, group)
        per_date = group.groupby("date")[["actual", "yhat", "naive"]].sum()
        versions.append({"model_version": name, "cutoff": group["cutoff"].iloc[0].isoformat(),
                         "frequency": freq, "first_date": total["first_date"],
                         "last_date": total["last_date"], "periods": total["periods"],
                         "series": total["series"], "backtest_mase": backtest_mase,
                         "live_mase": None if np.isnan(live) else live,
                         "points": _points(per_date)})
        warnings.extend(_warnings(name, per_date, freq, live, backtest_mase))
    return {"selection": filters, "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None, "versions": versions, "scores": scores,
            "warnings": warnings}


def _live_and_backtest(scores: list[dict[str, Any]],
                       points: pd.DataFrame) -> tuple[float, float | None]:
    """Mean live MASE and mean backtest MASE over the same selected series (those that
    have both), so ``model_degraded`` compares like with like."""
    backtest = points.drop_duplicates(_KEY).set_index(_KEY)["backtest_mase"]
    pairs = [(row["mase"], backtest.get((row["product_id"], row["store_id"])))
             for row in scores if row["level"] == "series" and row["mase"] is not None]
    pairs = [(live, past) for live, past in pairs if past is not None and np.isfinite(past)]
    if not pairs:
        return float("nan"), None
    live, past = np.mean(pairs, axis=0)
    return float(live), float(past)


def _check_known(store: SalesStore, filters: dict[str, list[str]]) -> None:
    """404 naming a filter value the sales history has never seen, with close matches."""
    for column, wanted in filters.items():
        if not wanted:
            continue
        field = tables.sales.c[column]
        with store.reader.connect() as conn:
            found = set(conn.execute(sa.select(field).where(field.in_(wanted)).distinct())
                        .scalars())
            unknown = [w for w in wanted if w not in found]
            if not unknown:
                continue
            known = conn.execute(sa.select(field).distinct()).scalars().all()
        raise unknown_values(column, unknown, known)


def _where(filters: dict[str, list[str]], version: str | None, start: date | None,
           end: date | None) -> list[sa.ColumnElement[bool]]:
    p = tables.accuracy_points.c
    clauses = [p[column].in_(values) for column, values in filters.items() if values]
    if version is not None:
        clauses.append(p.model_version == version)
    if start is not None:
        clauses.append(p.date >= start)
    if end is not None:
        clauses.append(p.date <= end)
    return clauses


def _read_points(store: SalesStore, filters: dict[str, list[str]], version: str | None,
                 start: date | None, end: date | None) -> pd.DataFrame:
    p = tables.accuracy_points.c
    stmt = (sa.select(p.model_version, p.product_id, p.store_id, p.category, p.date,
                      p.cutoff, p.frequency, p.step, p.actual, p.yhat, p.yhat_lower,
                      p.yhat_upper, p.naive, p.scale, p.backtest_mase)
            .where(*_where(filters, version, start, end))
            .order_by(p.model_version, p.product_id, p.store_id, p.date))
    with store.reader.connect() as conn:
        frame = pd.DataFrame(conn.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))
    frame["date"] = pd.to_datetime(frame["date"])
    frame["cutoff"] = pd.to_datetime(frame["cutoff"]).dt.date
    return frame.astype({c: float for c in ("actual", "yhat", "yhat_lower", "yhat_upper",
                                            "naive", "scale", "backtest_mase")})


def _explain_empty(store: SalesStore, registry: ModelRegistry, filters: dict[str, list[str]],
                   version: str | None, start: date | None, end: date | None) -> None:
    """Raise the error that says why nothing was selected (a version never scored, the
    date range, or the filters together)."""
    p = tables.accuracy_points.c
    with store.reader.connect() as conn:
        if version is not None and conn.execute(
                sa.select(p.model_version).where(p.model_version == version).limit(1)
        ).first() is None:
            registry.path(version)  # ModelNotFoundError for a version that does not exist
        first, last = conn.execute(sa.select(sa.func.min(p.date), sa.func.max(p.date)).where(
            *_where(filters, version, None, None))).one()
    what = " and ".join(f"{k}={','.join(v)}" for k, v in filters.items() if v) or "any series"
    if version is not None:
        what += f" of model version {version}"
    if first is None:
        raise NoScoresError(
            f"no scored forecasts for {what} yet: forecasts are scored when an upload brings "
            "actual sales for dates that an active model version forecast",
            {"selection": filters, "model_version": version})
    raise NoScoresError(
        f"no scored forecasts for {what} between {start or 'the start'} and "
        f"{end or 'the end'}; scored dates run from {first} to {last}",
        {"selection": filters, "model_version": version, "scored_from": str(first),
         "scored_to": str(last)})


#: the columns whose values make the groups of each level
_LEVEL_COLUMNS = {"series": [*_KEY, "category"], "category": ["category"],
                  "store": ["store_id"], "total": []}


def _score_version(store: SalesStore, points: pd.DataFrame, freq: str,
                   filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Rows for each selected series, then each category and store among them, then their
    total (always the last row). Per level, one groupby sums every group's series per
    date; the loop over groups only slices arrays."""
    cutoff = pd.Timestamp(points["cutoff"].iloc[0])
    season = frequency_of(freq).season_length
    points = points.assign(inside=(points["yhat_lower"] <= points["actual"])
                           & (points["actual"] <= points["yhat_upper"]), all="")
    version = str(points["model_version"].iloc[0])
    stored = group_sums(store, freq, cutoff, filters)
    out = []
    for level in LEVELS:
        by = _LEVEL_COLUMNS[level] or ["all"]
        grouped = points.groupby(by, sort=True)
        code = grouped.ngroup().to_numpy()
        keys = grouped.size().index
        sums = (points[["actual", "yhat", "naive", "date"]].assign(group=code)
                .groupby(["group", "date"], sort=True).sum())
        bounds = np.searchsorted(sums.index.get_level_values("group").to_numpy(),
                                 np.arange(len(keys) + 1))
        values, dates = sums.to_numpy(float), sums.index.get_level_values("date")
        coverage = points.groupby(code)["inside"].mean().to_numpy()
        members = (points[_KEY].assign(group=code).drop_duplicates()
                   .groupby("group").size().to_numpy())
        if level == "series":
            scales = points.groupby(code)["scale"].first().to_numpy(float)
        else:
            history = group_history(stored, by[0], freq, cutoff)
            scales = np.array([_group_scale(history, key, season) for key in keys])
        for i, key in enumerate(keys):
            names = dict(zip(by, key if isinstance(key, tuple) else (key,)))
            part = slice(bounds[i], bounds[i + 1])
            out.append({"model_version": version, "level": level,
                        "product_id": names.get("product_id"),
                        "store_id": names.get("store_id"), "category": names.get("category"),
                        "series": int(members[i]), **_scores(
                            *values[part].T, dates[part], float(coverage[i]), scales[i])})
    return out


def _group_scale(history: pd.DataFrame, key: str, season: int) -> float:
    """``mase_scale`` of one group's summed history (NaN when it has none)."""
    if key not in history:
        return float("nan")
    values = history[key].to_numpy(float)
    return mase_scale(values[~np.isnan(values)], season)


def _scores(y: np.ndarray, yhat: np.ndarray, naive: np.ndarray, dates: pd.DatetimeIndex,
            coverage: float, scale: float) -> dict[str, Any]:
    """The figures of one series or group from its per-date sums."""
    model_mase, naive_mase = mase(y, yhat, scale), mase(y, naive, scale)
    return {
        "periods": len(y), "first_date": dates.min().date().isoformat(),
        "last_date": dates.max().date().isoformat(),
        "actual": float(y.sum()), "forecast": float(yhat.sum()),
        "mase": _finite(model_mase), "wape": _finite(wape(y, yhat)),
        "bias": _finite(bias(y, yhat)), "coverage": coverage,
        "fva": _finite(1 - model_mase / naive_mase) if naive_mase > 0 else None,
    }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _points(per_date: pd.DataFrame) -> list[dict[str, Any]]:
    """The selection's forecast, actual and seasonal naive forecast summed per scored date:
    what the panels draw as forecast against actual (the scores alone cannot show when the
    forecast erred)."""
    return [{"date": day.date().isoformat(), "actual": float(row.actual),
             "forecast": float(row.yhat), "naive": float(row.naive)}
            for day, row in zip(per_date.index, per_date.itertuples(index=False))]


def _warnings(version: str, per_date: pd.DataFrame, freq: str, live: float,
              backtest: float | None) -> list[dict[str, str]]:
    """``model_degraded`` and ``forecast_bias`` for one version on the selection, from its
    actual and forecast summed per date."""
    found = []
    season = frequency_of(freq).season_length
    if (backtest is not None and np.isfinite(live) and len(per_date) >= season
            and live > DEGRADED_RATIO * backtest):
        found.append({**make_warning(
            "model_degraded", "warning",
            f"model {version} has erred more live than on its backtest over {len(per_date)} "
            f"periods (MASE {live:.2f} against {backtest:.2f}); retrain on the recent data"),
            "model_version": version})
    error = (per_date["yhat"] - per_date["actual"]).to_numpy()
    if len(error) >= BIAS_MIN_PERIODS and ((error > 0).all() or (error < 0).all()):
        direction = "above" if error[0] > 0 else "below"
        share = bias(per_date["actual"].to_numpy(), per_date["yhat"].to_numpy())
        found.append({**make_warning(
            "forecast_bias", "warning",
            f"model {version}'s forecast was {direction} the actual sales in every one of "
            f"{len(error)} periods (bias {share:+.0%} of volume)"),
            "model_version": version})
    return found


def format_rows(report: dict[str, Any]) -> pd.DataFrame:
    """The report's score rows as a table (CLI table and CSV)."""
    return pd.DataFrame(report["scores"], columns=list(SCORE_COLUMNS))
