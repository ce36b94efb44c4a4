"""GET /accuracy: how the forecasts of served model versions fared against the actuals."""

from __future__ import annotations

from flask import Blueprint

from restock.accuracy import accuracy_report
from restock.web.openapi import api, responses
from restock.web.schemas import AccuracyQuery, AccuracyReport, ErrorBody
from restock.web.services import services

bp = Blueprint("accuracy", __name__)


@bp.get("/accuracy")
@api.validate(query=AccuracyQuery, tags=["accuracy"], resp=responses(
    HTTP_200=AccuracyReport, HTTP_400=ErrorBody, HTTP_404=ErrorBody, HTTP_422=ErrorBody))
def accuracy(query: AccuracyQuery) -> AccuracyReport:
    """Live MASE, WAPE, bias, interval coverage and value added over seasonal naive, per
    series, category, store and in total, for each version that forecast the selection;
    ``model_degraded`` and ``forecast_bias`` warnings. Repeat a filter for OR."""
    s = services()
    return AccuracyReport.model_validate(accuracy_report(s.store, s.registry,
                                                         **query.model_dump()))
