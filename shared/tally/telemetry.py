"""Powertools telemetry, created once: JSON logs with correlation keys, EMF metrics, X-Ray
traces (active in Lambda only). Nothing here logs a secret: events are never logged whole."""

from __future__ import annotations

import functools
import json
import os
import random
import resource
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities import jmespath_utils

import tally

# An invocation may rightly emit no metric (an idle webhook retry sweep, 43,200 a month, each
# metric $0.30 a month): Powertools' warning about it would be noise in every such log.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

SERVICE = "tally"  # the service name and metrics namespace: constants of the product, not config
# A request must not be able to write a large log line (a deep body once made a 300 KB
# traceback): each logged value is cut to these many characters, a traceback keeping its tail.
MAX_VALUE = 1024
MAX_EXCEPTION = 2048
# The share of warm invocations that log their "invocation" line (README: Telemetry).
SAMPLE_RATE_VARIABLE = "TALLY_LOG_SAMPLE_RATE"


def _cut(value: Any, limit: int) -> Any:
    """`value`, or a string of its head and tail whose JSON form is at most about `limit`
    characters (escapes counted: a newline is two, an emoji twelve)."""
    text = (
        value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    )
    size = len(json.dumps(text))
    if size <= limit:
        return value
    keep = max(16, int(len(text) * limit / size) - 64)
    while True:
        head = keep // 4
        cut = f"{text[:head]}...[{len(text) - keep} characters cut]...{text[len(text) - keep + head :]}"
        if len(json.dumps(cut)) <= limit or keep <= 16:
            return cut
        keep //= 2


def _bounded_json(record: dict[str, Any]) -> str:
    """Powertools' JSON line, every value bounded (see MAX_VALUE)."""
    bounded = {
        key: _cut(value, MAX_EXCEPTION if key == "exception" else MAX_VALUE)
        for key, value in record.items()
    }
    return json.dumps(bounded, separators=(",", ":"), default=str)


logger = Logger(service=SERVICE, json_serializer=_bounded_json)
metrics = Metrics(namespace=SERVICE, service=SERVICE)


@functools.lru_cache(maxsize=1)
def _tracer() -> Any:
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE, patch_modules=["botocore"])  # DynamoDB calls as subsegments


def traced(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Powertools Tracer around a handler, for the invocations X-Ray samples.

    Importing the X-Ray SDK costs ~70 ms of cold start (bench/cold_start.py) and only sampled
    invocations (by default 1 a second, then 5%) record anything; Lambda says which they are in
    _X_AMZN_TRACE_ID. So the Tracer is created on the first sampled invocation, never before."""

    invoked = []

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        warm = bool(invoked)
        if not warm:
            invoked.append(True)
        if "Sampled=1" in os.environ.get("_X_AMZN_TRACE_ID", ""):
            if warm:  # Powertools would annotate its first traced call as the cold start
                from aws_lambda_powertools.tracing import tracer as powertools_tracer

                powertools_tracer.is_cold_start = False
            # capture_response off: an answer may hold a new API key's secret
            return _tracer().capture_lambda_handler(handler, capture_response=False)(event, context)
        return handler(event, context)

    return run


def invocation(
    handler: Callable[[Any, Any], Any] | None = None, *, correlation_path: str | None = None
) -> Any:
    """What every function's handler runs inside: its log lines carry the invocation's context
    (function, request id, cold start, the correlation id found at `correlation_path` in the
    event), its metrics are flushed as one EMF line, sampled invocations are traced, and a
    sample of invocations (every cold start, TALLY_LOG_SAMPLE_RATE of the rest) logs one
    "invocation" line. Warnings and errors are logged by whatever meets them, always.

    Powertools' `inject_lambda_context` appends that context to the logger's global keys: right
    in Lambda, where a process runs one invocation at a time, wrong in `tally serve`, where one
    process runs many functions at once on threads (a scheduled billing run's lines carried a
    request's `function_name`). So the context goes into Powertools' thread-safe keys, which are
    the invocation's own wherever it runs."""
    if handler is None:
        return functools.partial(invocation, correlation_path=correlation_path)
    # The handler's module is being imported (this runs as it defines its handler): what its
    # imports took, as a cold start's line tells it.
    init_ms = round((time.perf_counter() - tally.STARTED) * 1000, 1)
    invoked: list[bool] = []
    run_traced = traced(handler)

    def run_metered(event: Any, context: Any) -> Any:
        try:
            return run_traced(event, context)
        finally:  # what Powertools' log_metrics does, under the lock (see `count`)
            with _METRICS_LOCK:
                metrics.flush_metrics()

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        started = time.perf_counter()
        fields = build_lambda_context_model(context).__dict__
        keys = {"cold_start": not invoked, **fields}
        invoked.append(True)
        if correlation_path:
            keys["correlation_id"] = jmespath_utils.query(envelope=correlation_path, data=event)
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(**keys)
        try:
            if is_metrics_disabled():  # (flushing nothing, Powertools would warn every time)
                return run_traced(event, context)
            return run_metered(event, context)
        finally:
            rate = os.environ.get(SAMPLE_RATE_VARIABLE)  # unset: no such lines (tally serve)
            if rate is not None and (keys["cold_start"] or random.random() < float(rate or 0)):
                _summary(started, init_ms if keys["cold_start"] else None)
            logger.thread_safe_clear_keys()

    return run


def _summary(started: float, init_ms: float | None) -> None:
    """The "invocation" line of a sampled invocation: what Lambda's REPORT line said (duration,
    memory, a cold start's init) before the template kept Lambda's per-invocation lines out
    (SystemLogLevel: WARN), with the keys the handler added (route, status, workspace).
    Powertools' own sampling_rate turns a sampled invocation's whole logger to DEBUG; one INFO
    line is wanted, so the sample is drawn in `invocation`."""
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    fields = {
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "max_memory_mb": peak_kb // 1024,
    }
    if init_ms is not None:
        fields["init_ms"] = init_ms
    logger.info("invocation", extra=fields)


def add_keys(**keys: Any) -> None:
    """Keys on every later line of this invocation (e.g. the workspace)."""
    logger.thread_safe_append_keys(**keys)


def count(name: str, value: int = 1) -> None:
    """One EMF count: CounterChanges, BoundRefusals, RateLimited, IdempotentReplays,
    DynamoDBThrottles, DynamoDBFailures, RateLimitFailOpen, OutcomeUnknown, AppliedUnread,
    Requests, Billing*, EventsPublished, Webhook*.
    Nothing with POWERTOOLS_METRICS_DISABLED: Powertools then never flushes, but still prints
    the set by itself once a metric has 100 values."""
    if not is_metrics_disabled():
        with _METRICS_LOCK:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


# Powertools keeps one metric set per process and is not thread-safe: in Lambda a process runs
# one invocation at a time, but `tally serve` and the tests run many at once on threads, where a
# flush iterating the set while another thread added to it raised "dictionary changed size
# during iteration" (a 500). Adding and flushing take turns; a flush then carries whatever the
# threads added meanwhile, which locally is fine.
_METRICS_LOCK = threading.Lock()
