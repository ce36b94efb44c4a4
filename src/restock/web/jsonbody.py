"""JSON in and out of the web layer: strictly standard JSON, whatever the numbers do.

Python's ``json`` writes ``NaN`` and ``Infinity`` for non-finite floats and reads them
back, but they are not JSON: browsers' ``JSON.parse`` and most clients reject the whole
body. A number that overflowed (a mean of huge quantities, an error's echo of an absurd
parameter) must not break the response, so non-finite floats are written as ``null``.
The fast path is one ``allow_nan=False`` dump; only a body that actually holds a
non-finite float is walked and dumped again. Reading refuses the same literals and JSON
nested deeper than the parser's recursion limit, as ``ValueError`` (a 400), not a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from flask import current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.wrappers import Response

Body = TypeVar("Body")


class JSONDecodeProblem(ValueError):
    """A request body that is not standard JSON, with a message for the client."""


def finite(value: Any, default: Callable[[Any], Any] | None = None) -> Any:
    """``value`` with every non-finite float (at any depth) replaced by ``None``.

    ``default`` (json's hook for other types) is applied first where json would call it,
    so the floats of what it returns (a dataclass's fields) are cleaned too.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item, default) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item, default) for item in value]
    if value is None or isinstance(value, (str, int)) or default is None:
        return value
    return finite(default(value), default)


def dumps_finite(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never emits ``NaN``/``Infinity`` (they become ``null``)."""
    kwargs["allow_nan"] = False
    try:
        return json.dumps(obj, **kwargs)
    except ValueError:  # "Out of range float values are not JSON compliant"
        return json.dumps(finite(obj, kwargs.get("default")), **kwargs)


def _no_constants(name: str) -> Any:
    raise JSONDecodeProblem(f"{name} is not a JSON value (send a finite number or null)")


def loads_strict(data: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` without ``NaN``/``Infinity`` and without a 500 on deep nesting."""
    kwargs.setdefault("parse_constant", _no_constants)
    try:
        return json.loads(data, **kwargs)
    except RecursionError:
        raise JSONDecodeProblem("the JSON is nested too deeply") from None


def _default(value: Any) -> Any:
    """Flask's extra types, plus uploaded files by name: spectree echoes a rejected form's
    values (a file under an unexpected field) into a body it builds before our hook runs."""
    if isinstance(value, FileStorage):
        return {"filename": value.filename, "content_type": value.content_type}
    return DefaultJSONProvider.default(value)


class FiniteJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider (``app.json``) with ``dumps_finite`` and ``loads_strict``."""

    default = staticmethod(_default)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return dumps_finite(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads_strict(s, **kwargs)


def json_body(body: Body | None) -> Body:
    """A JSON-only endpoint's validated body; 415 for any other kind of body (spectree
    reads every non-form body as JSON-or-nothing, so a text body would pass as none)."""
    if body is None or (request.get_data(cache=True) and not request.is_json):
        raise UnsupportedMediaType("send the request as application/json")
    return body


def wants_csv() -> bool:
    """The client's ``Accept`` prefers CSV to JSON (a browser's download, a spreadsheet)."""
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


def csv_attachment(body: Any, filename: str) -> Response:
    """A CSV answer (text, or an iterable of chunks to stream) saved as ``filename``."""
    return current_app.response_class(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


def json_answer(value: Any) -> Response:
    """``value`` encoded once by orjson (a non-finite float becomes null, as the app's
    provider writes it); spectree then checks the bytes against the response model."""
    return current_app.response_class(orjson.dumps(value), mimetype="application/json")
