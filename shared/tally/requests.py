"""Request bodies, as pydantic models. Only the handlers that parse a body import this module:
pydantic costs ~100 ms of cold start, which no counter read or change pays."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from tally.invoices import MAX_AMOUNT
from tally.names import INT64_MAX, INT64_MIN

Int64 = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]
# Descriptions live on the counter item, which every change rewrites: kept short so that the
# largest item stays under 1 KB, i.e. one write unit a change (bench/write_cost.py).
MAX_DESCRIPTION = 100


class Billing(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    threshold: Annotated[StrictInt, Field(gt=0, le=INT64_MAX)]
    amount: Annotated[StrictInt, Field(ge=-(10**12), le=10**12)]
    description: Annotated[StrictStr, Field(min_length=1, max_length=MAX_DESCRIPTION)]

    @model_validator(mode="after")
    def _non_zero_amount(self) -> Billing:
        if self.amount == 0:
            raise ValueError("amount must be a non-zero number of cents")
        return self


class SettingsChange(BaseModel):
    """PUT body: fields present are set, `null` clears a bound or billing, absent ones stay."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    visibility: Literal["private", "public"] | None = None
    description: Annotated[StrictStr, Field(max_length=MAX_DESCRIPTION)] | None = None
    lower_bound: Int64 | None = None
    upper_bound: Int64 | None = None
    billing: Billing | None = None

    @model_validator(mode="after")
    def _ordered_bounds(self) -> SettingsChange:
        lo, hi = self.lower_bound, self.upper_bound
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("lower_bound must not be above upper_bound")
        return self


class NewInvoiceItem(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    amount: Annotated[StrictInt, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
    description: Annotated[StrictStr, Field(min_length=1, max_length=500)]

    @field_validator("amount")
    @classmethod
    def _non_zero(cls, amount: int) -> int:
        if amount == 0:
            raise ValueError("amount must be a non-zero number of cents")
        return amount


class RateLimitChange(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    quota: Annotated[StrictInt, Field(ge=1, le=1_000_000)]
    window: Annotated[StrictInt, Field(ge=1, le=86_400)]
