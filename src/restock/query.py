"""What a forecast request may ask, declared once: fields, defaults, bounds and help.

A forecast request is two things: a ``ForecastQuery`` (which series, how far ahead, how much
history, a chart or not) and an ``InventoryPolicy`` (how stock is planned for it). Everything
else is derived from these two models, so the bounds cannot disagree again:

- the API body (``restock.web.schemas.ForecastRequest``) is both models together, and
  ``/openapi.json`` publishes their bounds, which both browser clients read;
- the CLI's ``forecast`` options are generated from the fields (``restock.cli.forecast``);
- the README's table of request fields is ``markdown_table()``, which a test checks.

An out-of-range value fails here, with one error (``RequestValidationError``, 422) naming
the field, whichever door the request came in by.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import pydantic
from pydantic import (BaseModel, ConfigDict, Field, StringConstraints, create_model,
                      model_validator)
from pydantic.fields import FieldInfo

from restock.errors import RequestValidationError

Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Filter = Id | Annotated[list[Id], Field(min_length=1, max_length=1000)] | None

#: bounds far beyond any real inventory that keep every plan number a finite float
#: (EOQ = sqrt(2 K D / h) overflows for K = 1e308, h = 1e-308)
MAX_COST = 1e12
MIN_HOLDING_COST = 1e-9
MAX_UNITS = 1e15
#: the smallest case pack: a finer one is a typo, and MAX_UNITS / it must stay a finite float
#: (an order_multiple of 1e-320 rounded every order to infinity)
MIN_ORDER_MULTIPLE = 1e-6
#: relative slack of rounding to whole order multiples: 24 / 12 is two cases, not three,
#: and 0.3 / 0.1 three, whatever the float error
MULTIPLE_SLACK = 1e-9
#: ten years: any lead time, review period or cover beyond it is a typo
MAX_DAYS = 3650.0
#: horizons and history beyond what any version holds are refused by the version itself;
#: these caps only keep a request's numbers sane
MAX_HORIZON_DAYS = 36_600
MAX_PERIODS = 5_000
#: cycle service levels: at 0.5 or below the safety stock would be negative; above 0.9999
#: z explodes and the normal tail is no longer a credible model of demand
SERVICE_LEVEL_ABOVE = 0.5
SERVICE_LEVEL_MAX = 0.9999


class _Declared(BaseModel):
    """Unknown fields are errors (``lead_time`` for ``lead_time_days`` must not be ignored),
    and NaN/Infinity are never numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class ForecastQuery(_Declared):
    """Which series to forecast, how far ahead, and what the answer carries."""

    days: int | None = Field(None, ge=1, le=MAX_HORIZON_DAYS,
                             description="horizon in calendar days (default 30)")
    periods: int | None = Field(None, ge=1, le=MAX_PERIODS,
                                description="horizon in the data's periods (instead of days)")
    product_id: Filter = Field(None, description="a product id or a list of them (default: all)")
    store_id: Filter = Field(None, description="a store id or a list of them (default: all)")
    category: Filter = Field(None, description="a category or a list of them (default: all)")
    history: int = Field(28, ge=0, le=MAX_PERIODS,
                         description="recent periods of sales history in the answer")
    plot: bool = Field(False, description="render a PNG chart; its URL comes back as plot_url")

    @model_validator(mode="after")
    def _one_horizon(self) -> "ForecastQuery":
        if self.days is not None and self.periods is not None:
            raise ValueError("give either days or periods, not both")
        return self


class InventoryPolicy(_Declared):
    """How stock is planned for the forecast: service level (or a fill-rate target, which
    overrides it: ``service_level`` has a default, so giving both is not an error), lead
    time, costs, cover."""

    service_level: float = Field(
        0.95, gt=SERVICE_LEVEL_ABOVE, le=SERVICE_LEVEL_MAX,
        description="cycle service level: chance of no stockout in a replenishment cycle")
    lead_time_days: float = Field(7.0, gt=0, le=MAX_DAYS,
                                  description="days from placing an order to receiving it")
    lead_time_std_days: float = Field(0.0, ge=0, le=MAX_DAYS,
                                      description="standard deviation of the lead time, days")
    review_period_days: float = Field(0.0, ge=0, le=MAX_DAYS,
                                      description="days between stock reviews (0: continuous)")
    on_hand: float | None = Field(None, ge=-MAX_UNITS, le=MAX_UNITS,
                                  description="units in stock now (default: latest stored)")
    on_order: float | None = Field(None, ge=0, le=MAX_UNITS,
                                   description="units ordered, not yet received (default: "
                                               "latest stored, else 0)")
    ordering_cost: float | None = Field(None, gt=0, le=MAX_COST,
                                        description="cost per order; EOQ with holding_cost")
    holding_cost: float | None = Field(None, ge=MIN_HOLDING_COST, le=MAX_COST,
                                       description="holding cost per unit per year; EOQ")
    cover_days: float = Field(30.0, gt=0, le=MAX_DAYS,
                              description="order quantity in days of demand when no EOQ")
    target_fill_rate: float | None = Field(
        None, gt=0, lt=1,
        description="share of demand to serve from stock; when given, the safety stock is "
                    "sized for it instead of service_level")

    @model_validator(mode="after")
    def _both_costs(self) -> "InventoryPolicy":
        if (self.ordering_cost is None) != (self.holding_cost is None):
            missing = "holding_cost" if self.holding_cost is None else "ordering_cost"
            raise ValueError(f"{missing} is needed too: EOQ uses both ordering and holding cost")
        return self


def bounds_text(field: FieldInfo) -> str:
    """A field's declared range as ``0.5 < x <= 0.9999`` (empty when it has none)."""
    found = {name: getattr(m, name) for m in field.metadata
             for name in ("gt", "ge", "lt", "le") if getattr(m, name, None) is not None}
    low = next((f"{found[k]:g} {sym} " for k, sym in (("gt", "<"), ("ge", "<=")) if k in found), "")
    high = next((f" {sym} {found[k]:g}" for k, sym in (("lt", "<"), ("le", "<=")) if k in found),
                "")
    return f"{low}x{high}" if low or high else ""


def fields() -> dict[str, FieldInfo]:
    """Every field of a forecast request, the query's first."""
    return {**ForecastQuery.model_fields, **InventoryPolicy.model_fields}


#: what a replenishment plan does not take of a forecast request: no history or chart per
#: series, and each series' own latest stored on hand and on order instead of one figure
NOT_PLAN_FIELDS = frozenset({"history", "plot", "on_hand", "on_order"})

#: the stock figures of a policy: per series in a plan, not inventory maths parameters
STOCK_FIELDS = frozenset({"on_hand", "on_order"})


def plan_fields() -> dict[str, FieldInfo]:
    """The fields of a plan request (``GET /plan``, ``restock plan``): a forecast request's
    horizon and filters and its inventory policy, minus ``NOT_PLAN_FIELDS``."""
    return {name: field for name, field in fields().items() if name not in NOT_PLAN_FIELDS}


def markdown_table() -> str:
    """The README's table of request fields (a test keeps the README equal to it)."""
    lines = ["| field | default | allowed | meaning |", "|---|---|---|---|"]
    for name, field in fields().items():
        default = "none" if field.default is None else str(field.default).lower()
        allowed = bounds_text(field) or ("1-1000 ids of 1-200 characters" if field.annotation == Filter
                                         else "true or false")
        lines.append(f"| `{name}` | {default} | {allowed} | "
                     f"{field.description} |")
    return "\n".join(lines)


def problems_of(error: pydantic.ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as JSON-safe problems: where (``loc``), what (``msg``), ``type``."""
    return [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in error.errors(include_url=False, include_input=False)]


def invalid_request(problems: list[dict[str, Any]]) -> RequestValidationError:
    """The one error for a request that does not match its declaration, naming the field."""
    first = problems[0] if problems else {"loc": [], "msg": "invalid"}
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return RequestValidationError(
        f"the request does not match the schema: {'.'.join(first['loc']) or 'body'}: "
        f"{first['msg']}{more}", {"problems": problems})


def parse(model: type[_Declared], values: dict[str, Any]) -> Any:
    """``model`` from ``values``, or the one ``RequestValidationError`` naming the field."""
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as error:
        raise invalid_request(problems_of(error)) from None


def parts(request: BaseModel, *models: type[_Declared]) -> tuple[Any, ...]:
    """A request already validated as several models at once (an API body inheriting from
    each, e.g. ``ForecastRequest``) as one instance of each, without validating it again.
    The fields the request gave stay marked as given: they win over item settings."""
    return tuple(model.model_construct(request.model_fields_set & set(model.model_fields),
                                       **{k: getattr(request, k) for k in model.model_fields})
                 for model in models)


def split(values: dict[str, Any], first: type[_Declared] = ForecastQuery,
          policy: type[_Declared] = InventoryPolicy) -> tuple[Any, Any]:
    """One flat request (as the API and the CLI take it) as ``first`` (every value that is
    not the policy's, so an unknown name is ``first``'s error) and its ``policy``."""
    ours = {k: v for k, v in values.items() if k in policy.model_fields}
    return (parse(first, {k: v for k, v in values.items() if k not in ours}),
            parse(policy, ours))


# -- item and supplier settings (issue 15 item 2) ---------------------------------------

#: the policy fields an item settings row may set for its series: a request's value wins
#: over the item's, the item's over the declared default
ITEM_POLICY_FIELDS = ("lead_time_days", "lead_time_std_days", "review_period_days",
                      "service_level")


class OrderConstraints(_Declared):
    """What a supplier allows an order to be, per item (none: the order is the maths')."""

    moq: float | None = Field(None, ge=0, le=MAX_UNITS,
                              description="minimum order quantity: a smaller order is raised")
    order_multiple: float | None = Field(
        None, ge=MIN_ORDER_MULTIPLE, le=MAX_UNITS,
        description="case pack: an order is rounded up to a multiple")
    max_order_qty: float | None = Field(None, gt=0, le=MAX_UNITS,
                                        description="largest order the supplier takes")
    max_stock: float | None = Field(
        None, ge=0, le=MAX_UNITS,
        description="room for stock: the order is capped at max_stock - inventory position")
    unit_cost: float | None = Field(None, ge=0, le=MAX_COST,
                                    description="cost per unit: the plan's ABC by value")

    @model_validator(mode="after")
    def _consistent(self) -> "OrderConstraints":
        if self.max_order_qty is not None:
            if self.moq is not None and self.moq > self.max_order_qty:
                raise ValueError(f"moq {self.moq:g} is above max_order_qty "
                                 f"{self.max_order_qty:g}: no order could meet both")
            if self.order_multiple is not None and self.order_multiple > self.max_order_qty:
                raise ValueError(f"order_multiple {self.order_multiple:g} is above "
                                 f"max_order_qty {self.max_order_qty:g}: no order could meet both")
            if self.moq is not None and self.order_multiple is not None:
                smallest = float(round_up_to_multiple(self.moq, self.order_multiple))
                if smallest > self.max_order_qty:
                    raise ValueError(
                        f"moq {self.moq:g} in whole order multiples of {self.order_multiple:g} "
                        f"is {smallest:g}, above max_order_qty {self.max_order_qty:g}: no "
                        "order could meet all three")
        return self


def round_up_to_multiple(quantity: Any, multiple: Any) -> Any:
    """``quantity`` rounded up to whole ``multiple``s (numbers or arrays): the one rule both
    the upload's check above and the orders (``restock.orders``) apply, so an item the
    upload accepts never gets an order its own check would refuse."""
    return np.ceil(np.asarray(quantity) / multiple - MULTIPLE_SLACK) * multiple


def _optional(field: FieldInfo) -> tuple[Any, Any]:
    """A policy field as an item settings column: the same bounds and help, empty allowed."""
    return Annotated[float, *field.metadata] | None, Field(None, description=field.description)


#: one row of an item settings upload besides its product_id and store_id: the order
#: constraints and the policy fields, each with the bounds a request has
ItemSettings = create_model(
    "ItemSettings", __base__=OrderConstraints,
    **{name: _optional(InventoryPolicy.model_fields[name]) for name in ITEM_POLICY_FIELDS})

#: the settings columns of an item upload, in the order the issue lists them
ITEM_COLUMNS = ("lead_time_days", "lead_time_std_days", "review_period_days", "moq",
                "order_multiple", "max_order_qty", "max_stock", "unit_cost", "service_level")
assert set(ITEM_COLUMNS) == set(ItemSettings.model_fields), "keep ITEM_COLUMNS complete"


if __name__ == "__main__":
    print(markdown_table())  # python -m restock.query: the table to paste into the README
