"""GET /jobs/<id>, its SSE event stream, and DELETE to cancel."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from werkzeug.wrappers import Response

from restock.web.services import services
from restock.web.openapi import api, responses
from restock.web.schemas import ErrorBody, JobBody
from restock.web.sse import last_event_id, sse_response

bp = Blueprint("jobs", __name__)


@bp.get("/jobs/<job_id>")
@api.validate(resp=responses(HTTP_200=JobBody, HTTP_404=ErrorBody), tags=["jobs"])
def job(job_id: str) -> dict[str, Any]:
    """The job's status, stage, progress and outcome."""
    return services().queue.get(job_id).to_dict()


@bp.get("/jobs/<job_id>/events")
@api.validate(resp=responses("HTTP_200", HTTP_400=ErrorBody, HTTP_404=ErrorBody),
              tags=["jobs"])
def events(job_id: str) -> Response:
    """text/event-stream of the job's events; ``Last-Event-ID`` resumes after that id."""
    return sse_response(services().streams, job_id, last_event_id())


@bp.delete("/jobs/<job_id>")
@api.validate(resp=responses(HTTP_200=JobBody, HTTP_202=JobBody, HTTP_404=ErrorBody,
                             HTTP_409=ErrorBody), tags=["jobs"])
def cancel(job_id: str) -> tuple[dict[str, Any], int]:
    """Cancel: 200 when a queued job is cancelled, 202 while a running one winds down."""
    cancelled = services().queue.cancel(job_id)
    return cancelled.to_dict(), 200 if cancelled.finished else 202
