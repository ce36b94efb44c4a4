"""POST /forecast (from the precomputed cache, milliseconds) and GET /plots/<id>.png."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request, url_for
from werkzeug.utils import send_file
from werkzeug.wrappers import Response

from restock.query import ForecastQuery, InventoryPolicy, parts
from restock.web.jsonbody import json_answer, json_body
from restock.web.openapi import api, responses
from restock.web.schemas import ErrorBody, ForecastRequest, ForecastResponse
from restock.web.services import services

bp = Blueprint("forecast", __name__)


@bp.post("/forecast")
@api.validate(json=ForecastRequest, tags=["forecast"], resp=responses(
    HTTP_200=ForecastResponse, HTTP_400=ErrorBody, HTTP_404=ErrorBody, HTTP_409=ErrorBody,
    HTTP_415=ErrorBody, HTTP_422=ErrorBody))
def forecast(json: ForecastRequest) -> Response:
    """Forecast, inventory plan and warnings for the series selected by the filters."""
    result = services().forecasts.forecast(*parts(json_body(json), ForecastQuery,
                                                  InventoryPolicy))
    plot_id = result.pop("plot_id", None)
    if plot_id:
        result["plot_url"] = url_for("forecast.plot", plot_id=plot_id)
    return json_answer(result)


@bp.get("/plots/<plot_id>.png")
@api.validate(resp=responses("HTTP_200", HTTP_404=ErrorBody), tags=["forecast"])
def plot(plot_id: str) -> Response:
    """The PNG rendered for an earlier ``plot: true`` forecast.

    werkzeug's ``send_file`` (not Flask's) so spectree does not read the body (see ``sse``).
    """
    return send_file(services().forecasts.plot_path(plot_id), request.environ,
                     mimetype="image/png", max_age=3600)
