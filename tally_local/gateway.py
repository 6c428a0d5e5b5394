"""An API Gateway HTTP API, in-process: match a request to a route of template.yaml, build the
payload-2.0 event API Gateway would send, call the function's handler, and answer."""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from werkzeug.wrappers import Request, Response

from tally_local import docs, logline
from tally_local.template import ACCOUNT, REGION, Function, Route, Template


class LambdaContext:
    """The context object Lambda passes to a handler."""

    def __init__(self, fn: Function, timeout_s: float = 10.0) -> None:
        self.function_name = fn.logical_id
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn.logical_id}"
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.logical_id}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def invoke(fn: Function, event: dict[str, Any]) -> Any:
    return fn.load()(event, LambdaContext(fn))


class DynamoDBCalls:
    """The DynamoDB requests a client sends, counted per thread at the wire (botocore's
    before-send: each HTTP request, retries included), so the access log can say what each
    request cost: tally serve runs a function on the thread that serves its request, and its
    stream pollers, schedules and event bus on threads of their own."""

    def __init__(self) -> None:
        self._here = threading.local()

    def watch(self, client: Any) -> DynamoDBCalls:
        client.meta.events.register("before-send.dynamodb", self._sent)
        return self

    def _sent(self, **_: Any) -> None:
        self._here.count = getattr(self._here, "count", 0) + 1

    def taken(self) -> int:
        """The calls this thread sent since it last asked."""
        count, self._here.count = getattr(self._here, "count", 0), 0
        return count


def build_event(request: Request, route: Route, path_params: dict[str, str]) -> dict[str, Any]:
    now = datetime.now(UTC)
    body = request.get_data()
    text_body: str | None = None
    is_base64 = False
    if body:
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text_body, is_base64 = base64.b64encode(body).decode(), True
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(request.query_string.decode(), keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    route_key = "$default" if route.path == "$default" else f"{route.method} {route.path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,  # decoded, as HTTP APIs send it (%2F arrives as /)
        "rawQueryString": request.query_string.decode(),
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if query:
        event["queryStringParameters"] = query
    if path_params:
        event["pathParameters"] = path_params
    if request.cookies:
        event["cookies"] = [f"{k}={v}" for k, v in request.cookies.items()]
    if text_body is not None:
        event["body"] = text_body
    return event


def to_response(result: Any) -> Response:
    """Payload 2.0 answer mapping: a dict with statusCode is taken as is; anything else is a
    200 JSON body (as API Gateway infers it)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return Response(json.dumps(result), 200, content_type="application/json")
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(data, result["statusCode"])
    response.headers.clear()
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


def raw_target(request: Request) -> str:
    """The request target as the client sent it, still percent-encoded: werkzeug and gunicorn put
    it in RAW_URI, uWSGI and mod_wsgi in REQUEST_URI; without either, the decoded path quoted."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        # WSGI carries bytes in latin-1 strings (PEP 3333): undo that as werkzeug does for paths.
        raw = raw.encode("latin-1", "replace").decode("utf-8", "replace")
        # The absolute form (GET http://host/path), which servers must accept: its path.
        return _ABSOLUTE.sub("", raw, count=1)
    query = request.query_string.decode("latin-1")
    return quote(request.path) + (f"?{query}" if query else "")


def loggable(text: str, limit: int) -> str:
    """`text` as one field of one log line: every character that is not printable (C0 and C1
    controls, DEL, U+2028/U+2029, format characters...) and the backslash itself escaped as
    Python escapes them (\\n, \\x85, \\u2028, \\\\), and at most `limit` characters, then
    ...[+N] for the N characters of `text` left out."""
    out: list[str] = []
    size = 0
    for index, char in enumerate(text):
        if not char.isprintable() or char == "\\":
            char = char.encode("unicode_escape").decode("ascii")
        if size + len(char) > limit:  # whole escapes only: a cut never leaves half of one
            return "".join(out) + f"...[+{len(text) - index}]"
        out.append(char)
        size += len(char)
    return "".join(out)


_JSON = "application/json"


def _malformed(request: Request) -> bool:
    """A request API Gateway would refuse before any route: a header name with white space in
    it (`Authorization : Bearer x`, which a lenient parser keeps under another name), or a body
    that cannot be read (a broken chunked encoding). Reading the body here also caches it."""
    if any(not name or any(c.isspace() for c in name) for name, _ in request.headers.items()):
        return True
    try:
        request.get_data()
    except (OSError, ValueError):
        return True
    return False


class Gateway:
    """`calls`, when given, counts the DynamoDB calls of the functions it runs: each request's
    line then ends with how many its function made ("1 DynamoDB call")."""

    def __init__(
        self, template: Template, log: Any = sys.stderr, calls: DynamoDBCalls | None = None
    ) -> None:
        self.template = template
        self.routes = template.routes()
        self.cors = template.cors()
        self.log = log
        self.calls = calls

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for a path as it was sent (still percent-encoded), and its parameters.

        Routing is segment by segment on the raw path: a `/` on the wire separates segments and
        an encoded one (%2F) stays inside its segment, so `/v2/acme/x%2Fup` is the counter
        "x/up" (a bad name: 400) and never the `up` route of counter "x". Each segment is then
        decoded to compare with a literal segment or to become a path parameter."""
        segments = [unquote(segment) for segment in raw_path.split("/")]
        for route in self.routes:
            if route.path == "$default":
                return route, {}
            if route.method not in (method, "ANY"):
                continue
            params = route.match_segments(segments)
            if params is not None:
                return route, params
        return None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        started = time.perf_counter()
        if self.cors and self.cors.is_preflight(request):  # the gateway's own, as in AWS
            local, name = self.cors.preflight(request), "cors-preflight"
        else:
            local, name = docs.answer(request), "docs"  # /openapi.json, /docs: local tooling
        if local is None and _malformed(request):  # API Gateway's own 400: no function runs
            local, name = Response('{"message":"Bad Request"}', 400, mimetype=_JSON), "-"
        raw_path = raw_target(request).partition("?")[0]
        matched = self.match(request.method, raw_path) if local is None else None
        made = ""  # the DynamoDB calls of the function, when one ran and they are counted
        if local is not None:
            response = local
        elif matched is None:  # no $default route in the template: API Gateway's own answer
            response = Response('{"message":"Not Found"}', 404, content_type="application/json")
            name = "-"
        else:
            route, params = matched
            fn = self.template.functions[route.function]
            name = fn.logical_id
            if self.calls:
                self.calls.taken()  # (this thread's earlier calls are not this request's)
            try:
                response = to_response(invoke(fn, build_event(request, route, params)))
            except Exception as err:  # a handler crash: Lambda's answer through API Gateway
                # repr escapes what is not printable; the precision bounds what a request put in
                logline.write(self.log, f"tally serve: {name} raised {err!r:.500}")
                response = Response(
                    '{"message":"Internal Server Error"}', 500, content_type="application/json"
                )
            if self.calls:
                count = self.calls.taken()
                made = f" {count} DynamoDB call{'' if count == 1 else 's'}"
        if self.cors and name != "cors-preflight":  # every answer, errors included
            response = self.cors.apply(request, response)
        elapsed = (time.perf_counter() - started) * 1000
        # The client chose the method and the target: escaped and bounded, so one request is one
        # line (a decoded %0A in the path would start a forged one), the target as it was sent.
        logline.write(
            self.log,
            f"{request.remote_addr} {loggable(request.method, 32)} "
            f"{loggable(raw_target(request), 400)} {response.status_code} {name} {elapsed:.1f}ms"
            f"{made}",
        )
        return response(environ, start_response)
