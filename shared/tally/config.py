"""Configuration at the edge: the environment, read once, lazily, into a validated model."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    counters_table: str = Field(alias="COUNTERS_TABLE", default="CountersTable")
    workspaces_table: str = Field(alias="WORKSPACES_TABLE", default="WorkspacesTable")
    api_keys_table: str = Field(alias="API_KEYS_TABLE", default="ApiKeysTable")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", default="IdempotencyTable")
    rate_limits_table: str = Field(alias="RATE_LIMITS_TABLE", default="RateLimitsTable")
    invoice_items_table: str = Field(alias="INVOICE_ITEMS_TABLE", default="InvoiceItemsTable")
    # Locally the admin token comes from the environment; deployed, from SSM Parameter Store.
    admin_token: SecretStr | None = Field(alias="TALLY_ADMIN_TOKEN", default=None)
    admin_token_parameter: str | None = Field(alias="TALLY_ADMIN_TOKEN_PARAMETER", default=None)
    # How long a warm container trusts a looked-up API key (revocation takes effect within this).
    key_cache_seconds: float = Field(alias="TALLY_KEY_CACHE_SECONDS", default=30.0, ge=0, le=60)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.model_validate(dict(os.environ))
