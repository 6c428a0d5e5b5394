"""Configuration at the edge: the environment, read once, lazily, into a validated model.

A frozen dataclass rather than a pydantic model: importing pydantic costs ~100 ms of every cold
start (bench/cold_start.py) and these are a few strings. Request bodies are checked by pydantic's
core instead (tally.bodies).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tally.warm_cache import once

# Each table's name comes from template.yaml (!Ref) through these variables. No default: a
# function missing one must say so at once, not look for a table that is not there.
TABLES = {
    "counters_table": "COUNTERS_TABLE",
    "workspaces_table": "WORKSPACES_TABLE",
    "api_keys_table": "API_KEYS_TABLE",
    "invoice_items_table": "INVOICE_ITEMS_TABLE",
    "rate_limits_table": "RATE_LIMITS_TABLE",
    "idempotency_table": "IDEMPOTENCY_TABLE",
    "history_table": "HISTORY_TABLE",
}


@dataclass(frozen=True)
class Settings:
    counters_table: str
    workspaces_table: str
    api_keys_table: str
    invoice_items_table: str
    rate_limits_table: str
    idempotency_table: str
    history_table: str
    # Locally the admin token comes from the environment; deployed, from SSM Parameter Store.
    admin_token: str | None = field(default=None, repr=False)
    admin_token_parameter: str | None = None
    # How long a warm container trusts a looked-up API key (revocation takes effect within this).
    key_cache_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.key_cache_seconds <= 60:
            raise ValueError("TALLY_KEY_CACHE_SECONDS must be between 0 and 60")

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        missing = sorted(var for var in TABLES.values() if not env.get(var))
        if missing:
            raise RuntimeError(
                f"tally's configuration is incomplete: {', '.join(missing)} not set "
                "(template.yaml sets every table's name in the functions' environment)"
            )
        names = {
            **TABLES,
            "admin_token": "TALLY_ADMIN_TOKEN",
            "admin_token_parameter": "TALLY_ADMIN_TOKEN_PARAMETER",
        }
        values: dict = {attr: env[var] for attr, var in names.items() if env.get(var)}
        if env.get("TALLY_KEY_CACHE_SECONDS"):
            values["key_cache_seconds"] = float(env["TALLY_KEY_CACHE_SECONDS"])
        return cls(**values)


@once
def settings() -> Settings:
    return Settings.from_env(dict(os.environ))
