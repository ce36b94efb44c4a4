"""PNG charts of a forecast: rendered on request (``plot: true``), kept for an hour.

Every plotted request writes a file, so a busy server sweeps old ones; ids are server-made
hex, so a plot id from a URL can never name another file.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pandas as pd

from restock.errors import PlotNotFoundError
from restock.inventory import InventoryPlan
from restock.plotting import render_forecast_png
from restock.serving.selection import Selection
from restock.snapshot import Snapshot

#: how long a rendered plot stays downloadable
PLOT_TTL_SECONDS = 3600


def title_of(snapshot: Snapshot, chosen: Selection) -> str:
    """"All products", or the first few selected products and stores."""
    if chosen.is_total:
        return "All products"
    position = chosen.positions
    products, stores = (snapshot.keys[k] for k in ("product_id", "store_id"))
    names = sorted(set(products.values[products.codes[position]].tolist()))
    title = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    shown = sorted(set(stores.values[stores.codes[position]].tolist()) - {""})
    if shown:
        title += " @ " + ", ".join(shown[:3]) + ("..." if len(shown) > 3 else "")
    return title


class PlotStore:
    """Renders forecast charts into ``folder`` and finds them again by id."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._last_sweep = 0.0

    def render(self, title: str, history: pd.DataFrame, forecast: pd.DataFrame,
               plan: InventoryPlan) -> str:
        """Write the chart and the seed's "latest plot" file; returns the new plot id."""
        png = render_forecast_png(history, forecast, title=f"Demand forecast: {title}",
                                  reorder_point=plan.reorder_point,
                                  safety_stock=plan.safety_stock)
        plot_id = self.save(png)
        latest = self.folder / f".forecast_plot.{plot_id}.tmp"
        latest.write_bytes(png)
        latest.replace(self.folder / "forecast_plot.png")
        return plot_id

    def save(self, png: bytes) -> str:
        """Keep a rendered PNG (any chart) under a new id, downloadable for an hour."""
        plot_id = uuid.uuid4().hex
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sweep()
        (self.folder / f"{plot_id}.png").write_bytes(png)
        return plot_id

    def _sweep(self) -> None:
        """Delete plots older than ``PLOT_TTL_SECONDS`` (at most one sweep a minute)."""
        now = time.time()
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        for path in self.folder.glob("*.png"):
            try:
                expired = path.stat().st_mtime < now - PLOT_TTL_SECONDS
                if expired and path.name != "forecast_plot.png":
                    path.unlink()
            except FileNotFoundError:
                continue  # another worker swept it first

    def path(self, plot_id: str) -> Path:
        """The PNG of an earlier request; anything but a server-made id is unknown."""
        if len(plot_id) != 32 or any(c not in "0123456789abcdef" for c in plot_id):
            raise PlotNotFoundError(f"no plot {plot_id!r}")
        path = self.folder / f"{plot_id}.png"
        if not path.exists():
            raise PlotNotFoundError(f"no plot {plot_id!r}")
        return path
