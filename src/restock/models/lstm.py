"""The ``lstm`` member: one global LSTM over every series, the seed's neural model grown up.

The seed trained one small LSTM per request on the total. Here a single network learns from
all series at once (a "global" model, as in DeepAR): slow movers borrow shape from busy
ones, and the cost of a retrain grows with the number of windows sampled per epoch, not
with the catalogue.

Design choices, each measured on retail-like data (see the module's tests and the
accuracy notes in the closing report of issue 3):

- **Scaling per window, not per history.** Every input window is divided by its own mean
  absolute value (GluonTS' ``MeanScaler``); the series' historical mean stands in when a
  window is all zeros. A scaler fitted once on the whole history (the seed's MinMax)
  mis-scales the latest window of a trending or newly launched product, and min-max is
  dominated by one promotion spike. ``log(scale)`` is fed as an input so the network can
  still tell a slow mover from a best-seller.
- **Calendar inputs.** Each step carries sin/cos of its weekday (sub-weekly data) and, when
  the history spans at least two years, of its day of the year: the same rule Prophet
  uses to switch yearly seasonality on, so a one-year history never extrapolates a phase
  it has not seen.
- **Multi-step head, recursive in blocks.** The network emits ``output_size`` steps at once
  (a week for daily data), and longer horizons feed its own forecasts back block by block:
  seven times fewer recursions than one-step-ahead, which means less error accumulation
  and a 365-day forecast for a thousand series in a fraction of a second.
- **Sampled epochs, early stopping.** Each epoch draws ``windows_per_epoch`` training
  windows without replacement; validation uses the most recent ``val_fraction`` of each
  series' target positions, which training never sees as targets; the best epoch's
  weights are restored.
- **Reproducible.** Weight initialisation, dropout and sampling are seeded inside
  ``torch.random.fork_rng`` (the process-wide generator is left untouched), so two fits on
  the same data and thread count (one by default) give identical forecasts.

Artifacts: ``lstm.safetensors`` (weights), ``scalers.json`` (each series' fallback scale,
last window and last date: everything ``predict`` needs) and ``lstm.json`` (hyperparameters,
resolved architecture and the training log). Nothing is pickled.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Self

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from restock.calendar import DAYS_PER_WEEK, DAYS_PER_YEAR, YEARLY_MIN_SPAN_DAYS, frequency_of
from restock.models.backtest import drop_last, with_steps
from restock.models.base import Forecaster, ProgressFn, future_dates, no_progress

FORMAT_VERSION = 1

#: default input window (steps) and output block by frequency code; others: 24 and 1
_DEFAULT_WINDOW = {"D": 28, "B": 28, "W": 26, "M": 24}
_DEFAULT_OUTPUT = {"D": 7, "B": 7, "W": 4, "M": 6}


def _calendar_features(dates: pd.DatetimeIndex, weekday: bool, yearly: bool) -> np.ndarray:
    """Sin/cos of the weekday and/or day of year: smooth, bounded, known for future dates."""
    columns: list[np.ndarray] = []
    if weekday:
        angle = 2 * np.pi * dates.dayofweek.to_numpy() / DAYS_PER_WEEK
        columns += [np.sin(angle), np.cos(angle)]
    if yearly:
        angle = 2 * np.pi * (dates.dayofyear.to_numpy() - 1) / DAYS_PER_YEAR
        columns += [np.sin(angle), np.cos(angle)]
    if not columns:
        return np.zeros((len(dates), 0), dtype=np.float32)
    return np.stack(columns, axis=1).astype(np.float32)


class _Net(nn.Module):
    """Stacked LSTM -> linear head emitting the next ``output_size`` scaled values."""

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, dropout: float, output_size: int
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1, :])


def _make_inputs(
    values: torch.Tensor, fallback: torch.Tensor, calendar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale each window by its mean |y| and stack the network inputs; returns (x, scale).

    ``values`` is (batch, window), ``fallback`` (batch,) the series' mean used when a window
    is all zeros, ``calendar`` (batch, window, features).
    """
    scale = values.abs().mean(dim=1)
    scale = torch.where(scale > 0, scale, fallback)
    scaled = values / scale[:, None]
    log_scale = torch.log(scale)[:, None].expand_as(scaled)
    x = torch.cat([scaled[..., None], log_scale[..., None], calendar], dim=2)
    return x, scale


@dataclass
class _Panel:
    """Series laid out as rows of a right-padded matrix, with their calendars."""

    ids: list[str]
    values: np.ndarray  # (n, width) float32, NaN past each series' end
    lengths: np.ndarray  # (n,) int
    calendar: np.ndarray  # (n, width, features) float32


class LSTMForecaster(Forecaster):
    """Global 2-layer LSTM with per-window mean scaling and early stopping.

    Parameters
    ----------
    window : input length in steps; ``None`` picks 28 (daily), 26 (weekly) or 24 (monthly),
        capped at half the median series length so short histories still form windows.
    output_size : steps emitted per forward pass; ``None`` picks 7 / 4 / 6 by frequency.
    hidden_size, num_layers, dropout : the network (the seed's 2-layer LSTM with dropout).
        32 units matched 64 on held-out pizzaplace data (MASE 0.732 vs 0.734) at about a
        third of the cost per window.
    max_epochs, patience : early stopping on the validation loss.
    batch_size, learning_rate : Adam on the Huber loss of the scaled targets.
    windows_per_epoch : training windows sampled per epoch, so an epoch costs the same
        for ten series or ten thousand.
    val_fraction : share of each series' most recent target positions held out.
    seed : seeds weight initialisation, dropout and window sampling.
    epochs : train exactly this many epochs on every target position, with no validation
        split and no early stopping, keeping the last weights. The ensemble's refit on all
        data uses it with the best epoch its backtest copy found by early stopping
        (``from_backtest``): the same number of gradient steps, without validating every
        epoch and without the ``patience`` epochs past the best one. ``None``: early stopping.
    num_threads : torch intra-op threads during fit/predict; ``None`` keeps torch's setting.
        One by default: batches of 256 x 28 steps through 32 units are too small to split,
        and a second thread only waits at every op's barrier while the Prophet workers
        and the other members want the cores. Measured on 2 loaded cores (load 7-10): the
        early-stopped fit took 45.5 s with torch's 2 threads and 25.6 s with 1 on
        pizzaplace, 38.3 s and 29.7 s on 300 M3 series, with identical forecasts. A fixed
        count also keeps forecasts reproducible from one machine to the next.
    """

    alias: ClassVar[str] = "lstm"

    def __init__(
        self,
        window: int | None = None,
        output_size: int | None = None,
        hidden_size: int = 32,
        num_layers: int = 2,
        dropout: float = 0.2,
        max_epochs: int = 50,
        patience: int = 5,
        batch_size: int = 256,
        learning_rate: float = 3e-3,
        windows_per_epoch: int = 8192,
        val_fraction: float = 0.1,
        seed: int = 42,
        num_threads: int | None = 1,
        epochs: int | None = None,
    ) -> None:
        self.window = window
        self.output_size = output_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.windows_per_epoch = windows_per_epoch
        self.val_fraction = val_fraction
        self.seed = seed
        self.num_threads = num_threads
        self.epochs = epochs

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as scikit-learn's ``get_params`` (saved in lstm.json)."""
        return {
            name: getattr(self, name)
            for name in (
                "window", "output_size", "hidden_size", "num_layers", "dropout", "max_epochs",
                "patience", "batch_size", "learning_rate", "windows_per_epoch", "val_fraction",
                "seed", "num_threads", "epochs",
            )
        }

    def from_backtest(self, fitted: "LSTMForecaster") -> "LSTMForecaster":
        """The refit of this member after ``fitted`` (its backtest copy) ran: a fixed number
        of epochs, the backtest's best one, when early stopping on validation chose it."""
        best = int(getattr(fitted, "best_epoch_", 0) or 0)
        if self.epochs is not None or best < 1 or getattr(fitted, "best_val_loss_", None) is None:
            return self
        return type(self)(**(self.get_params() | {"epochs": best}))

    # ------------------------------------------------------------------ fit

    def fit(self, df: pd.DataFrame, freq: str, on_progress: ProgressFn = no_progress) -> Self:
        """Train the global network on every usable series of ``df`` (``unique_id, ds, y``)."""
        started = time.perf_counter()
        frequency = frequency_of(freq)
        series = _split_series(df, freq)
        lengths = np.array([len(v) for _, _, v in series], dtype=int)
        median_length = int(np.median(lengths)) if len(lengths) else 0
        default_window = _DEFAULT_WINDOW.get(frequency.code, 24)
        window = self.window or max(2, min(default_window, median_length // 2))
        output_size = self.output_size or _DEFAULT_OUTPUT.get(frequency.code, 1)
        span_days = max(((d[-1] - d[0]).days for _, d, _ in series), default=0)

        self.freq_ = freq
        self.window_ = window
        self.output_size_ = output_size
        self.weekday_features_ = frequency.within_week
        self.yearly_features_ = span_days >= YEARLY_MIN_SPAN_DAYS and frequency.within_year
        self.skipped_ = {}
        usable = []
        for uid, dates, values in series:
            if len(values) < window + 1:
                self.skipped_[uid] = (
                    f"history of {len(values)} steps is shorter than the LSTM window + 1 "
                    f"({window + 1})"
                )
            else:
                usable.append((uid, dates, values))
        self.history_: list[dict[str, Any]] = []
        self.best_epoch_ = 0
        self.best_val_loss_: float | None = None

        input_size = 2 + 2 * self.weekday_features_ + 2 * self.yearly_features_
        with self._torch_context():
            self.net_ = _Net(
                input_size, self.hidden_size, self.num_layers, self.dropout, output_size
            )
            self.series_ = self._series_state(usable)
            if usable:
                self._train(self._panel(usable, pad=output_size), on_progress)
        self.net_.eval()
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _series_state(self, usable: list[tuple[str, pd.DatetimeIndex, np.ndarray]]) -> dict:
        """What predict needs per series: fallback scale, last window and last date."""
        state = {}
        for uid, dates, values in usable:
            mean = float(np.abs(values).mean())
            state[uid] = {
                "scale": mean if mean > 0 else 1.0,
                "last_ds": dates[-1],
                "history": values[-self.window_ :].astype(np.float64).tolist(),
            }
        return state

    def _panel(
        self, series: list[tuple[str, pd.DatetimeIndex, np.ndarray]], pad: int
    ) -> _Panel:
        """Right-pad every series with NaN to a common width and compute its calendar."""
        lengths = np.array([len(v) for _, _, v in series], dtype=int)
        width = int(lengths.max()) + pad
        values = np.full((len(series), width), np.nan, dtype=np.float32)
        n_features = 2 * self.weekday_features_ + 2 * self.yearly_features_
        calendar = np.zeros((len(series), width, n_features), dtype=np.float32)
        for row, (_, dates, y) in enumerate(series):
            values[row, : len(y)] = y
            full = pd.date_range(dates[0], periods=width, freq=self.freq_)
            calendar[row] = _calendar_features(
                full, self.weekday_features_, self.yearly_features_
            )
        return _Panel(
            ids=[uid for uid, _, _ in series],
            values=values,
            lengths=lengths,
            calendar=calendar,
        )

    def _train(self, panel: _Panel, on_progress: ProgressFn) -> None:
        """Sampled-window epochs with early stopping; leaves the best weights in ``net_``."""
        window, horizon = self.window_, self.output_size_
        fixed = self.epochs is not None and self.epochs > 0
        max_epochs = int(self.epochs) if fixed else self.max_epochs
        val_fraction = 0.0 if fixed else self.val_fraction
        rng = np.random.default_rng(self.seed)
        # a window starting at s predicts positions s+window .. s+window+horizon-1;
        # positions >= cut are validation targets and are masked out of training targets
        n_positions = panel.lengths - window
        n_val = np.floor(n_positions * val_fraction).astype(int)
        cut = panel.lengths - n_val
        rows = np.repeat(np.arange(len(panel.ids)), n_positions)
        starts = np.concatenate([np.arange(n) for n in n_positions])
        is_val = starts + window >= cut[rows]
        train = (rows[~is_val], starts[~is_val])
        val = (rows[is_val], starts[is_val])
        # a fixed sample keeps validation at most half the cost of a training epoch
        n_val_windows = max(1, self.windows_per_epoch // 2)
        if len(val[0]) > n_val_windows:
            pick = np.sort(rng.choice(len(val[0]), n_val_windows, replace=False))
            val = (val[0][pick], val[1][pick])

        values = torch.from_numpy(panel.values)
        train_targets = values.clone()
        columns = torch.arange(values.shape[1])[None, :]
        train_targets[columns >= torch.from_numpy(cut)[:, None]] = float("nan")
        calendar = torch.from_numpy(panel.calendar)
        fallback = torch.tensor(
            [self.series_[uid]["scale"] for uid in panel.ids], dtype=torch.float32
        )
        offsets_in = torch.arange(window)
        offsets_out = torch.arange(window, window + horizon)

        def batch(idx_rows: np.ndarray, idx_starts: np.ndarray, targets: torch.Tensor):
            r = torch.from_numpy(idx_rows)[:, None]
            s = torch.from_numpy(idx_starts)[:, None]
            x, scale = _make_inputs(
                values[r, s + offsets_in], fallback[r[:, 0]], calendar[r, s + offsets_in]
            )
            return x, targets[r, s + offsets_out] / scale[:, None]

        def loss_of(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            mask = ~torch.isnan(target)
            return nn.functional.huber_loss(pred[mask], target[mask])

        optimiser = torch.optim.Adam(self.net_.parameters(), lr=self.learning_rate)
        best_state = {k: v.clone() for k, v in self.net_.state_dict().items()}
        best, stale = math.inf, 0
        for epoch in range(1, max_epochs + 1):
            self.net_.train()
            n_train = len(train[0])
            order = rng.choice(n_train, min(self.windows_per_epoch, n_train), replace=False)
            total, count = 0.0, 0
            for first in range(0, len(order), self.batch_size):
                chunk = order[first : first + self.batch_size]
                x, y = batch(train[0][chunk], train[1][chunk], train_targets)
                loss = loss_of(self.net_(x), y)
                optimiser.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net_.parameters(), 1.0)
                optimiser.step()
                total += loss.item() * len(chunk)
                count += len(chunk)
            train_loss = total / count
            val_loss = self._evaluate(val, batch, values, loss_of) if len(val[0]) else None
            monitored = train_loss if val_loss is None else val_loss
            if monitored < best - 1e-6:
                best, stale, self.best_epoch_ = monitored, 0, epoch
                best_state = {k: v.clone() for k, v in self.net_.state_dict().items()}
            else:
                stale += 1
            self.history_.append({"epoch": epoch, "loss": train_loss, "val_loss": val_loss})
            done = (stale >= self.patience and not fixed) or epoch == max_epochs
            on_progress(
                1.0 if done else epoch / max_epochs,
                f"LSTM epoch {epoch}/{max_epochs}: loss {train_loss:.4f}"
                + ("" if val_loss is None else f", val loss {val_loss:.4f}"),
                epoch=epoch,
                epochs=max_epochs,
                loss=train_loss,
                val_loss=val_loss,
            )
            if done:
                break
        if fixed:  # no validation to choose by: the last epoch's weights
            self.best_epoch_ = max_epochs
            best_state = self.net_.state_dict()
        self.net_.load_state_dict(best_state)
        self.best_val_loss_ = None if math.isinf(best) or fixed else best

    def _evaluate(
        self,
        val: tuple[np.ndarray, np.ndarray],
        batch: Callable[..., tuple[torch.Tensor, torch.Tensor]],
        values: torch.Tensor,
        loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> float:
        """Mean validation loss over the fixed validation windows (no dropout, no grad)."""
        self.net_.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for first in range(0, len(val[0]), 4 * self.batch_size):
                part = slice(first, first + 4 * self.batch_size)
                x, y = batch(val[0][part], val[1][part], values)
                total += loss_of(self.net_(x), y).item() * len(x)
                count += len(x)
        return total / count

    def cross_validate(
        self, df: pd.DataFrame, freq: str, h: int, n_windows: int, step_size: int,
        on_progress: ProgressFn = no_progress,
    ) -> pd.DataFrame:
        """Backtest forecasts ``unique_id, window, step, lstm`` (see ``models.backtest``).

        The network is trained once, on what precedes the first origin, and then only fed
        the more recent inputs of each later origin: retraining per window would multiply
        the costliest fit of the ensemble, and the weights never see a point they are
        scored on.
        """
        span = h + (n_windows - 1) * step_size
        self.fit(drop_last(df, span), freq, on_progress=on_progress)
        trained = set(self.series_)
        frames = []
        for window in range(n_windows):
            visible = drop_last(df, h + (n_windows - 1 - window) * step_size)
            self.series_ = self._series_state(
                [s for s in _split_series(visible, freq) if s[0] in trained])
            frames.append(with_steps(self.predict(h)).assign(window=window))
        return pd.concat(frames, ignore_index=True)

    # ------------------------------------------------------------------ predict

    def predict(self, h: int) -> pd.DataFrame:
        """Forecast ``h`` steps for every fitted series at once, feeding blocks back in."""
        self._check_fitted()
        ids = list(self.series_)
        if not ids or h < 1:
            return pd.DataFrame(
                {"unique_id": pd.Series([], dtype=object),
                 "ds": pd.Series([], dtype="datetime64[ns]"),
                 self.alias: pd.Series([], dtype=float)}
            )
        window, block = self.window_, self.output_size_
        steps = math.ceil(h / block) * block
        n_features = 2 * self.weekday_features_ + 2 * self.yearly_features_
        path = np.zeros((len(ids), window + steps), dtype=np.float32)
        calendar = np.zeros((len(ids), window + steps, n_features), dtype=np.float32)
        dates = []
        for row, uid in enumerate(ids):
            state = self.series_[uid]
            path[row, :window] = state["history"]
            span = pd.date_range(end=state["last_ds"], periods=window, freq=self.freq_)
            span = span.append(future_dates(state["last_ds"], self.freq_, steps))
            calendar[row] = _calendar_features(span, self.weekday_features_, self.yearly_features_)
            dates.append(span[window : window + h])
        fallback = torch.tensor([self.series_[uid]["scale"] for uid in ids], dtype=torch.float32)
        values, cal = torch.from_numpy(path), torch.from_numpy(calendar)
        with self._torch_context(), torch.no_grad():
            self.net_.eval()
            for start in range(0, steps, block):
                x, scale = _make_inputs(
                    values[:, start : start + window], fallback, cal[:, start : start + window]
                )
                out = (self.net_(x) * scale[:, None]).clamp_min(0.0)
                values[:, window + start : window + start + block] = out
        forecast = values[:, window : window + h].numpy().astype(np.float64)
        return pd.DataFrame(
            {
                "unique_id": np.repeat(np.array(ids, dtype=object), h),
                "ds": np.concatenate([d.values for d in dates]),
                self.alias: forecast.reshape(-1),
            }
        )

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path) -> None:
        """Write ``lstm.safetensors``, ``scalers.json`` and ``lstm.json`` under ``directory``."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.net_.state_dict().items()}
        save_file(state, str(directory / "lstm.safetensors"))
        scalers = {
            uid: {
                "scale": s["scale"],
                "last_ds": s["last_ds"].isoformat(),
                "history": s["history"],
            }
            for uid, s in self.series_.items()
        }
        (directory / "scalers.json").write_text(json.dumps({"series": scalers}))
        meta = {
            "format_version": FORMAT_VERSION,
            "alias": self.alias,
            "params": self.get_params(),
            "freq": self.freq_,
            "window": self.window_,
            "output_size": self.output_size_,
            "weekday_features": self.weekday_features_,
            "yearly_features": self.yearly_features_,
            "skipped": self.skipped_,
            "training": {
                "epochs_run": len(self.history_),
                "best_epoch": self.best_epoch_,
                "best_val_loss": self.best_val_loss_,
                "fit_seconds": self.fit_seconds_,
                "history": self.history_,
            },
        }
        (directory / "lstm.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Rebuild the network from ``lstm.json`` and load its weights (no pickle)."""
        directory = Path(directory)
        meta = json.loads((directory / "lstm.json").read_text())
        model = cls(**meta["params"])
        model.freq_ = meta["freq"]
        model.window_ = meta["window"]
        model.output_size_ = meta["output_size"]
        model.weekday_features_ = meta["weekday_features"]
        model.yearly_features_ = meta["yearly_features"]
        model.skipped_ = meta["skipped"]
        training = meta["training"]
        model.history_ = training["history"]
        model.best_epoch_ = training["best_epoch"]
        model.best_val_loss_ = training["best_val_loss"]
        model.fit_seconds_ = training["fit_seconds"]
        scalers = json.loads((directory / "scalers.json").read_text())["series"]
        model.series_ = {
            uid: {
                "scale": s["scale"],
                "last_ds": pd.Timestamp(s["last_ds"]),
                "history": s["history"],
            }
            for uid, s in scalers.items()
        }
        input_size = 2 + 2 * model.weekday_features_ + 2 * model.yearly_features_
        model.net_ = _Net(
            input_size, model.hidden_size, model.num_layers, model.dropout, model.output_size_
        )
        model.net_.load_state_dict(load_file(str(directory / "lstm.safetensors")))
        model.net_.eval()
        return model

    # ------------------------------------------------------------------ helpers

    @contextmanager
    def _torch_context(self) -> Iterator[None]:
        """Seeded RNG and optional thread count, restoring the process-wide state after."""
        threads = torch.get_num_threads()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if self.num_threads:
                torch.set_num_threads(self.num_threads)
            try:
                yield
            finally:
                torch.set_num_threads(threads)


def _split_series(df: pd.DataFrame, freq: str) -> list[tuple[str, pd.DatetimeIndex, np.ndarray]]:
    """One (id, dates, values) per series, on a gap-free calendar (missing steps sold 0)."""
    out = []
    frame = df[["unique_id", "ds", "y"]].sort_values(["unique_id", "ds"], kind="stable")
    for uid, group in frame.groupby("unique_id", sort=True):
        dates = pd.DatetimeIndex(group["ds"])
        y = group["y"].to_numpy(dtype=np.float64)
        expected = pd.date_range(dates[0], dates[-1], freq=freq)
        if len(expected) != len(dates) or not expected.equals(dates):
            y = pd.Series(y, index=dates).reindex(expected, fill_value=0.0).to_numpy()
            dates = expected
        y = np.nan_to_num(np.clip(y, 0.0, None), nan=0.0)
        out.append((str(uid), dates, y.astype(np.float32)))
    return out
