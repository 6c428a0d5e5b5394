"""Request bodies, as schemas validated by pydantic's core. Only the handlers that parse a body
import this module.

Why `pydantic_core` and not `pydantic.BaseModel`: BaseModel's Python layer costs ~50 ms of cold
start (bench/cold_start.py), which put the three body-parsing functions at ~1.5x the floor
against a target of 1.3x. `pydantic_core` is the validator BaseModel itself runs, and costs
~11 ms to import. The schemas below are those BaseModel would build from `StrictInt`, `StrictStr`,
`Field(ge=..., le=..., max_length=...)` and `extra="forbid"`; errors are the same
`ValidationError`, so a 400 names each bad field as before. A validated body is a plain dict
holding only the fields the caller sent (what BaseModel calls `model_fields_set`).
"""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError, SchemaValidator
from pydantic_core import core_schema as cs

from tally.events import TYPES as EVENT_TYPES
from tally.invoices import MAX_AMOUNT
from tally.items.counter import MAX_SHARDS
from tally.names import INT64_MAX, INT64_MIN

# Descriptions live on the counter item, which every change rewrites: kept short so that the
# largest item stays under 1 KB, i.e. one write unit a change (bench/write_cost.py).
MAX_DESCRIPTION = 100


def _non_zero(amount: int) -> int:
    if amount == 0:
        raise PydanticCustomError("non_zero", "amount must be a non-zero number of cents")
    return amount


def _integer(
    *, le: int, ge: int | None = None, gt: int | None = None, non_zero: bool = False
) -> cs.CoreSchema:
    schema = cs.int_schema(strict=True, ge=ge, gt=gt, le=le)  # strict: no "5", no 5.0, no true
    return cs.no_info_after_validator_function(_non_zero, schema) if non_zero else schema


def _text(*, max_length: int, min_length: int = 0) -> cs.CoreSchema:
    return cs.str_schema(strict=True, min_length=min_length, max_length=max_length)


def _body(schema: dict[str, Any], *, optional: tuple[str, ...] = ()) -> cs.TypedDictSchema:
    """A JSON object with exactly these fields (unknown ones refused), those in `optional` nullable
    and free to be absent."""
    return cs.typed_dict_schema(
        {
            name: cs.typed_dict_field(
                cs.nullable_schema(field) if name in optional else field,
                required=name not in optional,
            )
            for name, field in schema.items()
        },
        extra_behavior="forbid",
        strict=True,
    )


def _ordered_bounds(change: dict[str, Any]) -> dict[str, Any]:
    lo, hi = change.get("lower_bound"), change.get("upper_bound")
    if lo is not None and hi is not None and lo > hi:
        raise PydanticCustomError("bounds", "lower_bound must not be above upper_bound")
    return change


BILLING = _body(
    {
        "threshold": _integer(gt=0, le=INT64_MAX),
        "amount": _integer(ge=-(10**12), le=10**12, non_zero=True),
        "description": _text(min_length=1, max_length=MAX_DESCRIPTION),
    }
)

MAX_ALERTS = 10


def _one_level(alert: dict[str, Any]) -> dict[str, Any]:
    alert = {name: level for name, level in alert.items() if level is not None}
    if len(alert) != 1:
        raise PydanticCustomError(
            "alert", 'an alert is {"at": N} or {"at_percent_of_upper_bound": 1-100}'
        )
    return alert


# An alert fires tally.counter.alert each time the value crosses its level upward.
ALERT = cs.no_info_after_validator_function(
    _one_level,
    _body(
        {
            "at": _integer(ge=INT64_MIN, le=INT64_MAX),
            "at_percent_of_upper_bound": _integer(ge=1, le=100),
        },
        optional=("at", "at_percent_of_upper_bound"),
    ),
)

# PUT /account/counters/{name}/settings: fields present are set, `null` clears a bound,
# billing or the alerts, absent ones stay.
SETTINGS_CHANGE = SchemaValidator(
    cs.no_info_after_validator_function(
        _ordered_bounds,
        _body(
            {
                "visibility": cs.literal_schema(["private", "public"]),
                "description": _text(max_length=MAX_DESCRIPTION),
                "lower_bound": _integer(ge=INT64_MIN, le=INT64_MAX),
                "upper_bound": _integer(ge=INT64_MIN, le=INT64_MAX),
                "billing": BILLING,
                "alerts": cs.list_schema(ALERT, max_length=MAX_ALERTS, strict=True),
                # items a counter's changes spread over (tally.shards); null: back to 1
                "shards": _integer(ge=1, le=MAX_SHARDS),
            },
            optional=(
                "visibility",
                "description",
                "lower_bound",
                "upper_bound",
                "billing",
                "alerts",
                "shards",
            ),
        ),
    )
)

# POST /account/invoice-items
NEW_INVOICE_ITEM = SchemaValidator(
    _body(
        {
            "amount": _integer(ge=-MAX_AMOUNT, le=MAX_AMOUNT, non_zero=True),
            "description": _text(min_length=1, max_length=500),
        }
    )
)

# PUT /admin/workspaces/{workspace}/rate-limit
RATE_LIMIT_CHANGE = SchemaValidator(
    _body({"quota": _integer(ge=1, le=1_000_000), "window": _integer(ge=1, le=86_400)})
)

# PUT /account/settings
WORKSPACE_SETTINGS = SchemaValidator(
    _body({"default_visibility": cs.literal_schema(["private", "public"])})
)

# POST /account/webhooks
NEW_WEBHOOK = SchemaValidator(
    _body(
        {
            "url": _text(min_length=1, max_length=2048),
            "events": cs.list_schema(
                cs.literal_schema(list(EVENT_TYPES)), min_length=1, max_length=10, strict=True
            ),
            "description": _text(max_length=MAX_DESCRIPTION),
        },
        optional=("description",),
    )
)
