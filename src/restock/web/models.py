"""GET /models and POST /models/<version>/activate (rollback or roll forward)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from restock.web.services import services
from restock.web.openapi import api, responses
from restock.web.schemas import Activated, ErrorBody, ModelList

bp = Blueprint("models", __name__)


@bp.get("/models")
@api.validate(resp=responses(HTTP_200=ModelList), tags=["models"])
def list_models() -> dict[str, Any]:
    """Every complete version, newest first, with its backtest MASE and which is active."""
    registry = services().registry
    return {"current": registry.current(), "items": registry.versions()}


@bp.post("/models/<version>/activate")
@api.validate(resp=responses(HTTP_200=Activated, HTTP_404=ErrorBody), tags=["models"])
def activate(version: str) -> dict[str, Any]:
    """Point ``current`` at ``version``; every worker serves it from its next request."""
    services().registry.activate(version)
    return {"model_version": version}
