"""The browser page (retrain.html, owned by the UI): /ui and /retrain.html."""

from __future__ import annotations

from flask import Blueprint, current_app, send_from_directory
from flask.typing import ResponseReturnValue

bp = Blueprint("ui", __name__)


@bp.get("/ui")
@bp.get("/retrain.html")
def page() -> ResponseReturnValue:
    """Served without a token: the page itself asks for one."""
    return send_from_directory(current_app.static_folder or "", "retrain.html",
                               max_age=0)
