"""POST /retrain: validate and merge an upload synchronously, then queue the retrain."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from flask import Blueprint, request, url_for
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.wrappers import Response

from restock.web.services import services
from restock.web.openapi import api, reject_invalid, responses
from restock.web.schemas import ErrorBody, RetrainAccepted, RetrainForm
from restock.web.sse import sse_response

bp = Blueprint("retrain", __name__)

CSV_SUFFIXES = frozenset({"", ".csv", ".txt", ".tsv"})
CSV_MIMETYPES = frozenset({"", "text/csv", "text/plain", "application/csv",
                           "text/tab-separated-values", "application/vnd.ms-excel",
                           "application/octet-stream"})


def uploaded_csv(form: Any) -> FileStorage:
    """The CSV file of an upload form (sales or item settings), or the 415 that says what
    was sent instead."""
    if form is None:  # spectree passes None when the body is not a form
        raise UnsupportedMediaType("send multipart/form-data with the CSV in the field 'file'")
    if not isinstance(form.file, FileStorage):
        raise UnsupportedMediaType("the field 'file' must be a file upload")
    check_csv_upload(form.file)
    return form.file


def check_csv_upload(upload: FileStorage) -> None:
    """415 for files that announce themselves as something else (xlsx, zip, images).

    The parser still sniffs the bytes (gzip, binary) whatever the name says.
    """
    suffix = PurePath(upload.filename or "").suffix.lower()
    if suffix not in CSV_SUFFIXES or (upload.mimetype or "") not in CSV_MIMETYPES:
        raise UnsupportedMediaType(
            f"expected a CSV file, got {suffix or 'no extension'} ({upload.mimetype or '?'})")


def check_upload_fields(req: Any, resp: Any, error: Exception | None, instance: Any,
                        adapter: Any) -> None:
    """400 naming the mistake when the multipart body does not hold one file in 'file'
    (``curl -F data=@f.csv``, two files), then the usual schema check (``reject_invalid``).

    Without it, a file under another name reached the schema's "extra field" error.
    """
    files = req.files if req.mimetype == "multipart/form-data" else {}
    others = [name[:100] for name in files if name != "file"]
    if "file" not in files and others:
        raise BadRequest(f"send the CSV as the multipart field 'file' (got field {others[0]!r})")
    count = len(files.getlist("file")) if "file" in files else 0
    if count > 1:
        raise BadRequest(f"send one CSV in the field 'file' (got {count} files)")
    if others:
        raise BadRequest(f"send one CSV, in the field 'file' (unexpected file field "
                         f"{others[0]!r})")
    reject_invalid(req, resp, error, instance, adapter)


@bp.post("/retrain")
@api.validate(form=RetrainForm, tags=["retrain"], before=check_upload_fields, resp=responses(
    HTTP_202=RetrainAccepted, HTTP_400=ErrorBody, HTTP_413=ErrorBody, HTTP_415=ErrorBody,
    HTTP_422=ErrorBody))
def retrain(form: RetrainForm) -> Response | tuple[dict[str, Any], int, dict[str, str]]:
    """Merge the CSV into the history (all rows or none), then queue a retrain.

    Answers 202 with the job's URLs, or, with ``Accept: text/event-stream``, 200 and the
    job's progress events until it ends.
    """
    upload = uploaded_csv(form)
    s = services()
    result = s.store.ingest_bytes(upload.read(), upload.filename,
                                  on_error=form.on_error, on_duplicate=form.on_duplicate)
    job = s.queue.submit({"weights": form.weights}, upload_id=result.upload_id)
    if request.accept_mimetypes.best == "text/event-stream":
        return sse_response(s.streams, job.job_id, 0)
    status_url = url_for("jobs.job", job_id=job.job_id)
    body = RetrainAccepted(
        job_id=job.job_id, status=job.status, status_url=status_url,
        events_url=url_for("jobs.events", job_id=job.job_id),
        upload={k: getattr(result, k) for k in (
            "upload_id", "rows_read", "inserted", "updated", "skipped", "skipped_problems",
            "ignored_columns")})
    return body.model_dump(), 202, {"Location": status_url}
