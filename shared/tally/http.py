"""The HTTP edge: an API Gateway HTTP API (payload 2.0) event in, a proxy answer out.

Each function serves exactly one route, so routing is API Gateway's job; Powertools' event
handler would add ~100 ms of imports to every cold start (PLATFORM.md) for a router we would not
use. What is left is parsing the event and turning every outcome into the caller's dialect, once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from botocore.exceptions import BotoCoreError, ClientError

from tally import aws
from tally.errors import BadRequest, Internal, RateLimited, TallyError, Unavailable
from tally.telemetry import count, logger, metrics, traced

MAX_BODY_BYTES = 16 * 1024
# DynamoDB answers that outlasted tally.aws's retries: the caller may retry later (503).
_TRANSIENT = aws.REFUSED | {
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    path_params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: str | None = None
    source_ip: str = ""
    request_id: str = ""
    operation: str | None = None  # stable across retries with one Idempotency-Key

    def fingerprint(self) -> dict[str, Any]:
        """What makes two requests "the same request" for an Idempotency-Key."""
        body: Any = self.body
        if body:
            with contextlib.suppress(ValueError):  # a non-JSON body is compared as text
                body = json.loads(body)
        return {"method": self.method, "path": self.path, "query": self.query, "body": body}

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Request:
        context = event.get("requestContext") or {}
        http = context.get("http") or {}
        body = event.get("body")
        if body is not None and event.get("isBase64Encoded"):
            import base64

            body = base64.b64decode(body).decode("utf-8", errors="replace")
        return cls(
            method=(http.get("method") or "GET").upper(),
            path=http.get("path") or event.get("rawPath") or "/",
            path_params=event.get("pathParameters") or {},
            query=event.get("queryStringParameters") or {},
            headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
            body=body,
            source_ip=http.get("sourceIp") or "",
            request_id=context.get("requestId") or "",
        )

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization")
        if not value:
            return None
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else value

    def json_body(self) -> dict[str, Any]:
        if self.body is None or not self.body.strip():
            raise BadRequest("a JSON object body is required", fields={"body": "missing"})
        if len(self.body.encode()) > MAX_BODY_BYTES:
            raise BadRequest(
                f"the body is over {MAX_BODY_BYTES} bytes", fields={"body": "too large"}
            )
        try:
            data = json.loads(self.body)
        except ValueError as err:
            raise BadRequest("the body is not valid JSON", fields={"body": "invalid JSON"}) from err
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object", fields={"body": "not an object"})
        return data


def respond(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
    }


def error_answer(request: Request, err: TallyError, headers: dict[str, str] | None = None) -> dict:
    from tally.dialects import for_path

    return respond(
        err.status, for_path(request.path).error_body(err), {**(headers or {}), **err.headers}
    )


def rate_limit(request: Request) -> Any:
    """Take a token for this caller and path: the decision, or None when the bucket table is
    unreachable. Then the request is served anyway (fail open): the limit protects the service,
    and an outage of the limiter must not become an outage of counting."""
    from tally import keys, names, rate_limit

    try:
        caller = keys.identify(request.bearer)
        workspace = request.path_params.get("workspace")
        try:
            workspace = names.workspace(workspace) if workspace else None
        except BadRequest:
            workspace = None
        workspace = workspace or (caller.workspace if caller else None)
        if workspace:
            logger.append_keys(workspace=workspace)  # a correlation key on every later line
        policy = rate_limit.policy_for(workspace)
        who = f"key:{caller.key_id}" if caller else f"ip:{request.source_ip}"
        return rate_limit.take(rate_limit.bucket_id(who, request.method, request.path), policy)
    except (ClientError, BotoCoreError) as err:
        logger.warning(
            "rate limit unavailable: failing open",
            extra={"rate_limit": "fail_open", "error": repr(err)},
        )
        return None


Handler = Callable[[Request], tuple[int, dict[str, Any]]]


def _scope(request: Request) -> str:
    """Whose Idempotency-Keys these are: the key's workspace, or the operator, or an address."""
    from tally import keys

    caller = keys.identify(request.bearer)
    if caller is not None:
        return caller.workspace
    if request.path.startswith("/admin/"):
        return "admin"
    return f"anonymous:{request.path_params.get('workspace', '')}:{request.source_ip}"


def _run(fn: Handler, request: Request, context: Any) -> tuple[int, dict[str, Any], dict]:
    """A changing call: at most once per Idempotency-Key, when the caller sends one."""
    from tally import idempotency

    key = idempotency.key_of(request.headers)
    if key is None:
        return (*fn(request), {})
    scope = _scope(request)
    request = dataclasses.replace(request, operation=idempotency.operation_id(scope, key))
    return idempotency.once(scope, key, request.fingerprint(), lambda: fn(request), context)


def api_handler(
    fn: Handler | None = None, *, changes: bool = False
) -> Callable[[dict, Any], dict] | Callable[[Handler], Callable[[dict, Any], dict]]:
    """Wrap a route's function: parse the event, rate-limit, call it (once per Idempotency-Key
    when it `changes` something), and shape every outcome, errors included, in the dialect of
    the request's path. No bare 500 and no stack trace ever leaves."""
    if fn is None:
        return functools.partial(api_handler, changes=changes)

    @functools.wraps(fn)
    @logger.inject_lambda_context(
        correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
    )
    @metrics.log_metrics
    @traced
    def handler(event: dict[str, Any], context: Any) -> dict:
        request = Request.from_event(event)
        count("Requests")
        limit_headers: dict[str, str] = {}
        try:
            decision = rate_limit(request)
            if decision is not None:
                limit_headers = decision.headers()
                if not decision.allowed:  # a limited call never reaches the domain
                    count("RateLimited")
                    raise RateLimited(
                        decision.policy.quota, decision.policy.window, decision.retry_after_s
                    )
            if changes:
                status, body, extra = _run(fn, request, context)
                return respond(status, body, {**limit_headers, **extra})
            status, body = fn(request)
            return respond(status, body, limit_headers)
        except TallyError as err:
            return error_answer(request, err, limit_headers)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if (
                code in _TRANSIENT
                or err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
            ):
                logger.warning("dynamodb unavailable", extra={"code": code})
                count("DynamoDBThrottles" if code in aws.THROTTLES else "DynamoDBFailures")
                return error_answer(request, Unavailable(), limit_headers)
            logger.exception("dynamodb refused a request")
        except BotoCoreError:
            logger.exception("dynamodb unreachable")
            return error_answer(request, Unavailable(), limit_headers)
        except Exception:
            logger.exception("unhandled error")
        return error_answer(
            request,
            Internal(f"internal error; quote request id {request.request_id}"),
            limit_headers,
        )

    return handler
