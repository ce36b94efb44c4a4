"""GET /series (filterable, paginated) and GET /data/export.csv (streamed)."""

from __future__ import annotations

import itertools
from typing import Any

from flask import Blueprint, stream_with_context
from werkzeug.wrappers import Response

from restock.web.services import services
from restock.web.openapi import api, responses
from restock.web.schemas import ErrorBody, SeriesPage, SeriesQuery

bp = Blueprint("data", __name__)


@bp.get("/series")
@api.validate(query=SeriesQuery, resp=responses(HTTP_200=SeriesPage, HTTP_422=ErrorBody),
              tags=["data"])
def series(query: SeriesQuery) -> dict[str, Any]:
    """Stored series with row counts, date range and demand stats; repeat a filter for OR."""
    frame = services().store.series(query.product_id, query.store_id, query.category)
    page = frame.iloc[query.offset:query.offset + query.limit]
    return {"items": page.to_dict("records"), "total": int(len(frame)),
            "limit": query.limit, "offset": query.offset}


@bp.get("/data/export.csv")
@api.validate(resp=responses("HTTP_200"), tags=["data"])
def export() -> Response:
    """The whole history as canonical CSV, streamed; text cells are formula-safe.

    A plain werkzeug ``Response`` so spectree does not buffer the stream (see ``sse``).
    The header and the first chunk of rows are read before the response starts, so a
    database that fails the query is a JSON 500, not a 200 whose body stops after the
    header line (which a client would read as an empty history).
    """
    chunks = services().store.export_csv()
    head = [next(chunks), next(chunks, "")]
    response = Response(stream_with_context(itertools.chain(head, chunks)),
                        mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="sales.csv"'
    return response
