"""The spectree instance: validates requests against ``schemas`` and builds the OpenAPI doc.

Views are decorated with ``api.validate(...)``; a validation failure is turned into the
one error shape (``restock.query.invalid_request`` -> 422) instead of spectree's own body. The
spec is generated from the decorated routes of whichever app asks first; every app the
factory builds has the same routes, so the cached document is the same for all.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from spectree import Response, SecurityScheme, SecuritySchemeData, SpecTree
from werkzeug.exceptions import BadRequest

from restock import __version__
from restock.query import invalid_request, problems_of
from restock.web.schemas import ErrorBody


def reject_invalid(req: Any, _resp: Any, error: Exception | None, _instance: Any,
                   _adapter: Any) -> None:
    """Raise our 422 for a schema mismatch, and a 400 for JSON that does not parse.

    spectree reads the body with ``get_json(silent=True) or {}``, which would quietly turn
    a malformed body into an all-defaults request.
    """
    if req.is_json and req.get_data(cache=True).strip() and req.get_json(silent=True) is None:
        try:
            current_app.json.loads(req.get_data(cache=True))
        except ValueError as exc:  # the parser's own words: what and where
            raise BadRequest(f"the request body is not valid JSON: {exc}") from None
        raise BadRequest("the request body is null; send a JSON object")
    if error is not None:
        raise invalid_request(problems_of(error))  # type: ignore[arg-type]


api = SpecTree(
    "flask",
    title="restock API",
    version=__version__,
    description="Demand forecasting and inventory planning: upload sales, retrain in the "
                "background with streamed progress, forecast with inventory metrics.",
    path="apidoc",
    mode="strict",
    before=reject_invalid,
    validation_error_status=422,
    security_schemes=[SecurityScheme(
        name="bearer", data=SecuritySchemeData(type="http", scheme="bearer"))],
    security={"bearer": []},
)

#: Statuses every protected JSON endpoint can answer with, documented once: 400 for a Host
#: not in RESTOCK_ALLOWED_HOSTS, 403 for a POST/PUT/PATCH/DELETE from a foreign web origin.
COMMON_ERRORS = {"HTTP_400": ErrorBody, "HTTP_401": ErrorBody, "HTTP_403": ErrorBody,
                 "HTTP_429": ErrorBody}


def responses(*bare: str, **codes: Any) -> Response:
    """A spectree ``Response`` with the common error statuses added.

    ``bare`` lists statuses without a JSON body model (a stream, a file).
    """
    return Response(*bare, **{**COMMON_ERRORS, **codes})


def openapi_document() -> dict[str, Any]:
    return api.spec
