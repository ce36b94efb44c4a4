"""POST /items and GET /items: the item and supplier settings (``restock.data.items``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from werkzeug.wrappers import Response

from restock.data.items import settings_csv
from restock.web.jsonbody import csv_attachment, wants_csv
from restock.web.openapi import api, responses
from restock.web.retrain import check_upload_fields, uploaded_csv
from restock.web.schemas import ErrorBody, ItemsForm, ItemsUploaded
from restock.web.services import services

bp = Blueprint("items", __name__)


@bp.post("/items")
@api.validate(form=ItemsForm, tags=["data"], before=check_upload_fields, resp=responses(
    HTTP_200=ItemsUploaded, HTTP_400=ErrorBody, HTTP_413=ErrorBody, HTTP_415=ErrorBody,
    HTTP_422=ErrorBody))
def upload(form: ItemsForm) -> dict[str, Any]:
    """Replace the item settings with the CSV's rows, all or none (any bad cell, unknown
    product or duplicate row rejects the file and keeps the settings in force). Planning
    uses them from the next request on: a request's value wins over an item's, an item's
    over the default; a row without store_id applies to every store of its product."""
    upload = uploaded_csv(form)
    return services().store.replace_items(upload.read(), upload.filename)


@bp.get("/items")
@api.validate(tags=["data"], resp=responses("HTTP_200"))
def items() -> Response:
    """The item settings in force: ``{upload, items}``, each item its ``product_id``,
    ``store_id`` (null: every store) and settings (null: not set); CSV (``Accept:
    text/csv``) in the upload's own columns, ready to edit and send back."""
    store = services().store
    frame = store.item_settings()
    if wants_csv():
        return csv_attachment(settings_csv(frame), "items.csv")
    return current_app.response_class(current_app.json.dumps(store.items_in_force(frame)),
                                      mimetype="application/json")
