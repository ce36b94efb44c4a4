"""The forecast chart: a readable PNG for any combination of inputs, fast enough to serve."""

from __future__ import annotations

import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from restock.plotting import history_window_days, render_forecast_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_history(days: int = 730) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dates = pd.date_range("2023-01-01", periods=days)
    weekly = 15 * np.sin(np.arange(days) * 2 * np.pi / 7)
    return pd.DataFrame({"date": dates, "quantity": (50 + weekly + rng.normal(0, 5, days)).clip(0)})


def make_forecast(start: pd.Timestamp, days: int = 30) -> pd.DataFrame:
    yhat = np.full(days, 60.0)
    return pd.DataFrame(
        {
            "date": pd.date_range(start, periods=days),
            "yhat": yhat,
            "yhat_lower": yhat - 10,
            "yhat_upper": yhat + 10,
        }
    )


def decode(png: bytes) -> Image.Image:
    assert png.startswith(PNG_MAGIC)
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_png_has_expected_size_and_is_compact() -> None:
    history = make_history()
    png = render_forecast_png(
        history, make_forecast(history["date"].iloc[-1] + pd.Timedelta(days=1)),
        title="product P1", reorder_point=520.0, safety_stock=60.0,
    )
    assert 5_000 < len(png) < 400_000
    assert decode(png).size == (1000, 500)


@pytest.mark.parametrize(
    ("reorder_point", "safety_stock"),
    [(None, None), (90.0, None), (None, 15.0), (520.0, 60.0), (0.0, 0.0)],
)
def test_optional_lines(reorder_point: float | None, safety_stock: float | None) -> None:
    history = make_history(100)
    forecast = make_forecast(history["date"].iloc[-1] + pd.Timedelta(days=1))
    png = render_forecast_png(
        history, forecast, title="total", reorder_point=reorder_point, safety_stock=safety_stock
    )
    assert decode(png).size == (1000, 500)


def test_empty_history() -> None:
    empty = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), "quantity": []})
    png = render_forecast_png(
        empty, make_forecast(pd.Timestamp("2024-01-01")), title="new product",
        reorder_point=100.0, safety_stock=20.0,
    )
    assert decode(png).size == (1000, 500)


def test_empty_forecast_and_history() -> None:
    history = pd.DataFrame({"date": [], "quantity": []})
    forecast = pd.DataFrame({"date": [], "yhat": [], "yhat_lower": [], "yhat_upper": []})
    png = render_forecast_png(history, forecast, title="nothing", reorder_point=None,
                              safety_stock=None)
    assert decode(png).size == (1000, 500)


def test_weekly_string_dates_and_custom_size() -> None:
    dates = pd.date_range("2022-01-07", periods=104, freq="W-FRI")
    history = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "quantity": 100.0})
    forecast = make_forecast(dates[-1] + pd.Timedelta(days=7)).assign(
        date=pd.date_range(dates[-1] + pd.Timedelta(days=7), periods=30, freq="W-FRI")
    )
    png = render_forecast_png(history, forecast, title="weekly", reorder_point=300.0,
                              safety_stock=50.0, width_px=600, height_px=300)
    assert decode(png).size == (600, 300)


def test_history_window() -> None:
    assert history_window_days(30) == 365
    assert history_window_days(200) == 600
    assert history_window_days(5000) == 3 * 365


def test_rendering_never_imports_pyplot() -> None:
    code = (
        "import sys, pandas as pd\n"
        "from restock.plotting import render_forecast_png\n"
        "h = pd.DataFrame({'date': pd.date_range('2024-01-01', periods=5), 'quantity': 1.0})\n"
        "render_forecast_png(h, h.iloc[:0], title='t', reorder_point=1.0, safety_stock=0.5)\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_concurrent_renders() -> None:
    history = make_history(200)
    forecast = make_forecast(history["date"].iloc[-1] + pd.Timedelta(days=1))

    def render(i: int) -> bytes:
        return render_forecast_png(history, forecast, title=f"series {i}",
                                   reorder_point=400.0 + i, safety_stock=50.0)

    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(render, range(8)))
    assert all(decode(png).size == (1000, 500) for png in images)
    assert len(set(images)) == len(images)  # each title / line made its own picture
