"""One table from error class to HTTP status, and one JSON shape for every error.

Domain code raises ``restock.errors`` classes and never HTTP errors; werkzeug's HTTP
exceptions (404, 405, 413, 429 from flask-limiter, ...) get the same shape, and anything
unexpected becomes a 500 that names the request id but never a path or a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from restock.errors import (
    DataValidationError,
    InvalidParameterError,
    JobConflictError,
    JobNotFoundError,
    ModelNotFoundError,
    NoModelError,
    NoScoresError,
    PlotNotFoundError,
    RequestValidationError,
    RestockError,
    TrainingError,
    UnknownSeriesError,
    UnsupportedFileError,
)
from restock.web.services import services

log = logging.getLogger(__name__)
MB = 1024 * 1024


class DisallowedHostError(RestockError):
    """The ``Host`` header names a host this server does not answer to (DNS rebinding)."""

    code = "disallowed_host"


class CrossOriginError(RestockError):
    """A state-changing request sent by a web page of another origin (CSRF)."""

    code = "cross_origin_refused"


STATUS: dict[type[RestockError], int] = {
    DisallowedHostError: 400,
    CrossOriginError: 403,
    InvalidParameterError: 400,
    UnknownSeriesError: 404,
    ModelNotFoundError: 404,
    JobNotFoundError: 404,
    PlotNotFoundError: 404,
    NoScoresError: 404,
    NoModelError: 409,
    JobConflictError: 409,
    UnsupportedFileError: 415,
    DataValidationError: 422,
    RequestValidationError: 422,
    TrainingError: 500,
    RestockError: 400,
}

#: Stable codes for the HTTP errors raised by Flask, werkzeug and flask-limiter.
HTTP_CODES: dict[int, str] = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid_request", 429: "rate_limited",
    500: "internal_error",
}


def status_for(error: RestockError) -> int:
    """The status of the nearest class in the table (every error has RestockError)."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _restock_error(error: RestockError) -> tuple[Response, int]:
    return jsonify(error_body(error.code, error.message, error.details)), status_for(error)


def _http_error(error: HTTPException) -> Response:
    """Keep werkzeug's status and headers (Allow, Retry-After), replace the HTML body."""
    response = error.get_response()
    status = error.code or 500
    code = HTTP_CODES.get(status, (error.name or "error").lower().replace(" ", "_"))
    message = error.description or error.name
    details = None
    if status == 429:
        message = f"rate limit exceeded ({error.description}); retry later"
    if status == 413:
        message, details = _too_large()
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="restock"'
    response.set_data(jsonify(error_body(code, message, details)).get_data())
    response.content_type = "application/json"
    return response


def _too_large() -> tuple[str, dict[str, float | None]]:
    """What was sent and what is allowed, in MB, naming the setting that sets the limit.

    A chunked upload has no declared length: werkzeug stops reading at the limit.
    """
    limit = services().settings.max_upload_mb
    sent = request.content_length
    size = None if sent is None else round(sent / MB, 1)
    if size is None:
        message = f"the upload is larger than the limit, RESTOCK_MAX_UPLOAD_MB = {limit:g} MB"
    else:
        message = f"the upload is {size:g} MB; the limit is RESTOCK_MAX_UPLOAD_MB = {limit:g} MB"
    return message, {"size_mb": size, "limit_mb": limit}


def _unexpected(error: Exception) -> tuple[Response, int]:
    request_id = getattr(g, "request_id", None)
    log.exception("unhandled error in request %s", request_id)
    return jsonify(error_body("internal_error", "internal server error; the log has details",
                              {"request_id": request_id})), 500


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(RestockError, _restock_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
