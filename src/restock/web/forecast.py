"""POST /forecast (from the precomputed cache, milliseconds) and GET /plots/<id>.png."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request, url_for
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.utils import send_file
from werkzeug.wrappers import Response

from restock.web.services import services
from restock.web.openapi import api, responses
from restock.web.schemas import ErrorBody, ForecastRequest, ForecastResponse

bp = Blueprint("forecast", __name__)


@bp.post("/forecast")
@api.validate(json=ForecastRequest, tags=["forecast"], resp=responses(
    HTTP_200=ForecastResponse, HTTP_400=ErrorBody, HTTP_404=ErrorBody, HTTP_409=ErrorBody,
    HTTP_415=ErrorBody, HTTP_422=ErrorBody))
def forecast(json: ForecastRequest) -> ForecastResponse:
    """Forecast, inventory plan and warnings for the series selected by the filters."""
    if json is None or (request.get_data(cache=True) and not request.is_json):
        # spectree reads any non-form body as JSON-or-nothing; a text body is a mistake
        raise UnsupportedMediaType("send the request as application/json")
    result = services().forecasts.forecast(**json.model_dump())
    plot_id = result.pop("plot_id", None)
    if plot_id:
        result["plot_url"] = url_for("forecast.plot", plot_id=plot_id)
    # a model instance is validated once by pydantic; a plain dict would also be walked
    # recursively by spectree (a year of history points made that the costliest step)
    return ForecastResponse.model_validate(result)


@bp.get("/plots/<plot_id>.png")
@api.validate(resp=responses("HTTP_200", HTTP_404=ErrorBody), tags=["forecast"])
def plot(plot_id: str) -> Response:
    """The PNG rendered for an earlier ``plot: true`` forecast.

    werkzeug's ``send_file`` (not Flask's) so spectree does not read the body (see ``sse``).
    """
    return send_file(services().forecasts.plot_path(plot_id), request.environ,
                     mimetype="image/png", max_age=3600)
