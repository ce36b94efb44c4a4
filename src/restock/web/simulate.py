"""POST /simulate: replay inventory policies over the active version's backtest windows."""

from __future__ import annotations

from flask import Blueprint, url_for
from werkzeug.wrappers import Response

from restock.query import InventoryPolicy, parts
from restock.simulation import SimulationOptions, chart
from restock.simulation import simulate as run_simulation
from restock.web.jsonbody import json_answer, json_body
from restock.web.openapi import api, responses
from restock.web.schemas import ErrorBody, SimulateRequest, SimulateResponse
from restock.web.services import services

bp = Blueprint("simulate", __name__)


@bp.post("/simulate")
@api.validate(json=SimulateRequest, tags=["forecast"], resp=responses(
    HTTP_200=SimulateResponse, HTTP_400=ErrorBody, HTTP_404=ErrorBody, HTTP_409=ErrorBody,
    HTTP_415=ErrorBody, HTTP_422=ErrorBody))
def simulate(json: SimulateRequest) -> Response:
    """Achieved cycle service level, fill rate, stockouts, average stock and orders of
    restock's policy, the seed's rule and a min/max rule, replayed on the same demand.

    Reads the active version only: nothing stored changes."""
    options, policy = parts(json_body(json), SimulationOptions, InventoryPolicy)
    forecasts = services().forecasts
    model = forecasts.model()
    report, runs = run_simulation(model.snapshot, model.version, policy, options)
    if options.plot:
        plot_id = forecasts.plots.save(chart(report, runs))
        report["plot_url"] = url_for("forecast.plot", plot_id=plot_id)
    return json_answer(report)
