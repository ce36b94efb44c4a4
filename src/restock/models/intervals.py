"""Prediction-interval widths from backtest residuals: the one place they are computed.

Intervals come from errors the ensemble actually made on held-out data rather than from a
model's own assumptions (Prophet's and the LSTM's would disagree, and neither knows about
the other). The estimate per horizon step is:

- the empirical statistic of the residuals at that step when there are at least
  ``MIN_PER_STEP`` of them (many series or many backtest windows);
- otherwise the statistic of all residuals pooled over steps: a single series with one
  window has one residual per step, far too few for a 95% quantile of its own;
- made non-decreasing in the step (an interval never narrows further out) by a weighted
  isotonic fit, not a running maximum: per-step quantiles are noisy, and the running
  maximum carries the noisiest early high one to every later step (on daily data, whose
  error hardly grows with the step, it widened every interval; pizzaplace's 95% intervals
  covered 99.1% of the test, and 96.6% with the isotonic fit);
- beyond the last backtested step ``H``, the width at ``H`` grown by ``sqrt(step / H)``,
  the growth of a random walk's error, since nothing was measured there. A power fitted
  to the measured widths was tried instead (bench/results/accuracy.md): closer when few
  steps are measured, but on M3 the errors beyond step 12 grow faster than the backtest's
  before it, and the fitted growth under-covered there (90.4% against 92.4%); too wide
  costs safety stock, too narrow costs stockouts.

The same function serves a single series and a group: the serving layer sums a group's
backtest actuals and predictions per (cutoff, step) and passes the summed residuals.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd
from scipy.optimize import isotonic_regression

#: residuals a step needs before its own quantile is trusted over the pooled one
MIN_PER_STEP = 20


def interval_half_widths(residuals: pd.DataFrame, h: int, level: float) -> np.ndarray:
    """Half-widths of the ``level`` prediction interval for steps ``1..h``.

    ``residuals`` has columns ``step`` (1-based) and ``residual`` (prediction - actual, or
    the reverse: only magnitudes matter). No residuals at all give zero widths.
    """
    return half_widths(residuals["step"].to_numpy(int), residuals["residual"].to_numpy(float),
                       h, level)


def half_widths(steps: np.ndarray, residuals: np.ndarray, h: int, level: float) -> np.ndarray:
    """:func:`interval_half_widths` on arrays (``steps[i]`` is ``residuals[i]``'s step):
    what a request computes, without building a frame."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return _per_step(steps, residuals, h, lambda r: _conformal_quantile(np.abs(r), level))


def residual_sigma(residuals: pd.DataFrame, h: int) -> np.ndarray:
    """Root-mean-square residual for steps ``1..h``: the forecast error's sigma (safety stock)."""
    return sigma_per_step(residuals["step"].to_numpy(int),
                          residuals["residual"].to_numpy(float), h)


def sigma_per_step(steps: np.ndarray, residuals: np.ndarray, h: int) -> np.ndarray:
    """:func:`residual_sigma` on arrays, as :func:`half_widths` is to its frame version."""
    def rms(r: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):  # a row with no residual here: NaN, then pooled
            return np.sqrt(np.nansum(np.square(r), axis=-1) / np.isfinite(r).sum(axis=-1))
    return _per_step(steps, residuals, h, rms)


def _conformal_quantile(values: np.ndarray, level: float) -> np.ndarray:
    """The ``level`` quantile (of the last axis) with the split-conformal finite-sample
    correction, over each row's finite values (NaN for a row without any)."""
    n = np.isfinite(values).sum(axis=-1)
    rank = np.minimum(n, np.ceil((n + 1) * level).astype(np.int64))
    ordered = np.sort(values, axis=-1)  # NaN last
    found = np.take_along_axis(ordered, np.maximum(rank - 1, 0)[..., None], axis=-1)[..., 0]
    return np.where(n > 0, found, np.nan)


def _per_step(
    all_steps: np.ndarray, residuals: np.ndarray, h: int,
    statistic: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Apply ``statistic`` per step with pooling, monotonicity and sqrt extrapolation.

    ``residuals`` is one series' [B] or many series' [N, B] (a plan); ``statistic`` reduces
    the last axis over its finite values. A NaN residual is a backtest point that was not
    scored (a column the series lacks, or a period censored by a stockout): it counts
    neither as an error nor as a hit. A row's step with fewer than ``MIN_PER_STEP`` of its
    own residuals takes its pooled figure; the result is [h] or [N, h].
    """
    residuals = np.asarray(residuals, dtype=float)
    lead = residuals.shape[:-1]
    if h < 1:
        return np.zeros((*lead, 0))
    finite = np.isfinite(residuals).reshape(-1, residuals.shape[-1]).any(axis=0) \
        if residuals.size else np.zeros(residuals.shape[-1], bool)
    if not finite.any():
        return np.zeros((*lead, h))
    steps = np.asarray(all_steps, dtype=int)[finite]
    values = residuals[..., finite]
    pooled = np.asarray(statistic(values), dtype=float)
    horizon = int(steps.max())
    # every measured step is fitted, whatever ``h``: a step's width does not depend on how
    # far ahead the caller asks
    observed = np.repeat(pooled[..., None], horizon, axis=-1)
    counts = np.ones((*lead, horizon))
    for step in range(horizon):
        at = values[..., steps == step + 1]
        count = np.isfinite(at).sum(axis=-1)
        counts[..., step] = np.maximum(count, 1)
        enough = count >= MIN_PER_STEP  # the others: pooled
        if enough.any():
            observed[..., step] = np.where(enough, statistic(at), observed[..., step])
    observed = _non_decreasing(observed, counts)
    if h <= horizon:
        return observed[..., :h]
    beyond = np.arange(horizon + 1, h + 1)
    return np.concatenate([observed, observed[..., -1:] * np.sqrt(beyond / horizon)], axis=-1)


def _non_decreasing(widths: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The closest non-decreasing rows (least squares weighted by each step's residual
    count): a step's noisy estimate is averaged with the neighbours it contradicts."""
    flat = np.array(widths, dtype=float).reshape(-1, widths.shape[-1])
    weights = counts.reshape(flat.shape)
    with np.errstate(invalid="ignore"):
        falling = (np.diff(flat, axis=-1) < 0).any(axis=-1)
    for row in np.flatnonzero(falling):  # a pooled row is constant: nothing to fit
        flat[row] = isotonic_regression(flat[row], weights=weights[row]).x
    return flat.reshape(widths.shape)
