"""Small synthetic panels for the model tests: a few seasonal series on any calendar."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import pytest

#: tiny but real LSTM settings: a couple of epochs over a few hundred windows
FAST_LSTM = {"max_epochs": 2, "hidden_size": 16, "windows_per_epoch": 256, "batch_size": 64}

PanelFactory = Callable[..., pd.DataFrame]


def make_panel(
    n_series: int = 3,
    n: int = 120,
    freq: str = "D",
    start: str = "2023-01-01",
    seed: int = 0,
) -> pd.DataFrame:
    """Seasonal Poisson counts with a mild trend and a different level per series."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=n, freq=freq)
    period = {"D": 7}.get(freq, 12)
    frames = []
    for i in range(n_series):
        level = 8.0 * (i + 1)
        shape = 1 + 0.4 * np.sin(2 * np.pi * np.arange(n) / period)
        y = rng.poisson(level * shape * (1 + np.arange(n) / (3 * n))).astype(float)
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": dates, "y": y}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="session")
def panel() -> PanelFactory:
    return make_panel
