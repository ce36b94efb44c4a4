"""POST /items and GET /items: the item and supplier settings (``restock.data.items``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.wrappers import Response

from restock.data.items import settings_csv, settings_records
from restock.web.openapi import api, responses
from restock.web.retrain import check_csv_upload, check_upload_fields
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
    if form is None:  # spectree passes None when the body is not a form
        raise UnsupportedMediaType("send multipart/form-data with the CSV in the field 'file'")
    if not isinstance(form.file, FileStorage):
        raise UnsupportedMediaType("the field 'file' must be a file upload")
    check_csv_upload(form.file)
    return services().store.replace_items(form.file.read(), form.file.filename)


@bp.get("/items")
@api.validate(tags=["data"], resp=responses("HTTP_200"))
def items() -> Response:
    """The item settings in force: ``{upload, items}``, each item its ``product_id``,
    ``store_id`` (null: every store) and settings (null: not set); CSV (``Accept:
    text/csv``) in the upload's own columns, ready to edit and send back."""
    store = services().store
    frame = store.item_settings()
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        return current_app.response_class(settings_csv(frame), mimetype="text/csv", headers={
            "Content-Disposition": 'attachment; filename="items.csv"'})
    return current_app.response_class(
        current_app.json.dumps({**store.items_summary(), "items": settings_records(frame)}),
        mimetype="application/json")
