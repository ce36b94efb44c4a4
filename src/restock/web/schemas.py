"""Request and response bodies: they validate requests and generate ``/openapi.json``.

One definition serves both, so the published contract cannot drift from what the server
accepts. Request models forbid unknown fields, so a typo (``lead_time`` for
``lead_time_days``) is an error instead of a silently ignored default.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.fields import FieldInfo
from spectree.model_adapter.pydantic_adapter import BaseFile

from restock.query import ITEM_COLUMNS, Filter, ForecastQuery, Id, InventoryPolicy, plan_fields
from restock.simulation import SimulationOptions


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Body(BaseModel):
    """Response bodies: documented fields, and new fields from the domain pass through."""

    model_config = ConfigDict(extra="allow", ser_json_inf_nan="null")  # never NaN/Infinity


# -- errors ---------------------------------------------------------------------------------

class ErrorDetail(Body):
    code: str = Field(description="stable machine-readable code, e.g. invalid_data")
    message: str
    details: Any = None


class ErrorBody(Body):
    error: ErrorDetail


# -- health ---------------------------------------------------------------------------------

class QueueStats(Body):
    kind: str
    queued: int
    running: int


class Health(Body):
    status: Literal["ok"]
    model_version: str | None
    trained_at: str | None
    rows: int | None
    series: int | None
    queue: QueueStats


class Liveness(Body):
    status: Literal["ok"]


# -- retrain and jobs -----------------------------------------------------------------------

class RetrainForm(Request):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    file: BaseFile = Field(description="the sales CSV (date, product_id, quantity, ...)")
    weights: Literal["auto", "seed"] | None = Field(
        None, description="ensemble weights: auto (backtest) or seed (60/40); default setting")
    on_error: Literal["reject", "skip"] = Field(
        "reject", description="reject: any bad row rejects the file; skip: store good rows")
    on_duplicate: Literal["error", "last"] = Field(
        "error", description="last: a key repeated inside the file keeps its last row")


class RowProblem(Body):
    row: int | None = Field(description="1-based line number in the file (the header is 1)")
    column: str | None
    problem: str


class UploadSummary(Body):
    upload_id: str
    rows_read: int
    inserted: int
    updated: int
    skipped: int = Field(description="rows dropped by on_error=skip (all of them)")
    skipped_problems: list[RowProblem] = Field(
        default_factory=list, description="why: the first 100 problems of the skipped rows")
    ignored_columns: list[str]


class RetrainAccepted(Body):
    job_id: str
    status: str
    status_url: str
    events_url: str
    upload: UploadSummary


class JobBody(Body):
    job_id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    stage: str | None
    progress: float
    model_version: str | None
    error: dict[str, Any] | None
    created_at: str
    started_at: str | None
    finished_at: str | None


# -- forecast -------------------------------------------------------------------------------

class ForecastRequest(ForecastQuery, InventoryPolicy):
    """The ``POST /forecast`` body: a query and its inventory policy, declared in
    ``restock.query`` (their bounds are published here and read by the browser clients)."""


class ForecastRow(Body):
    date: str
    yhat: float | None
    yhat_lower: float | None
    yhat_upper: float | None
    prophet: float | None = None
    lstm: float | None = None


class HistoryPoint(Body):
    date: str
    quantity: float | None


class ForecastWarning(Body):
    code: str
    severity: str
    message: str


class ForecastResponse(Body):
    model_version: str
    selection: dict[str, Any]
    frequency: str
    horizon: dict[str, Any] | None = None
    history: list[HistoryPoint]
    forecast: list[ForecastRow]
    inventory: dict[str, Any]
    warnings: list[ForecastWarning]
    plot_url: str | None = None


# -- series, models -------------------------------------------------------------------------

class SeriesQuery(Request):
    product_id: list[Id] | None = None
    store_id: list[Id] | None = None
    category: list[Id] | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class SeriesItem(Body):
    product_id: str
    store_id: str
    category: str
    rows: int
    first_date: str
    last_date: str
    mean: float | None = Field(description="null when the stored quantities overflow a float")
    zero_share: float


class SeriesPage(Body):
    items: list[SeriesItem]
    total: int
    limit: int
    offset: int


class ModelVersion(Body):
    version: str
    trained_at: str | None
    rows: int | None
    series: int | None
    mase: float | None
    active: bool


class ModelList(Body):
    current: str | None
    items: list[ModelVersion]


class Activated(Body):
    model_version: str


# -- live accuracy (restock.accuracy) -------------------------------------------------------

class AccuracyQuery(Request):
    """``GET /accuracy``: the ``/forecast`` filters (repeat one for OR), a version, dates."""

    product_id: list[Id] | None = None
    store_id: list[Id] | None = None
    category: list[Id] | None = None
    version: str | None = Field(None, min_length=1, max_length=64,
                                description="one model version (default: every scored one)")
    start: date | None = Field(None, description="first forecast date to score (YYYY-MM-DD)")
    end: date | None = Field(None, description="last forecast date to score (YYYY-MM-DD)")

    @model_validator(mode="after")
    def _ordered(self) -> "AccuracyQuery":
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class AccuracyScore(Body):
    model_version: str
    level: Literal["series", "category", "store", "total"]
    product_id: str | None = Field(description="set on series rows")
    store_id: str | None = Field(description="set on series and store rows")
    category: str | None = Field(description="set on series and category rows")
    series: int
    periods: int
    first_date: str
    last_date: str
    actual: float
    forecast: float
    mase: float | None = Field(description="MAE over the in-sample seasonal naive MAE")
    wape: float | None = Field(description="absolute error over actual volume")
    bias: float | None = Field(description="(forecast - actual) over actual volume; > 0 over")
    coverage: float = Field(description="share of actuals inside the forecast interval")
    fva: float | None = Field(
        description="forecast value added: 1 - MASE / MASE of seasonal naive from the cutoff")


class AccuracyPoint(Body):
    date: str
    actual: float = Field(description="the selection's actual sales in the period")
    forecast: float = Field(description="the version's forecast of the selection")
    naive: float = Field(description="the seasonal naive forecast from the same cutoff")


class AccuracyVersion(Body):
    model_version: str
    cutoff: str = Field(description="the last date the version was trained on")
    frequency: str
    first_date: str
    last_date: str
    periods: int
    series: int
    backtest_mase: float | None = Field(description="mean backtest MASE of the selection")
    live_mase: float | None = Field(description="mean live MASE of the selection")
    points: list[AccuracyPoint] = Field(
        description="per scored date, summed over the selected series (oldest first)")


class AccuracyWarning(ForecastWarning):
    model_version: str


class AccuracyReport(Body):
    selection: dict[str, list[str]]
    start: str | None
    end: str | None
    versions: list[AccuracyVersion]
    scores: list[AccuracyScore]
    warnings: list[AccuracyWarning]


# -- the replenishment plan -----------------------------------------------------------------

def _plan_query_field(field: FieldInfo) -> tuple[Any, FieldInfo]:
    """A plan request field as a query parameter: a filter is repeated (``?store_id=S01&
    store_id=S02``), every other field is declared as in :mod:`restock.query`."""
    if field.annotation == Filter:
        return list[Id] | None, Field(None, description=field.description)
    return field.annotation, field


#: ``GET /plan``'s query: the plan fields of the declaration (``restock.query.plan_fields``)
#: and the answer's format. The declaration's cross-field rules (one horizon, both costs)
#: run when the view splits it into a ForecastQuery and an InventoryPolicy.
PlanQuery = create_model(
    "PlanQuery", __base__=Request,
    format=(Literal["json", "csv"] | None,
            Field(None, description="csv or json (default: the Accept header, else json)")),
    **{name: _plan_query_field(field) for name, field in plan_fields().items()})


# -- simulation -----------------------------------------------------------------------------

class SimulateRequest(SimulationOptions, InventoryPolicy):
    """The ``POST /simulate`` body: the selection and the simulation's options
    (``restock.simulation.SimulationOptions``) and the inventory policy to replay
    (``restock.query.InventoryPolicy``; ``on_hand`` and ``on_order`` play no part)."""


class PolicyOutcome(Body):
    target_service_level: float
    cycle_service_level: float | None
    fill_rate: float | None
    csl_vs_target: float | None
    fill_rate_vs_target: float | None
    cycles: int
    stockout_periods: int
    periods: int
    demand: float | None
    served_from_stock: float | None
    average_on_hand: float | None
    average_on_hand_value: float | None
    orders: int


class SeriesOutcome(Body):
    unique_id: str
    start: str
    end: str
    restock: PolicyOutcome
    seed: PolicyOutcome
    min_max: PolicyOutcome


class SimulateResponse(Body):
    model_version: str
    frequency: str
    selection: dict[str, Any]
    period: dict[str, Any]
    policy: dict[str, Any]
    seed: int
    unit_cost: float | None
    total: dict[str, PolicyOutcome]
    series: list[SeriesOutcome]
    skipped: list[str]
    plot_url: str | None = None


# -- item and supplier settings (restock.data.items) ----------------------------------------

class ItemsForm(Request):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    file: BaseFile = Field(description="the item settings CSV: product_id[, store_id], "
                                       + ", ".join(ITEM_COLUMNS))


class ItemsUpload(Body):
    upload_id: str
    filename: str
    received_at: str
    rows: int


class ItemsUploaded(Body):
    upload: ItemsUpload
    rows_read: int
    ignored_columns: list[str]
