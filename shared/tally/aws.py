"""Cached AWS clients. Every data-access function takes `client=None` and falls back to these,
so tests and the local runtime choose the endpoint (AWS_ENDPOINT_URL_DYNAMODB)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

# Reads and idempotent writes: botocore retries throttles, 5xx and timeouts.
_RETRIED = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=1, read_timeout=2
)
# Counter changes (UpdateItem ADD) are not idempotent: a retry after a lost answer would apply
# the change twice, so botocore never retries them; tally.counters retries only what DynamoDB
# provably did not apply and checks the rest (see counters._send).
_UNRETRIED = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=2)


@lru_cache(maxsize=1)
def dynamodb() -> Any:
    return boto3.client("dynamodb", config=_RETRIED)


@lru_cache(maxsize=1)
def dynamodb_unretried() -> Any:
    return boto3.client("dynamodb", config=_UNRETRIED)
