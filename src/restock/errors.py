"""The one exception hierarchy of restock.

Domain code raises these and never an HTTP error; the web layer maps each class to a
status code in one table (``restock.web.errors``) and the CLI maps them to exit codes.
Every error carries a stable machine-readable ``code`` and JSON-safe ``details`` so the
same information reaches a browser, a terminal and a log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class RestockError(Exception):
    """Base class: a problem the user can understand and act on."""

    code = "restock_error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an uploaded file: 1-based line number (header = 1), column, what."""

    row: int | None
    column: str | None
    problem: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DataValidationError(RestockError):
    """An upload was rejected; ``problems`` lists at most 100, ``total`` counts them all."""

    code = "invalid_data"
    MAX_LISTED = 100

    def __init__(self, message: str, problems: list[Problem], total: int | None = None) -> None:
        self.problems = problems[: self.MAX_LISTED]
        self.total = len(problems) if total is None else total
        super().__init__(
            message,
            {"problems": [p.to_dict() for p in self.problems], "total": self.total},
        )


class UnsupportedFileError(RestockError):
    """The bytes are not a CSV we can read at all (gzip, binary, unknown encoding)."""

    code = "unsupported_file"


class InvalidParameterError(RestockError):
    """A request or command parameter is out of range or malformed."""

    code = "invalid_parameter"


class RequestValidationError(RestockError):
    """A request (API body, form, query string or CLI options) is outside its declaration."""

    code = "invalid_request"


class UnknownSeriesError(RestockError):
    """A filter names a product, store or category that the model does not know."""

    code = "unknown_series"


class NoModelError(RestockError):
    """No model has been trained and activated yet."""

    code = "no_model"


class ModelNotFoundError(RestockError):
    """A model version was asked for that does not exist (or is not a complete version)."""

    code = "model_not_found"


class NoScoresError(RestockError):
    """Live accuracy was asked for a selection, version or date range with no scored forecast."""

    code = "no_scores"


class PlotNotFoundError(RestockError):
    code = "plot_not_found"


class JobNotFoundError(RestockError):
    code = "job_not_found"


class JobConflictError(RestockError):
    """The job is in a state where the action makes no sense (e.g. cancelling a finished job)."""

    code = "job_conflict"


class JobCancelled(RestockError):
    """Raised inside a running pipeline when its job was cancelled; it unwinds cleanly."""

    code = "cancelled"


class TrainingError(RestockError):
    """Training could not produce a model (e.g. no data); ``current`` is left as it was."""

    code = "training_failed"
