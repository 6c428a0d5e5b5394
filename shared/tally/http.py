"""The HTTP edge: an API Gateway HTTP API (payload 2.0) event in, a proxy answer out.

Each function serves exactly one route, so routing is API Gateway's job; Powertools' event
handler would add ~100 ms of imports to every cold start (bench/cold_start.py) for a router we would not
use. What is left is parsing the event and turning every outcome into the caller's dialect, once.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from botocore.exceptions import BotoCoreError, ClientError

from tally import admin, aws, dialects, idempotency, keys, names, operation
from tally import rate_limit as limits
from tally.documents import Document
from tally.errors import (
    BadRequest,
    Internal,
    RateLimited,
    TallyError,
    Unauthorized,
    Unavailable,
)
from tally.telemetry import add_keys, count, invocation, logger

MAX_BODY_BYTES = 16 * 1024
MAX_BODY_DEPTH = 32  # nested arrays/objects; no request of the API needs more than 3
# DynamoDB answers that outlasted tally.aws's retries: the caller may retry later (503).
_TRANSIENT = aws.REFUSED | {
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
}
# RFC 6750: the scheme (any case), one or more spaces, a b64token.
_BEARER = re.compile(r"bearer +([A-Za-z0-9._~+/-]+=*) *", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Identity:
    """A request's credential: none (anonymous), a valid API key (its caller), or a token that is
    no valid key (`refusal`: what a route needing a key answers; it may be the admin token)."""

    token: str | None = None
    caller: keys.Caller | None = None
    refusal: Unauthorized | None = None

    def require_key(self) -> keys.Caller:
        if self.caller is None:
            raise self.refusal or Unauthorized()
        return self.caller


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    route: str = "$default"  # the route key: "GET /v2/{workspace}/{name}/up"
    path_params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: str | None = None
    body_error: str | None = None  # why the body cannot be read at all: "too large", "not UTF-8"
    source_ip: str = ""
    request_id: str = ""

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Request:
        context = event.get("requestContext") or {}
        http = context.get("http") or {}
        body, body_error = _body_of(event)
        return cls(
            method=(http.get("method") or "GET").upper(),
            path=http.get("path") or event.get("rawPath") or "/",
            route=event.get("routeKey") or context.get("routeKey") or "$default",
            path_params=event.get("pathParameters") or {},
            query=event.get("queryStringParameters") or {},
            headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
            body=body,
            body_error=body_error,
            source_ip=http.get("sourceIp") or "",
            request_id=context.get("requestId") or "",
        )

    @property
    def bearer(self) -> str | None:
        """The Bearer token, or None when no Authorization header was sent. Any other
        Authorization (no scheme, another scheme, a malformed token) is no credential: 401."""
        value = self.headers.get("authorization")
        if value is None:
            return None
        found = _BEARER.fullmatch(value)
        if found is None:
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return found.group(1)

    @functools.cached_property
    def identity(self) -> Identity:
        """Who the Authorization header says the caller is, decided once per request (the rate
        limiter, the route's authorization and the idempotency scope all read this)."""
        try:
            token = self.bearer
        except Unauthorized as refusal:
            return Identity(refusal=refusal)
        if token is None:
            return Identity()
        try:
            return Identity(token=token, caller=keys.authenticate(token))
        except Unauthorized as refusal:  # not a valid key: perhaps the operator's token
            return Identity(token=token, refusal=refusal)

    def check_body(self) -> None:
        """Bound the body before anything parses it: its size, its encoding, its nesting."""
        if self.body_error == "too large":
            raise BadRequest(
                f"the body is over {MAX_BODY_BYTES} bytes", fields={"body": "too large"}
            )
        if self.body_error:
            raise BadRequest("the body is not valid UTF-8", fields={"body": "not UTF-8"})
        if self.body and _deeper_than(self.body, MAX_BODY_DEPTH):
            raise BadRequest(
                f"the body nests deeper than {MAX_BODY_DEPTH} levels",
                fields={"body": "nested too deeply"},
            )

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object; api_handler has bounded it (check_body) before any route
        runs, so it is not scanned twice."""
        if self.body is None or not self.body.strip():
            raise BadRequest("a JSON object body is required", fields={"body": "missing"})
        try:
            data = json.loads(self.body, object_pairs_hook=_once_each)
        except _Twice as twice:
            name = twice.args[0][:64]
            raise BadRequest(
                f"the body names {name!r} twice: send each field once",
                fields={name: "sent twice"},
            ) from None
        except ValueError as err:
            # Where it broke (the json module's own words, no byte of the body), so a body copied
            # with a comment or a trailing comma in it is found at once.
            where = (
                f": {err.msg} at line {err.lineno}, column {err.colno} (JSON has no comments "
                "and no trailing commas)"
                if isinstance(err, json.JSONDecodeError)
                else ": it holds a number of over 4,300 digits"  # int()'s own limit, in json
            )
            raise BadRequest(
                f"the body is not valid JSON{where}", fields={"body": "invalid JSON"}
            ) from err
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object", fields={"body": "not an object"})
        bad = _lone_surrogate(data)
        if bad is not None:
            raise BadRequest("the body is not valid UTF-8", fields={bad or "body": "not UTF-8"})
        return data

    def fingerprint(self) -> dict[str, Any]:
        """What makes two requests "the same request" for an Idempotency-Key (the body is
        bounded by check_body first)."""
        body: Any = self.body
        if body:
            with contextlib.suppress(ValueError):  # a non-JSON body is compared as text
                body = json.loads(body)
        return {"method": self.method, "path": self.path, "query": self.query, "body": body}

    def limit_path(self) -> str:
        """The path as the rate limiter counts it: the route with each parameter as the handler
        reads it, so `/account/counters/x/1`, `.../01` and `.../+1` are one path. Every request no
        route took shares one."""
        template = self.route.partition(" ")[2]
        if not template:
            return "$default"

        def canonical(found: re.Match[str]) -> str:
            value = self.path_params.get(found.group(1), "")
            if not _NUMBER.fullmatch(value):
                return value
            # The number as int() would write it, but by hand: int() refuses a string of over
            # 4,300 digits (Python's guard against quadratic parsing), and any caller may send one.
            digits = value.lstrip("+-").lstrip("0") or "0"
            return f"-{digits}" if value.startswith("-") and digits != "0" else digits

        return re.sub(r"\{(\w+)\}", canonical, template)


def _body_of(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """The body as text, or why it cannot be: sized before it is decoded or copied."""
    body = event.get("body")
    if body is None:
        return None, None
    if event.get("isBase64Encoded"):
        if len(body) > (MAX_BODY_BYTES + 2) // 3 * 4:
            return None, "too large"
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error and UnicodeDecodeError are both ValueErrors
            return None, "not UTF-8"
    if len(body) > MAX_BODY_BYTES or len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        return None, "too large"
    return body, None


# A string (an unterminated one runs to the end: no rescanning, linear time) or a bracket.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def _deeper_than(text: str, limit: int) -> bool:
    """Whether JSON text nests arrays/objects deeper than `limit`, found without parsing it (the
    json module recurses once per level: a deep enough body exhausts the stack)."""
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        elif bracket in "]}":
            depth -= 1
    return False


def _lone_surrogate(value: Any, path: str = "") -> str | None:
    """The field holding a lone surrogate (JSON's "\\ud800" escape, not UTF-8), or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and _lone_surrogate(key) is not None:
            return path
        found = _lone_surrogate(item, where)
        if found is not None:
            return found
    return None


class _Twice(Exception):
    """A JSON object naming one field twice (json keeps the last, silently)."""


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise _Twice(name)
        found[name] = value
    return found


# Every answer is read as the type it says: a message that echoes what a caller sent (a 404 naming
# its path) is never sniffed into a page. An SVG badge opened on its own is a document, in which
# nothing may run or load: its text is escaped, and this says so to the browser as well.
_NOSNIFF = {"X-Content-Type-Options": "nosniff"}
_SVG_SAFETY = {
    **_NOSNIFF,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


def respond(
    status: int, body: dict[str, Any] | Document, headers: dict[str, str] | None = None
) -> dict:
    coded: dict[str, str] = {}
    if isinstance(body, Document):
        content_type, text = body.content_type, body.text
        if body.encoding:
            coded = {"Content-Encoding": body.encoding}
    else:
        content_type, text = "application/json", json.dumps(body, separators=(",", ":"))
    safety = _SVG_SAFETY if content_type == "image/svg+xml" else _NOSNIFF
    answer = {
        "statusCode": status,
        "headers": {"Content-Type": content_type, **safety, **coded, **(headers or {})},
        "body": text,
    }
    if coded:
        answer["isBase64Encoded"] = True
    return answer


def error_answer(
    request: Request,
    err: TallyError,
    headers: dict[str, str] | None = None,
    shape: Callable[[Request, TallyError], Document] | None = None,
) -> dict:
    """`err` in the dialect of the request's path, or as `shape` draws it (an image route)."""
    body = shape(request, err) if shape else dialects.for_path(request.path).error_body(err)
    return respond(err.status, body, {**(headers or {}), **err.headers})


def conditional(request: Request, status: int, body: Any, headers: dict[str, str]) -> dict:
    """A read's answer with a strong ETag of its body; 304 with no body when the caller's
    If-None-Match already holds that tag (RFC 9110: weak comparison, `*` matches any). The tag
    is a hash of what was read: no DynamoDB call more."""
    answer = respond(status, body, headers)
    tag = '"' + hashlib.sha256(answer["body"].encode()).hexdigest()[:32] + '"'
    answer["headers"]["ETag"] = tag
    sent = request.headers.get("if-none-match", "")
    known = {t.strip().removeprefix("W/") for t in sent.split(",") if t.strip()}
    if status == 200 and (tag in known or "*" in known):
        answer["headers"].pop("Content-Type")
        answer["headers"].pop("Content-Encoding", None)
        return {**answer, "statusCode": 304, "body": "", "isBase64Encoded": False}
    return answer


def rate_limit(request: Request) -> Any:
    """Take what this request costs from its buckets (tally.rate_limit.admit): the decision, or
    None when the bucket table is unreachable. Then the request is served anyway (fail open): the
    limit protects the service, and an outage of the limiter must not become an outage of
    counting."""
    try:
        caller = request.identity.caller  # None: anonymous here, whatever a route says later
        operator = caller is None and request.path.startswith("/admin/") and _operator(request)
        workspace = request.path_params.get("workspace")
        try:
            workspace = names.workspace(workspace) if workspace else None
        except BadRequest:
            workspace = None
        workspace = workspace or (caller.workspace if caller else None)
        if workspace:
            add_keys(workspace=workspace)  # a correlation key on every later line
        path = request.limit_path()
        return limits.admit(
            "*" if path == "$default" else request.method,  # one bucket for every method
            path,
            # The operator has buckets of its own, under the default policy: anonymous traffic
            # from its address, or a workspace's quota, never keeps it from mending that quota.
            None if operator else workspace,
            key_id="operator" if operator else caller.key_id if caller else None,
            home=caller.workspace if caller else None,
            address=request.source_ip,
        )
    except (ClientError, BotoCoreError) as err:
        logger.warning(
            "rate limit unavailable: failing open",
            extra={"rate_limit": "fail_open", "error": repr(err)},
        )
        count("RateLimitFailOpen")
        return None


def _operator(request: Request) -> bool:
    """Whether the bearer is the operator's admin token (asked on /admin routes only)."""
    try:
        return admin.is_admin_token(request.identity.token)
    except Exception:  # not configured, or SSM unreachable: the route itself answers that
        return False


# A route's function: the request and what its authorization granted -> (status, body).
Handler = Callable[[Request, Any], tuple[int, dict[str, Any]]]
Authorize = Callable[[Request], Any]


def _run(fn: Handler, request: Request, grant: Any, context: Any) -> tuple[int, dict, dict]:
    """A changing call, run as one operation (tally.operation): at most once per Idempotency-Key
    when the caller sends one. Only a caller that passed authorization gets here, and its
    records are its own: the scope is who it is (grant.idempotency_scope)."""
    key = idempotency.key_of(request.headers)
    if key is None:
        with operation.begin():
            return (*fn(request, grant), {})
    scope, fingerprint = grant.idempotency_scope, request.fingerprint()
    with operation.begin(idempotency.operation_id(scope, key, fingerprint)):
        return idempotency.once(scope, key, fingerprint, lambda: fn(request, grant), context)


def api_handler(
    fn: Handler | None = None,
    *,
    auth: Authorize,
    changes: bool = False,
    cache: str | None = None,
    errors: Callable[[Request, TallyError], Document] | None = None,
) -> Callable[[dict, Any], dict] | Callable[[Handler], Callable[[dict, Any], dict]]:
    """Wrap a route's function: parse the event, rate-limit, bound the body, authorize (`auth`
    returns the grant the function gets, or raises), then call it (once per Idempotency-Key
    when it `changes` something) and shape every outcome, errors included, in the dialect of
    the request's path (or as `errors` draws them, on an image route). A read given a `cache`
    policy (its Cache-Control) answers with an ETag and 304 to a matching If-None-Match. No bare
    500 and no stack trace ever leaves."""
    if fn is None:
        return functools.partial(
            api_handler, auth=auth, changes=changes, cache=cache, errors=errors
        )

    @functools.wraps(fn)
    @invocation(correlation_path=correlation_paths.API_GATEWAY_HTTP)
    def handler(event: dict[str, Any], context: Any) -> dict:
        request = Request.from_event(event)
        count("Requests")
        answer = outcome(request, context)
        add_keys(route=request.route, status=answer["statusCode"])  # for a sampled summary
        return answer

    def outcome(request: Request, context: Any) -> dict:
        limit_headers: dict[str, str] = {}
        try:
            decision = rate_limit(request)
            if decision is not None:
                limit_headers = decision.headers()
                if not decision.allowed:  # a limited call never reaches the domain
                    count("RateLimited")
                    raise RateLimited(decision.policy.describe(), decision.retry_after_s)
            request.check_body()
            grant = auth(request)
            if changes:
                status, body, extra = _run(fn, request, grant, context)
                headers = {**limit_headers, **extra}
                if cache:
                    headers["Cache-Control"] = cache
                return respond(status, body, headers)
            status, body = fn(request, grant)
            if cache:
                return conditional(request, status, body, {**limit_headers, "Cache-Control": cache})
            return respond(status, body, limit_headers)
        except TallyError as err:
            if cache:  # a refusal must not be kept by a cache either (an image proxy's badge)
                limit_headers["Cache-Control"] = cache
            return error_answer(request, err, limit_headers, errors)
        except ClientError as err:
            code = aws.error_code(err)
            if (
                code in _TRANSIENT
                or err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
            ):
                logger.warning("dynamodb unavailable", extra={"code": code})
                count("DynamoDBThrottles" if code in aws.THROTTLES else "DynamoDBFailures")
                return error_answer(request, Unavailable(), limit_headers, errors)
            logger.exception("dynamodb refused a request")
        except BotoCoreError:
            logger.exception("dynamodb unreachable")
            return error_answer(request, Unavailable(), limit_headers, errors)
        except Exception:
            logger.exception("unhandled error")
        return error_answer(
            request,
            Internal(f"internal error; quote request id {request.request_id}"),
            limit_headers,
            errors,
        )

    handler.changes = changes  # type: ignore[attr-defined]  # read by the operation-id test
    return handler
