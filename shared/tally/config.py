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
    "webhooks_table": "WEBHOOKS_TABLE",
    "billing_due_table": "BILLING_DUE_TABLE",
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
    webhooks_table: str
    billing_due_table: str
    event_bus: str = "default"
    webhook_dead_letter_queue: str | None = None
    # Webhook URLs: "public-https" deployed; "loopback-http" also takes http://127.0.0.1 (local).
    webhook_urls: str = "public-https"
    # The key each webhook's signing secret is derived from: locally from the environment,
    # deployed from a Secrets Manager secret the stack generates.
    webhook_signing_key: str | None = field(default=None, repr=False)
    webhook_signing_key_secret: str | None = None
    # Seconds after a delivery's first attempt at which each retry is made (24 h in all);
    # shorter only for local work and tests (TALLY_WEBHOOK_RETRY_SCHEDULE=1,2,3).
    webhook_retry_schedule: tuple[int, ...] = (60, 300, 1800, 7200, 18000, 36000, 86400)
    # Locally the admin token comes from the environment; deployed, from SSM Parameter Store.
    admin_token: str | None = field(default=None, repr=False)
    admin_token_parameter: str | None = None
    # How long a warm container trusts a looked-up API key (revocation takes effect within this).
    key_cache_seconds: float = 30.0
    # Whether a counter throttled past tally's retries doubles its shards by itself (tally.shards).
    shards_grow: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.key_cache_seconds <= 60:
            raise ValueError("TALLY_KEY_CACHE_SECONDS must be between 0 and 60")
        if self.webhook_urls not in ("public-https", "loopback-http"):
            raise ValueError("TALLY_WEBHOOK_URLS must be public-https or loopback-http")

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
            "event_bus": "TALLY_EVENT_BUS",
            "webhook_dead_letter_queue": "TALLY_WEBHOOK_DEAD_LETTER_QUEUE",
            "webhook_urls": "TALLY_WEBHOOK_URLS",
            "webhook_signing_key": "TALLY_WEBHOOK_SIGNING_KEY",
            "webhook_signing_key_secret": "TALLY_WEBHOOK_SIGNING_KEY_SECRET",
        }
        values: dict = {attr: env[var] for attr, var in names.items() if env.get(var)}
        if env.get("TALLY_WEBHOOK_RETRY_SCHEDULE"):
            schedule = env["TALLY_WEBHOOK_RETRY_SCHEDULE"].split(",")
            values["webhook_retry_schedule"] = tuple(int(s) for s in schedule)
        if env.get("TALLY_SHARDS_GROW"):
            if env["TALLY_SHARDS_GROW"] not in ("on", "off"):
                raise ValueError("TALLY_SHARDS_GROW must be on or off")
            values["shards_grow"] = env["TALLY_SHARDS_GROW"] == "on"
        if env.get("TALLY_KEY_CACHE_SECONDS"):
            values["key_cache_seconds"] = float(env["TALLY_KEY_CACHE_SECONDS"])
        return cls(**values)


@once
def settings() -> Settings:
    return Settings.from_env(dict(os.environ))
