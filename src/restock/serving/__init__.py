"""Serving forecasts from the active model version: one job per module.

``selection`` (filters -> rows), ``aggregation`` (sums, intervals, error sigma),
``plans`` (the replenishment plan of many series),
``warnings``, ``stock`` (on hand now), ``plots``, and ``service`` (``ForecastService``,
which runs them for a request). The arrays come from :mod:`restock.snapshot`.
"""

from restock.serving.service import ForecastService, LoadedModel

__all__ = ["ForecastService", "LoadedModel"]
