"""The one interface every forecasting member follows.

Frames are long format, as in StatsForecast: ``unique_id`` (str, opaque series id),
``ds`` (datetime64, on the series' own calendar) and ``y`` (float, >= 0) in; predictions
come back as ``unique_id``, ``ds`` and one column named after the member's ``alias``.

The contract follows scikit-learn's estimators: ``__init__`` only stores hyperparameters,
``fit`` does all the work, returns ``self`` and sets learned state in attributes ending in
``_``; ``predict`` before ``fit`` raises ``NotFittedError``. A member that cannot fit a
series (too short, all zeros for a model that needs variance, ...) leaves it out of its
predictions and records why in ``skipped_`` so the ensemble can fall back to the others.

Progress and cancellation share one callback: ``on_progress(fraction, message, **extra)``
is called between series or epochs with the member's own progress in [0, 1] (extra keys
such as ``epoch``, ``loss``, ``val_loss``); it may raise ``restock.errors.JobCancelled``,
which members must let propagate after releasing their resources.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol, Self

import pandas as pd


class ProgressFn(Protocol):
    def __call__(self, fraction: float, message: str = "", **extra: Any) -> None: ...


def no_progress(fraction: float, message: str = "", **extra: Any) -> None:
    """The default callback: report nothing, never cancel."""


def part_of(on_progress: ProgressFn, start: float, end: float,
            label: Callable[[str], str] | None = None) -> ProgressFn:
    """The callback for one part of a longer task (a backtest window, a member, a phase).

    The part reports its own 0-1 fraction; the caller hears it mapped onto ``start``-``end``
    (exactly ``start`` at 0 and ``end`` at 1, so consecutive parts never step back), each
    message passed through ``label`` when given.
    """

    def report(fraction: float, message: str = "", **extra: Any) -> None:
        on_progress(start * (1.0 - fraction) + end * fraction,
                    label(message) if label else message, **extra)

    return report


class NotFittedError(RuntimeError):
    """``predict`` or ``save`` was called before ``fit``."""


class Forecaster(ABC):
    """A model of many series at once, fitted on a long frame and predicting ``h`` steps."""

    alias: ClassVar[str]

    #: filled by ``fit``: series id -> reason this member did not fit it
    skipped_: dict[str, str]

    @abstractmethod
    def fit(self, df: pd.DataFrame, freq: str, on_progress: ProgressFn = no_progress) -> Self:
        """Fit on ``df`` (``unique_id, ds, y``), whose dates follow the pandas offset ``freq``."""

    @abstractmethod
    def predict(self, h: int) -> pd.DataFrame:
        """Forecast ``h`` steps past each fitted series' last date: ``unique_id, ds, <alias>``."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the fitted state under ``directory`` as JSON / safetensors (never pickle)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> Self:
        """Read back what ``save`` wrote; the result predicts exactly as the saved one did."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "skipped_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit() first")


def future_dates(last: pd.Timestamp, freq: str, h: int) -> pd.DatetimeIndex:
    """The ``h`` dates after ``last`` on the series' own calendar (Fridays stay Fridays)."""
    return pd.date_range(start=last, periods=h + 1, freq=freq)[1:]
