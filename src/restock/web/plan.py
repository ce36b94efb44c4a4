"""GET /plan: the replenishment plan of every selected series, as JSON or CSV."""

from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from restock.query import split
from restock.web.jsonbody import csv_attachment, json_answer, wants_csv
from restock.web.openapi import api, responses
from restock.web.schemas import ErrorBody, PlanQuery
from restock.web.services import services

bp = Blueprint("plan", __name__)


@bp.get("/plan")
@api.validate(query=PlanQuery, tags=["forecast"], resp=responses(
    "HTTP_200", HTTP_400=ErrorBody, HTTP_404=ErrorBody, HTTP_409=ErrorBody, HTTP_422=ErrorBody))
def plan(query: PlanQuery) -> Response:
    """What to order today: one row per (product, store) series selected by the
    ``/forecast`` filters (all series without one), most urgent first, with on hand,
    on order, inventory position, demand over the protection interval, safety stock,
    reorder point, order-up-to level, order now, suggested quantity after the item's
    constraints and its explanation, projected stockout, days of cover, ABC/XYZ class and
    warning codes. Each row equals ``POST /forecast`` for that series
    with the same policy. CSV (``format=csv`` or ``Accept: text/csv``) has the same
    columns, named for an ERP import; JSON adds the policy and what the columns mean.
    """
    # only what the query gave: a given field wins over item settings, a default does not
    values = query.model_dump(exclude={"format"}, exclude_none=True, exclude_unset=True)
    result = services().forecasts.plan(*split(values))
    if (query.format or ("csv" if wants_csv() else "json")) == "csv":
        return csv_attachment(result.csv(), "plan.csv")
    return json_answer(result.to_dict())
