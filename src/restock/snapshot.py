"""A model version's serving arrays: the one module that writes them and reads them back.

Training writes, through :func:`write`, every series' forecast columns, backtest actuals
and predictions, recent history and the series table; serving reads them with :func:`load`.
Nothing else knows the file layout.

Layout (``<version>/snapshot/``): one ``.npy`` file per array, row ``i`` of every
``[series, ...]`` array being series ``i`` (the total included, at ``total_row``), plus
``snapshot.json`` with the frequency, the ISO dates and the array names. Arrays are read
with ``np.load(mmap_mode="r", allow_pickle=False)``: every web worker maps the same files,
so the page cache holds one copy and a worker's own memory does not grow with the number
of series (it touches only the rows its requests select). String arrays are fixed-width
unicode, never objects, so nothing is ever unpickled.

What a request would otherwise derive per call is stored ready to use: each selection
column's values and, per value, its series (``Key``); ISO dates and the day numbers that
give each forecast period's length (the last one included, so the inventory maths needs no
calendar); and for the columns with few, large groups (``GROUPED``: stores, categories)
every group's sums, made by the same function a request runs on its rows
(:func:`restock.serving.aggregation.sum_rows`), so a precomputed group is exactly the sum of
its parts and a whole store costs what one product does.

Versions written before this module (``forecasts.parquet``, ``backtest.parquet``,
``history.parquet``, ``series.parquet``) still load: :func:`load` reads them into the same
structure in memory (no group sums; those requests sum their rows). A snapshot written
before a per-series stat existed (``stockouts``) reads it as its neutral value (0), and
one written before stockouts were censored has no censored cells (its demand is its
history).

The history is what was sold; where a period ended out of stock, training fitted an imputed
demand instead (:mod:`restock.data.censoring`), kept sparsely as ``censored.rows``,
``censored.columns`` and ``censored.demand`` so that :meth:`Snapshot.demand` can give the
inventory maths the demand while answers show the sales.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from restock.data.panel import TOTAL_ID

FORMAT = 2
FOLDER = "snapshot"
INDEX = "snapshot.json"
MEMBER_COLUMNS = ("prophet", "lstm")
FORECAST_COLUMNS = ("yhat", "yhat_lower", "yhat_upper", *MEMBER_COLUMNS)
#: the columns a selection filters on
KEYS = ("product_id", "store_id", "category")
#: selection columns whose groups are summed at write time (few values, many series each)
GROUPED = ("store_id", "category")
#: the per-series figures of the series table that serving reads
SERIES_STATS = ("n_obs", "gap_share", "discontinued", "clipped", "stockouts")
#: stats a version written before them lacks, and the value such a version reads as
_LATER_STATS = {"stockouts": 0}
#: the arrays of ``Snapshot.censored`` (versions before censoring have none: no cells)
CENSORED_ARRAYS = ("censored.rows", "censored.columns", "censored.demand")
_LEGACY_FILES = ("forecasts.parquet", "backtest.parquet", "history.parquet",
                 "series.parquet")


@dataclass(frozen=True)
class Key:
    """One selection column: its values, and which series (table positions) hold each.

    Table positions index the series without the total (see ``Snapshot.table_rows``).
    """

    values: np.ndarray  # [U] str, in order of first appearance
    codes: np.ndarray  # [N] value code of each table position
    order: np.ndarray  # [N] table positions sorted by code (stable)
    bounds: np.ndarray  # [U + 1] value i's positions are order[bounds[i]:bounds[i + 1]]
    lookup: dict[str, int] = field(repr=False)  # value -> code

    def positions(self, code: int) -> np.ndarray:
        return self.order[self.bounds[code]:self.bounds[code + 1]]

    @classmethod
    def of(cls, column: np.ndarray) -> "Key":
        codes, values = pd.factorize(column, sort=False)  # a missing value gets code -1
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(values) + 1))
        values = np.asarray(values, dtype=str)
        return cls(values, codes.astype(np.int32), order.astype(np.int64),
                   bounds.astype(np.int64), _lookup(values))


@dataclass(frozen=True)
class GroupSums:
    """Every value's :class:`~restock.serving.aggregation.Sums` of one ``GROUPED`` column."""

    forecast: dict[str, np.ndarray]  # column -> [U, H]
    residual: np.ndarray  # [U, B]
    history: np.ndarray  # [U, T]


@dataclass(frozen=True)
class Snapshot:
    """One version's arrays; row ``i`` of every per-series array is series ``uids[i]``."""

    freq: str
    uids: np.ndarray  # [S] str
    total_row: int  # -1: a version made by hand without the total
    table_rows: np.ndarray  # [N] rows of the series proper (the total left out)
    keys: dict[str, Key]  # KEYS -> per table position
    stats: dict[str, np.ndarray]  # SERIES_STATS -> [S]
    forecast: dict[str, np.ndarray]  # column -> [S, H]
    dates: list[str]  # ISO, [H + 1]: the last is the day after the horizon's last period
    backtest_steps: np.ndarray  # [B] horizon step of each backtest column
    backtest_y: np.ndarray  # [S, B] actuals (NaN where a series was not backtested)
    backtest_yhat: np.ndarray  # [S, B] the ensemble's out-of-sample predictions
    history: np.ndarray  # [S, T] (NaN before a series starts)
    history_dates: list[str]  # ISO, [T]
    groups: dict[str, GroupSums]  # GROUPED column -> sums per value (legacy: empty)
    #: the history cells censored by a stockout: (rows, columns, imputed demand), each
    #: [C]; training's demand there, where ``history`` keeps what was sold
    censored: tuple[np.ndarray, np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)))
    days: np.ndarray = field(init=False, repr=False)  # [H + 1] day numbers of ``dates``

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", np.array(self.dates, dtype="datetime64[D]")
                           .astype(np.int64))

    @property
    def horizon(self) -> int:
        return int(self.forecast["yhat"].shape[1])

    @cached_property
    def backtested(self) -> np.ndarray:
        """[S] whether each series has backtest actuals (one too new to backtest has
        none): read once per loaded version, on first use, not on every request; group
        sums and their interval share both ask it (``serving.aggregation``)."""
        return ~np.isnan(self.backtest_y).all(axis=1)

    def demand(self, rows: np.ndarray) -> np.ndarray:
        """The history of ``rows`` [N, T] as demand: what was sold, except in periods that
        ended out of stock, which hold the demand training imputed there. The inventory
        maths judge this (a stockout's zero is not a period without demand); answers and
        charts show ``history``."""
        rows = np.asarray(rows, dtype=np.int64)
        cell_rows, cell_columns, imputed = self.censored
        if not len(cell_rows) or not len(rows):
            return np.array(self.history[rows], dtype=float)
        unique, inverse = np.unique(rows, return_inverse=True)
        out = np.array(self.history[unique], dtype=float)
        at = np.minimum(np.searchsorted(unique, cell_rows), len(unique) - 1)
        hit = unique[at] == cell_rows
        out[at[hit], np.asarray(cell_columns)[hit]] = np.asarray(imputed)[hit]
        return out[inverse]

    def series_frame(self) -> pd.DataFrame:
        """The series table (``unique_id``, the keys, the stats), total included: for export
        and inspection, never per request."""
        table = {"unique_id": self.uids}
        for name, key in self.keys.items():
            column = np.full(len(self.uids), "", dtype=object)
            codes = np.asarray(key.codes)
            column[self.table_rows[codes >= 0]] = key.values[codes[codes >= 0]]
            table[name] = column
        table.update({name: np.asarray(values) for name, values in self.stats.items()})
        return pd.DataFrame(table)

    def forecast_frame(self) -> pd.DataFrame:
        """``unique_id, ds, step`` and the forecast columns, long: what training produced."""
        rows, steps = len(self.uids), self.horizon
        frame = pd.DataFrame({
            "unique_id": np.repeat(self.uids, steps),
            "ds": np.tile(np.array(self.dates[:steps], dtype="datetime64[ns]"), rows),
            "step": np.tile(np.arange(1, steps + 1), rows)})
        for column, values in self.forecast.items():
            frame[column] = np.asarray(values).ravel()
        return frame


def build(freq: str, series: pd.DataFrame, forecast: Mapping[str, np.ndarray],
          dates: list[str], backtest_steps: np.ndarray, backtest_y: np.ndarray,
          backtest_yhat: np.ndarray, history: np.ndarray, history_dates: list[str],
          *, group_sums: bool = True, demand: np.ndarray | None = None) -> Snapshot:
    """A snapshot from dense arrays (rows in ``series`` order) and the series table.

    ``series`` has ``unique_id``, the ``KEYS`` and the ``SERIES_STATS`` columns
    (``discontinued`` and ``clipped`` default to False, ``stockouts`` to 0; versions
    written by hand for tests and benchmarks may also lack ``n_obs``, then the observed
    history, ``gap_share``, then 0, and the total, then ``total_row`` is -1). ``dates`` are the H forecast dates plus
    the day after the last period. ``demand`` (like ``history``) is training's demand:
    where it differs from the history, a stockout was censored (kept as ``censored``).
    """
    uids = series["unique_id"].astype(str).to_numpy()
    is_total = uids == TOTAL_ID
    total_row = int(np.flatnonzero(is_total)[0]) if is_total.any() else -1
    table_rows = np.flatnonzero(~is_total).astype(np.int64)
    table = series.iloc[table_rows]
    keys = {name: Key.of(table[name].to_numpy(object)) for name in KEYS}
    observed = (~np.isnan(history)).sum(axis=1)  # for versions made by hand without them
    stats = {
        "n_obs": series["n_obs"].to_numpy(np.int64) if "n_obs" in series else observed,
        "gap_share": (series["gap_share"].to_numpy(float) if "gap_share" in series
                      else np.zeros(len(series))),
        **{flag: (series[flag].fillna(False).to_numpy(bool) if flag in series
                  else np.zeros(len(series), bool)) for flag in ("discontinued", "clipped")},
        "stockouts": (series["stockouts"].fillna(0).to_numpy(np.int64) if "stockouts" in series
                      else np.zeros(len(series), np.int64))}
    forecast = {c: np.ascontiguousarray(forecast[c], dtype=float) for c in FORECAST_COLUMNS
                if c in forecast}
    snapshot = Snapshot(
        freq=freq, uids=uids.astype(str), total_row=total_row, table_rows=table_rows,
        keys=keys, stats=stats, forecast=forecast, dates=list(dates),
        backtest_steps=np.asarray(backtest_steps, np.int64),
        backtest_y=np.ascontiguousarray(backtest_y, float),
        backtest_yhat=np.ascontiguousarray(backtest_yhat, float),
        history=np.ascontiguousarray(history, float), history_dates=list(history_dates),
        groups={}, censored=_censored_cells(history, demand))
    if group_sums:
        snapshot.groups.update({name: _group_sums(snapshot, name) for name in GROUPED})
    return snapshot


def _censored_cells(history: np.ndarray, demand: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells where ``demand`` differs from ``history``: (rows, columns, demand)."""
    if demand is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    demand = np.asarray(demand, dtype=float)
    rows, columns = np.nonzero(np.isfinite(demand) & np.isfinite(history) & (demand != history))
    return rows.astype(np.int64), columns.astype(np.int64), demand[rows, columns]


def _group_sums(snapshot: Snapshot, name: str) -> GroupSums:
    # imported here: the serving package imports this module, and the sums must be the
    # very function a request runs, so that a stored group equals the sum of its rows
    from restock.serving.aggregation import sum_rows

    key = snapshot.keys[name]
    parts = [sum_rows(snapshot, snapshot.table_rows[key.positions(code)])
             for code in range(len(key.values))]
    return GroupSums(
        forecast={c: np.array([p.forecast[c] for p in parts]).reshape(len(parts), -1)
                  for c in snapshot.forecast if c not in ("yhat_lower", "yhat_upper")},
        residual=np.array([p.residual for p in parts]).reshape(len(parts), -1),
        history=np.array([p.history for p in parts]).reshape(len(parts), -1))


def from_frames(freq: str, series: pd.DataFrame, forecasts: pd.DataFrame,
                backtest: pd.DataFrame, history: pd.DataFrame,
                clipped: Mapping[str, int] | None = None, *,
                group_sums: bool = True) -> Snapshot:
    """A snapshot from training's long frames.

    ``forecasts``: ``unique_id, ds, step`` and the forecast columns; ``backtest``:
    ``unique_id, cutoff, step, y, yhat``; ``history``: ``unique_id, ds, y`` and, when a
    stockout was censored, ``demand`` (training's imputed demand); ``clipped``: series
    id -> negative member forecasts clipped (a warning).
    """
    series = series.reset_index(drop=True).copy()
    row = {uid: i for i, uid in enumerate(series["unique_id"])}
    series["clipped"] = [bool((clipped or {}).get(uid, 0)) for uid in series["unique_id"]]
    horizon = int(forecasts["step"].max())
    days = pd.DatetimeIndex(sorted(forecasts["ds"].unique()))[:horizon]
    end = days[-1] + pd.tseries.frequencies.to_offset(freq)
    values = {c: _dense(forecasts, "step", c, row, horizon) for c in FORECAST_COLUMNS
              if c in forecasts}
    backtest = backtest.assign(column=backtest.groupby(["cutoff", "step"]).ngroup())
    columns = int(backtest["column"].max()) + 1 if len(backtest) else 0
    steps = (backtest.drop_duplicates("column").sort_values("column")["step"].to_numpy(int)
             if columns else np.zeros(0, int))
    history_days = pd.DatetimeIndex(sorted(history["ds"].unique()))
    history = history.assign(position=history_days.get_indexer(history["ds"]))
    return build(
        freq, series, values, [*_iso(days), end.date().isoformat()], steps,
        _dense(backtest, "column", "y", row, columns, base=0),
        _dense(backtest, "column", "yhat", row, columns, base=0),
        _dense(history, "position", "y", row, len(history_days), base=0), _iso(history_days),
        group_sums=group_sums,
        demand=(_dense(history, "position", "demand", row, len(history_days), base=0)
                if "demand" in history else None))


def _dense(frame: pd.DataFrame, position: str, column: str, row: dict[str, int],
           width: int, base: int = 1) -> np.ndarray:
    """Scatter a long frame into a [series, width] array, NaN where a cell is absent."""
    out = np.full((len(row), width), np.nan)
    rows = frame["unique_id"].map(row).to_numpy()
    known = ~pd.isna(rows)
    out[rows[known].astype(int), frame[position].to_numpy(int)[known] - base] = \
        frame[column].to_numpy(float)[known]
    return out


def _iso(days: pd.DatetimeIndex) -> list[str]:
    return [d.date().isoformat() for d in days]


def _lookup(values: np.ndarray) -> dict[str, int]:
    return {value: code for code, value in enumerate(values.tolist())}


# -- files ----------------------------------------------------------------------------------


def write(directory: Path, snapshot: Snapshot) -> None:
    """Write ``snapshot`` into ``directory/snapshot/`` (the version's staging folder)."""
    folder = Path(directory) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "uids": snapshot.uids, "table_rows": snapshot.table_rows,
        "backtest_steps": snapshot.backtest_steps, "backtest_y": snapshot.backtest_y,
        "backtest_yhat": snapshot.backtest_yhat, "history": snapshot.history,
        **dict(zip(CENSORED_ARRAYS, snapshot.censored)),
        **{f"stats.{k}": v for k, v in snapshot.stats.items()},
        **{f"forecast.{c}": v for c, v in snapshot.forecast.items()}}
    for name, key in snapshot.keys.items():
        arrays.update({f"key.{name}.values": key.values, f"key.{name}.codes": key.codes,
                       f"key.{name}.order": key.order, f"key.{name}.bounds": key.bounds})
    for name, sums in snapshot.groups.items():
        arrays.update({f"group.{name}.residual": sums.residual,
                       f"group.{name}.history": sums.history,
                       **{f"group.{name}.forecast.{c}": v for c, v in sums.forecast.items()}})
    for name, values in arrays.items():
        np.save(folder / f"{name}.npy", np.asarray(values), allow_pickle=False)
    index = {"format": FORMAT, "freq": snapshot.freq, "total_row": snapshot.total_row,
             "dates": snapshot.dates, "history_dates": snapshot.history_dates,
             "forecast_columns": list(snapshot.forecast), "keys": list(snapshot.keys),
             "groups": {name: list(sums.forecast) for name, sums in snapshot.groups.items()},
             "arrays": sorted(arrays)}
    (folder / INDEX).write_text(json.dumps(index))


def load(root: Path, meta: Mapping[str, Any]) -> Snapshot:
    """The snapshot of the version in ``root`` (already verified), memory-mapped.

    A version of the earlier parquet layout is read into memory instead (``meta`` gives
    its frequency and clipped series).
    """
    folder = Path(root) / FOLDER
    if not (folder / INDEX).exists():
        return _load_legacy(Path(root), meta)
    index = json.loads((folder / INDEX).read_text())
    if index.get("format") != FORMAT:
        raise ValueError(f"snapshot format {index.get('format')} is not {FORMAT}")

    def array(name: str) -> np.ndarray:
        mapped = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        return mapped.view(np.ndarray)  # the same pages, without np.memmap's slow indexing

    keys = {}
    for name in index["keys"]:
        values = np.asarray(array(f"key.{name}.values"))  # small: copied for the lookup
        keys[name] = Key(values, array(f"key.{name}.codes"), array(f"key.{name}.order"),
                         np.asarray(array(f"key.{name}.bounds")), _lookup(values))
    uids = array("uids")
    groups = {name: GroupSums(
        forecast={c: array(f"group.{name}.forecast.{c}") for c in columns},
        residual=array(f"group.{name}.residual"), history=array(f"group.{name}.history"))
        for name, columns in index["groups"].items()}
    return Snapshot(
        freq=index["freq"], uids=uids, total_row=int(index["total_row"]),
        table_rows=array("table_rows"), keys=keys,
        stats={name: (array(f"stats.{name}") if f"stats.{name}" in index["arrays"]
                      else np.full(len(uids), _LATER_STATS[name])) for name in SERIES_STATS},
        forecast={c: array(f"forecast.{c}") for c in index["forecast_columns"]},
        dates=index["dates"], backtest_steps=np.asarray(array("backtest_steps")),
        backtest_y=array("backtest_y"), backtest_yhat=array("backtest_yhat"),
        history=array("history"), history_dates=index["history_dates"], groups=groups,
        **({"censored": tuple(np.asarray(array(name)) for name in CENSORED_ARRAYS)}
           if CENSORED_ARRAYS[0] in index["arrays"] else {}))


def _load_legacy(root: Path, meta: Mapping[str, Any]) -> Snapshot:
    """A version saved as parquet frames (before the snapshot): read them all, in memory."""
    forecasts, backtest, history, series = (
        pd.read_parquet(root / name) if (root / name).exists() or name != "backtest.parquet"
        else pd.DataFrame(columns=["unique_id", "cutoff", "step", "y", "yhat"])
        for name in _LEGACY_FILES)
    return from_frames(meta["frequency"], series, forecasts, backtest, history,
                       meta.get("clipped") or {}, group_sums=False)

