"""Interval widths from residuals: per step, pooled, monotone, extrapolated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from restock.models.intervals import (MIN_PER_STEP, half_widths, interval_half_widths,
                                     residual_sigma, sigma_per_step)


def frame(steps: np.ndarray, residuals: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"cutoff": 0, "step": steps, "residual": residuals})


def test_one_series_pools_its_few_residuals_and_grows_beyond_the_backtest() -> None:
    residuals = frame(np.arange(1, 5), np.array([1.0, -2.0, 3.0, -4.0]))
    widths = interval_half_widths(residuals, 8, level=0.5)
    # conformal rank ceil(5 * 0.5) = 3 of sorted |r| = [1, 2, 3, 4]
    assert widths[:4] == pytest.approx([3.0] * 4)
    assert widths[4:] == pytest.approx(3.0 * np.sqrt(np.arange(5, 9) / 4))


def test_steps_with_enough_residuals_use_their_own_quantile_and_never_narrow() -> None:
    n = MIN_PER_STEP
    steps = np.repeat([1, 2, 3], n)
    values = np.concatenate([np.full(n, 1.0), np.full(n, 5.0), np.full(n, 2.0)])
    widths = interval_half_widths(frame(steps, values), 3, level=0.9)
    # own quantiles 1, 5, 2: the step that contradicts the rise is averaged with the one
    # before it (equal counts), not lifted to its maximum
    assert widths == pytest.approx([1.0, 3.5, 3.5])


def test_a_steps_width_does_not_depend_on_how_far_ahead_is_asked() -> None:
    n = MIN_PER_STEP
    steps = np.repeat([1, 2, 3], n)
    values = np.concatenate([np.full(n, 3.0), np.full(n, 1.0), np.full(n, 0.5)])
    full = interval_half_widths(frame(steps, values), 3, level=0.9)
    assert full == pytest.approx([1.5, 1.5, 1.5])  # falling widths: one isotonic level
    for h in (1, 2):
        assert interval_half_widths(frame(steps, values), h, level=0.9) == pytest.approx(
            full[:h])


def test_errors_that_do_not_grow_keep_their_nominal_coverage() -> None:
    """Flat errors over 28 steps, 60 residuals per step (a daily backtest): the monotone
    fit must not carry one step's noisy high quantile to every later step (a running
    maximum covered 94-96% of fresh errors with 90% intervals in this set-up)."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        steps = np.tile(np.arange(1, 29), 60)
        widths = interval_half_widths(frame(steps, rng.normal(size=len(steps))), 28, 0.9)
        assert (np.diff(widths) >= 0).all()
        covered = (np.abs(rng.normal(size=(4000, 28))) <= widths).mean()
        assert 0.88 < covered < 0.93


def test_widths_grow_with_the_level_and_handle_no_residuals() -> None:
    rng = np.random.default_rng(0)
    residuals = frame(np.tile(np.arange(1, 11), 30), rng.normal(size=300))
    assert (interval_half_widths(residuals, 10, 0.95) >= interval_half_widths(residuals, 10, 0.8)).all()
    empty = frame(np.array([], dtype=int), np.array([]))
    assert interval_half_widths(empty, 4, 0.95) == pytest.approx(np.zeros(4))
    with pytest.raises(ValueError):
        interval_half_widths(residuals, 4, 1.5)


def test_coverage_of_a_sum_of_series() -> None:
    rng = np.random.default_rng(1)
    steps = np.tile(np.arange(1, 29), 40)
    residuals = frame(steps, rng.normal(scale=np.sqrt(steps)))  # errors growing like sqrt(step)
    widths = interval_half_widths(residuals, 28, 0.9)
    fresh = rng.normal(scale=np.sqrt(np.arange(1, 29)), size=(2000, 28))
    assert 0.85 < (np.abs(fresh) <= widths).mean() < 0.95


def test_sigma_is_the_rms_per_step() -> None:
    residuals = frame(np.array([1, 2, 3]), np.array([3.0, -4.0, 0.0]))
    assert residual_sigma(residuals, 3) == pytest.approx([5 / np.sqrt(3)] * 3)


def test_unscored_points_are_neither_errors_nor_hits() -> None:
    """A NaN residual (a period censored by a stockout, a column a series lacks) is left
    out, row by row: it used to count as a zero error and shrink the sigma."""
    steps = np.array([1, 2, 3, 1, 2, 3])
    full = np.array([2.0, -3.0, 1.0, 4.0, 2.0, -1.0])
    censored = full.copy()
    censored[[1, 4]] = np.nan
    kept = np.isfinite(censored)
    alone = sigma_per_step(steps[kept], full[kept], 3)
    assert sigma_per_step(steps, censored, 3) == pytest.approx(alone)
    plan = sigma_per_step(steps, np.stack([censored, full]), 3)
    assert plan[0] == pytest.approx(alone)
    assert plan[1] == pytest.approx(sigma_per_step(steps, full, 3))
    assert half_widths(steps, censored, 3, 0.8) == pytest.approx(
        half_widths(steps[kept], full[kept], 3, 0.8))
