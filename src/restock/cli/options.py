"""CLI options generated from the declarations in ``restock.query`` (and the models built
the same way): the defaults, bounds and help a request has in the API, with no restatement.

Values are not range-checked by click: they go through the declaration like an API body,
so a command refuses exactly what the API refuses, with the same message.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable, get_args

import click
from pydantic.fields import FieldInfo

from restock.query import Filter, bounds_text

#: CLI flags that are not simply the field's name with dashes (kept from earlier releases)
FLAGS = {"product_id": "--product", "store_id": "--store", "lead_time_days": "--lead-time",
         "lead_time_std_days": "--lead-time-std", "review_period_days": "--review-period"}


def option_for(name: str, field: FieldInfo) -> Callable[[Any], Any]:
    """One click option for a declared field: a filter repeats, a date is YYYY-MM-DD text
    (parsed by the declaration), a number is an int or a float."""
    flag = FLAGS.get(name, "--" + name.replace("_", "-"))
    help_text = (field.description or "").rstrip(".")
    kinds = (field.annotation, *get_args(field.annotation))
    if field.annotation == Filter:
        return click.option(flag, name, multiple=True, help=help_text + " (repeatable)")
    if date in kinds:
        return click.option(flag, name, default=None, help=help_text + " (YYYY-MM-DD)")
    if field.default is not None:
        help_text += f" [default: {field.default:g}]"
    if bounds := bounds_text(field):
        help_text += f" [{bounds}]"
    kind = int if int in kinds else float
    return click.option(flag, name, type=kind, default=None, help=help_text)


def options_for(declared: dict[str, FieldInfo]) -> Callable[[Callable[..., Any]], Any]:
    """A decorator adding one option per ``declared`` field, in their order."""
    def add(command: Callable[..., Any]) -> Callable[..., Any]:
        for name, field in reversed(list(declared.items())):
            command = option_for(name, field)(command)
        return command
    return add


def request_of(options: dict[str, Any]) -> dict[str, Any]:
    """The options the user gave, as a request body (a filter given no value is no filter)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()
            if v is not None and v != ()}
