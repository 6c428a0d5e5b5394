"""The API's routes, for the $default function's 404 / 405 answers (API Gateway sends it every
request no other route matched). tests/api/test_template.py checks this list against template.yaml."""

from __future__ import annotations

import re

from tally.errors import MethodNotAllowed, NotFound

ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/admin/workspaces"),
    ("PUT", "/admin/workspaces/{workspace}/rate-limit"),
    ("POST", "/account/api-keys"),
    ("GET", "/account/api-keys"),
    ("DELETE", "/account/api-keys/{key_id}"),
    ("GET", "/v2/{workspace}/{name}"),
    ("GET", "/v2/{workspace}/{name}/up"),
    ("GET", "/v2/{workspace}/{name}/down"),
    ("GET", "/v2/{workspace}/{name}/reset"),
    ("GET", "/v2/{workspace}/{name}/set"),
    ("GET", "/v2/{workspace}/{name}/stats"),
    ("GET", "/v2/{workspace}/{name}/history"),
    ("GET", "/v2/{workspace}/{name}/badge.svg"),
    ("GET", "/v2/{workspace}/{name}/up/badge.svg"),
    ("GET", "/v2/{workspace}/{name}/shield.json"),
    ("POST", "/account/counters/{name}/{value}"),
    ("DELETE", "/account/counters/{name}"),
    ("GET", "/account/counters"),
    ("GET", "/app/session"),
    ("GET", "/account/settings"),
    ("PUT", "/account/settings"),
    ("GET", "/account/counters/{name}/settings"),
    ("PUT", "/account/counters/{name}/settings"),
    ("GET", "/account/counters/{name}/history"),
    ("POST", "/account/invoice-items"),
    ("GET", "/account/invoice-items"),
    ("POST", "/account/webhooks"),
    ("GET", "/account/webhooks"),
    ("DELETE", "/account/webhooks/{webhook_id}"),
    ("GET", "/account/webhooks/{webhook_id}/deliveries"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/{file}"),
)


def pattern(template: str) -> re.Pattern[str]:
    """A route's path template as a regex: `{name}` one segment, `{name+}` the rest (named
    groups: the path parameters). The local gateway matches its routes with the same rule."""
    regex = re.escape(template)
    regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", regex)
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex))


_COMPILED = [(method, pattern(path)) for method, path in ROUTES]


def no_route(method: str, path: str) -> Exception:
    """The error for a request no route took: 405 with Allow if the path exists, else 404."""
    allowed = sorted({m for m, pattern in _COMPILED if pattern.fullmatch(path)})
    # A route of this very method matches the decoded path, yet the gateway did not route it
    # there: the path held an encoded separator (%2F), so it is no route at all.
    if allowed and method not in allowed:
        return MethodNotAllowed(
            f"{method} is not allowed on {path}: use {' or '.join(allowed)}", allow=allowed
        )
    # API Gateway routes a path as sent: `/v2/ws/name/` is not `/v2/ws/name`, though some
    # documents (and web frameworks) write or accept the slash. Say so rather than a bare 404.
    # (Not naming the path without it: a %2F in the path as sent is a / here.)
    bare = path.rstrip("/")
    if bare != path and bare and any(pattern.fullmatch(bare) for _, pattern in _COMPILED):
        return NotFound(f"no route for {method} {path}: send it without the trailing slash")
    return NotFound(f"no route for {method} {path}")
