"""The cached DynamoDB client, and tally's one retry policy.

Every data-access function takes `client=None` and falls back to `dynamodb()`, so tests and the
local runtime choose the endpoint (AWS_ENDPOINT_URL_DYNAMODB).

Retries are decided here, per call, rather than by botocore's standard policy, because an
`UpdateItem ... ADD` is not idempotent: if its answer is lost (a read timeout, a 5xx) the change
may have been applied, and sending it again could count it twice. So:
  - refused calls (throttles, transaction conflicts) and calls that never connected are retried:
    DynamoDB applied nothing;
  - a lost answer is retried only for calls that are safe to repeat (reads, conditional puts,
    SETs, transactions, which reuse their ClientRequestToken); an additive UpdateItem is not, and
    the caller finds out what happened (`send_additive`).
One client with this policy instead of two with different ones: each client costs ~50 ms of cold
start (bench/cold_start.py).
"""

from __future__ import annotations

import random
import re
import time
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from tally.errors import OutcomeUnknown, Unavailable
from tally.telemetry import count, logger
from tally.warm_cache import once

MAX_ATTEMPTS = 3
# A call that must not fail lightly (the read that answers a change that was made): sent again
# for up to 4 rounds of MAX_ATTEMPTS, none begun 3 s after the first (a round of read timeouts
# takes 6 s, and a function has 10).
PATIENT_ROUNDS, PATIENT_SECONDS = 4, 3.0
T = TypeVar("T")
THROTTLES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}
# Refused before anything was applied: always safe to send again.
REFUSED = THROTTLES | {"TransactionConflictException", "LimitExceededException"}
NOT_SENT = (EndpointConnectionError, ConnectTimeoutError)  # nothing reached DynamoDB
CONDITION_FAILED = "ConditionalCheckFailedException"
_ANSWER_LOST = (ReadTimeoutError, ConnectionClosedError)
_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},  # botocore's off: `_retry` decides
    connect_timeout=1,
    read_timeout=2,
    # Two things botocore does at every call that tally does not need, about a fifth of the CPU
    # of a warm DynamoDB call (README: Performance): rebuilding its User-Agent from some twenty
    # parts (a fixed one names the same SDK), and checking each parameter against the API model
    # (tally builds every parameter itself, from input it has checked, and DynamoDB checks each
    # request again: a malformed one is still refused, by DynamoDB's 400 ValidationException).
    user_agent=f"tally Boto3/{boto3.__version__} Botocore/{botocore.__version__}",
    parameter_validation=False,
)


def error_code(err: Any) -> str:
    """The DynamoDB error code of a botocore ClientError ("" if it has none)."""
    return err.response.get("Error", {}).get("Code", "")


def condition_failed(err: Any) -> bool:
    """Whether DynamoDB refused a write because its condition did not hold: an outcome of the
    domain (a bound, a race lost, a duplicate), never a failure to retry."""
    return error_code(err) == CONDITION_FAILED


@once
def dynamodb() -> Any:
    client = boto3.client("dynamodb", config=_CONFIG)
    client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", _flag_additive)
    client.meta.events.register("needs-retry.dynamodb", _retry)
    return client


@once
def events() -> Any:
    """EventBridge, for PublishEventsFunction only (its own client: only it pays for it)."""
    return boto3.client("events", config=Config(connect_timeout=1, read_timeout=5))


@once
def sqs() -> Any:
    """SQS, for the webhook deliveries that failed for a day (their dead-letter queue)."""
    return boto3.client("sqs", config=Config(connect_timeout=1, read_timeout=5))


def query_count(client: Any, **query: Any) -> int:
    """How many items a Query (`Select: COUNT`) matches, over all its pages."""
    return sum(page["Count"] for page in client.get_paginator("query").paginate(**query))


_ADDITIVE = re.compile(r"\bADD\b|[+-]", re.IGNORECASE)  # ADD, or arithmetic in a SET


def _flag_additive(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if _ADDITIVE.search(params.get("UpdateExpression", "")):
        context["tally_additive"] = True


def _retry(
    attempts: int,
    response: Any,
    caught_exception: Exception | None,
    request_dict: dict[str, Any],
    **_: Any,
) -> float | None:
    """Seconds to wait before the next attempt, or None for no retry (botocore's needs-retry)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    repeatable = not request_dict.get("context", {}).get("tally_additive")
    if caught_exception is not None:
        retry = isinstance(caught_exception, NOT_SENT) or (
            repeatable and isinstance(caught_exception, _ANSWER_LOST)
        )
    else:
        http, parsed = response
        code = parsed.get("Error", {}).get("Code", "")
        # DynamoDB signs each answer with a CRC32: a mismatch is an answer cut off in transit.
        expected = http.headers.get("x-amz-crc32")
        damaged = expected is not None and int(expected) != zlib.crc32(http.content) & 0xFFFFFFFF
        retry = code in REFUSED or (repeatable and (http.status_code >= 500 or damaged))
        if code in REFUSED:
            count("DynamoDBThrottles")
    # Full jitter on an exponential base, as AWS recommends.
    return random.uniform(0, 0.05 * 2**attempts) if retry else None


def send_additive(
    send: Callable[[], dict[str, Any]],
    applied: Callable[[], dict[str, Any] | None],
    *,
    context: dict[str, Any],
) -> dict[str, Any]:
    """Send a write that must not apply twice (an ADD) and return its answer.

    It is retried (above) only when DynamoDB refused it or it never left. Any other failure (a
    read timeout, a dropped or cut-off answer, a 5xx) may have been applied: `applied()` reads
    whether it was (the item as this write left it, or None). If it was, that is the answer; if
    not, it is reported (OutcomeUnknown, a 503 naming `context` in the log) and never sent
    again, since that could count it twice."""
    try:
        answer = send()
    except ClientError as err:
        if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) < 500:
            raise
        lost: Exception = err
    except NOT_SENT:
        raise
    except BotoCoreError as err:
        lost = err
    else:
        if "Attributes" in answer:
            return answer
        lost = ValueError("answer without Attributes")  # a cut-off answer (checksums, above)
    try:  # a consistent read, sent again while it fails, within the function's time
        item = patiently(applied)
    except (ClientError, BotoCoreError, Unavailable):
        item = None
    if item is not None:
        return {"Attributes": item}
    logger.warning(
        "a change's answer was lost and could not be confirmed: answered 503 OutcomeUnknown",
        extra={**context, "error": repr(lost)},
    )
    count("OutcomeUnknown")
    raise OutcomeUnknown() from lost


def transient(err: Exception) -> bool:
    """Whether a failed call may succeed if sent again: refused (throttled, a conflict), a 5xx,
    an answer lost, never sent; not a 4xx that names the request (a condition, a bad request)."""
    if isinstance(err, ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        # (a transaction resent with its token while the first send is still being applied)
        busy = error_code(err) == "TransactionInProgressException"
        return error_code(err) in REFUSED or busy or status >= 500
    return isinstance(err, (BotoCoreError, Unavailable))


def patiently(read: Callable[[], T]) -> T:
    """`read()` (safe to repeat), sent again past botocore's attempts while DynamoDB refuses or
    fails it, for at most PATIENT_ROUNDS rounds and PATIENT_SECONDS: for the reads whose failure
    would leave a change that was made unanswered. Written here because botocore's retry policy
    is per call, and this is a policy of a few calls (tally.shards' sum is up to three)."""
    started, rounds = time.monotonic(), 0
    while True:
        try:
            return read()
        except (ClientError, BotoCoreError, Unavailable) as err:
            rounds += 1
            late = time.monotonic() - started > PATIENT_SECONDS
            if not transient(err) or rounds >= PATIENT_ROUNDS or late:
                raise
            time.sleep(random.uniform(0, 0.05 * 2**rounds))
