"""Cached AWS clients. Every data-access function takes `client=None` and falls back to these,
so tests and the local runtime choose the endpoint (AWS_ENDPOINT_URL_DYNAMODB)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

# Throttles and 5xx are retried by botocore; what outlasts the retries becomes a 503.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)


@lru_cache(maxsize=1)
def dynamodb() -> Any:
    return boto3.client("dynamodb", config=_CONFIG)
