"""Health (what is being served), liveness, and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from restock.web.services import services
from restock.web.openapi import api, openapi_document, responses
from restock.web.schemas import Health, Liveness

bp = Blueprint("health", __name__)


@bp.get("/")
@api.validate(resp=responses(HTTP_200=Health), tags=["health"], security={})
def health() -> dict[str, Any]:
    """The active model and the job queue; 200 even before the first model exists."""
    s = services()
    return {"status": "ok", **s.forecasts.health(), "queue": s.queue.stats()}


@bp.get("/healthz")
@api.validate(resp=responses(HTTP_200=Liveness), tags=["health"], security={})
def healthz() -> dict[str, Any]:
    """Liveness only: answers without touching the database or the model."""
    return {"status": "ok"}


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 document generated from the request and response models."""
    return jsonify(openapi_document())
