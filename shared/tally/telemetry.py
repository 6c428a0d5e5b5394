"""Powertools telemetry, created once: JSON logs with correlation keys, EMF metrics, X-Ray
traces (active in Lambda only). Nothing here logs a secret: events are never logged whole."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "tally"  # the service name and metrics namespace: constants of the product, not config
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=SERVICE, service=SERVICE)
tracer = Tracer(service=SERVICE)


def count(name: str, value: int = 1) -> None:
    """One EMF count: CounterChanges, BoundRefusals, RateLimited, IdempotentReplays,
    DynamoDBThrottles, RateLimitFailOpen, Requests."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
