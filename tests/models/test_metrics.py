"""Scores against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from restock.models.metrics import (
    bias,
    mase,
    mase_scale,
    mase_scales,
    score_series,
    smape,
    summarize,
    wape,
)


def test_mase_scale_uses_the_seasonal_lag() -> None:
    # lag 2: |3-1| + |4-2| + |9-3| = 10 over 3 differences
    assert mase_scale(np.array([1.0, 2.0, 3.0, 4.0, 9.0]), 2) == pytest.approx(10 / 3)


def test_mase_scale_falls_back_to_lag_one_when_short_or_flat_seasonally() -> None:
    # shorter than a season plus one: lag 1, |2-1| + |4-2| = 3 over 2
    assert mase_scale(np.array([1.0, 2.0, 4.0]), 7) == pytest.approx(1.5)
    # the seasonal naive is perfect (scale 0) but lag 1 is not
    assert mase_scale(np.array([1.0, 3.0, 1.0, 3.0]), 2) == pytest.approx(2.0)


def test_mase_is_undefined_for_a_constant_history() -> None:
    assert math.isnan(mase_scale(np.array([5.0, 5.0, 5.0]), 1))
    assert math.isnan(mase(np.array([1.0]), np.array([2.0]), float("nan")))


def test_mase_smape_wape_bias_by_hand() -> None:
    y, yhat = np.array([10.0, 0.0, 5.0]), np.array([8.0, 1.0, 5.0])
    assert mase(y, yhat, scale=2.0) == pytest.approx((2 + 1 + 0) / 3 / 2)
    # sMAPE terms: 2*2/18, 2*1/1, 0 -> mean * 100
    assert smape(y, yhat) == pytest.approx(100 * (4 / 18 + 2 + 0) / 3)
    assert wape(y, yhat) == pytest.approx(3 / 15)
    assert bias(y, yhat) == pytest.approx((14 - 15) / 15)


def test_zero_over_zero_terms() -> None:
    assert smape(np.zeros(3), np.zeros(3)) == 0.0
    assert math.isnan(wape(np.zeros(2), np.ones(2)))
    assert math.isnan(bias(np.zeros(2), np.ones(2)))


def test_scores_on_long_frames() -> None:
    train = pd.DataFrame(
        {"unique_id": ["a"] * 3 + ["b"] * 3, "ds": list(range(3)) * 2, "y": [1.0, 2, 4, 2, 2, 2]}
    )
    scales = mase_scales(train, "h")
    assert scales["a"] == pytest.approx(1.5) and math.isnan(scales["b"])
    test = pd.DataFrame(
        {"unique_id": ["a", "a", "b"], "y": [4.0, 4.0, 2.0], "m": [3.0, 6.0, 2.0]}
    )
    scores = score_series(test, ["m"], scales).set_index("unique_id")
    assert scores.loc["a", "mase"] == pytest.approx(1.5 / 1.5)
    assert scores.loc["b", "wape"] == 0.0
    overall = summarize(scores.reset_index())
    assert overall.loc["m", "mase"] == pytest.approx(1.0)  # b's undefined MASE is skipped
    assert overall.loc["m", "wape"] == pytest.approx((3 / 8 + 0) / 2)
