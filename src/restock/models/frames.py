"""Plumbing shared by the members: split a frame into series, build outputs, read params.

Every member sees the same ``unique_id, ds, y`` frame and answers with the same
``unique_id, ds, <alias>`` frame; doing the splitting and assembling in one place keeps
the members to their modelling and makes them agree on ordering and dtypes.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from restock.models.base import future_dates


@dataclass(frozen=True)
class Series:
    """One series of a long frame, sorted by date."""

    uid: str
    ds: pd.DatetimeIndex
    y: np.ndarray


def iter_series(df: pd.DataFrame) -> Iterator[Series]:
    """Yield every series of ``df`` (``unique_id, ds, y``) in unique_id order, dates sorted."""
    ordered = df.sort_values(["unique_id", "ds"], kind="stable")
    for uid, group in ordered.groupby("unique_id", sort=True):
        yield Series(
            uid=str(uid),
            ds=pd.DatetimeIndex(group["ds"]),
            y=group["y"].to_numpy(dtype=float),
        )


def forecast_frame(
    alias: str,
    values: Mapping[str, np.ndarray],
    last_dates: Mapping[str, pd.Timestamp],
    freq: str,
    h: int,
) -> pd.DataFrame:
    """``unique_id, ds, <alias>`` for ``h`` steps after each series' last date.

    ``values`` maps each series to its ``h`` forecasts; series are emitted in sorted order.
    """
    uids = sorted(values)
    if not uids:
        return pd.DataFrame(
            {
                "unique_id": pd.Series(dtype=object),
                "ds": pd.Series(dtype="datetime64[ns]"),
                alias: pd.Series(dtype=float),
            }
        )
    dates = np.concatenate(
        [future_dates(last_dates[uid], freq, h).to_numpy(dtype="datetime64[ns]") for uid in uids]
    )
    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.array(uids, dtype=object), h),
            "ds": dates,
            alias: np.concatenate([np.asarray(values[uid], dtype=float) for uid in uids]),
        }
    )


def init_params(model: object) -> dict[str, Any]:
    """Constructor arguments of ``model``, read back from the attributes of the same names.

    Members follow scikit-learn's rule that ``__init__`` only stores its arguments, so this
    is enough to clone a member or to write its hyperparameters to JSON.
    """
    names = [p for p in inspect.signature(type(model).__init__).parameters if p != "self"]
    return {name: getattr(model, name) for name in names if hasattr(model, name)}
