"""openapi.yaml describes the API as built: every route of template.yaml and nothing else, and
every answer a handler gives, status, content type, body and headers, in the shape the document
says."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

import pytest
from botocore.exceptions import ClientError
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tally import counters
from tally_local.docs import document
from tests.api.test_template import SEVERAL_ROUTES
from tests.conftest import ADMIN_TOKEN, TEMPLATE, Answer, resolve_publicly

DOC = document()
BASE = "urn:tally:openapi"  # the document as one schema resource, so "#/components/..." resolve
REGISTRY = Registry().with_resource(BASE, Resource.from_contents(DOC, DRAFT202012))
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
ROUTES = [r for r in TEMPLATE.routes() if r.path != "$default"]
ERRORS = {400, 401, 403, 404, 405, 409, 422, 429, 503}
RATE_LIMIT_HEADERS = ("RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining")
JSON, SVG = "application/json", "image/svg+xml"


def _operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in DOC["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _follow(pointer: str) -> tuple[str, dict[str, Any]]:
    """The object at a JSON pointer into the document, through any $ref it is."""
    node: Any = DOC
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if "$ref" in node:
        return _follow(node["$ref"])
    return pointer, node


def _validate(pointer: str, instance: Any) -> None:
    validator = Draft202012Validator({"$ref": BASE + pointer}, registry=REGISTRY)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, f"{pointer}: {instance!r}\n" + "\n".join(e.message for e in errors[:5])


def conforms(pointer: str, status: int, body: Any, headers: dict[str, str]) -> None:
    """An answer matches the response object at `pointer`: content type, body and headers. An
    SVG body is text that must parse as an SVG document; a response with no content (a 304) has
    neither a body nor a content type."""
    where, response = _follow(pointer)
    received = {name.lower(): value for name, value in headers.items()}
    media = received.get("content-type", "").partition(";")[0].strip()
    content = response.get("content", {})
    if not content:
        assert body is None and not media, f"{status} with a body ({media or 'no type'})"
    else:
        assert media in content, f"{status} as {media or 'no content type'}, not {sorted(content)}"
        _validate(f"{where}/content/{media.replace('/', '~1')}/schema", body)
        if media == SVG:
            assert ET.fromstring(body).tag == "{http://www.w3.org/2000/svg}svg", status
    for name in response.get("headers", {}):
        header_at, spec = _follow(f"{where}/headers/{name.replace('/', '~1')}")
        if name.lower() in received:
            _validate(f"{header_at}/schema", received[name.lower()])
        else:
            assert not spec.get("required"), f"{status} without its {name} header"


class Described:
    """The `api` fixture, checking every answer against the document as it goes, and keeping
    which (operation, status) pairs were seen."""

    def __init__(self, api) -> None:
        self.api = api
        self.seen: dict[str, set[int]] = defaultdict(set)

    def __call__(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """As `api(...)`, and the answer checked against the document."""
        answer = self.api(method, path, key=key, body=body, headers=headers)
        for name in RATE_LIMIT_HEADERS:
            assert name in answer.headers, f"{method} {path}: no {name}"
        route = next(
            (r for r in ROUTES if r.method == method and r.pattern.fullmatch(path.split("?")[0])),
            None,
        )
        if route is None:  # the $default route: the dialect's own error answer (JSON)
            dialect = "V2_" if path.startswith("/v2/") else "Backstack"
            pointer = _pointer("components", "responses", f"{dialect}{answer.status}")
            key = "$default"
        else:
            responses = _operations()[(method, route.path)]["responses"]
            assert str(answer.status) in responses, f"{method} {route.path}: {answer.status}"
            pointer = _pointer("paths", route.path, method.lower(), "responses", str(answer.status))
            key = f"{method} {route.path}"
        conforms(pointer, answer.status, answer.body, answer.headers)
        self.seen[key].add(answer.status)
        return answer


@pytest.fixture
def described(api) -> Described:
    return Described(api)


# ------------------------------------------------------------------ the document itself


def test_the_document_is_valid_openapi_3_1():
    validate_spec(DOC)
    assert DOC["openapi"].startswith("3.1.")


def test_every_route_of_the_template_is_documented_and_nothing_else():
    declared = {(r.method, r.path) for r in ROUTES}
    assert set(_operations()) == declared


def test_each_operation_is_named_after_the_function_that_serves_it():
    for route in ROUTES:
        named = _operations()[(route.method, route.path)]["operationId"]
        if route.function in SEVERAL_ROUTES:  # one function, several operations: its name first
            assert named.startswith(route.function.removesuffix("Function")), named
        else:
            assert named + "Function" == route.function


def _refusal(path: str, status: str) -> str:
    """The response component a refusal on `path` is: its dialect's error, or on an image route
    the badge drawing it (except 405, only ever the $default route's V2 JSON)."""
    if path.endswith(".svg") and status != "405":
        return f"Badge{status}"
    return f"V2_{status}" if path.startswith("/v2/") else f"Backstack{status}"


def _parameters(op: dict[str, Any]) -> set[str]:
    """The names of the shared parameters (components/parameters) an operation takes."""
    return {p["$ref"].rsplit("/", 1)[1] for p in op.get("parameters", []) if "$ref" in p}


@pytest.mark.parametrize("key", sorted(_operations()), ids=" ".join)
def test_each_operation_documents_its_dialects_errors_with_rate_limit_headers(key):
    method, path = key
    op = _operations()[key]
    changes = "IdempotencyKey" in _parameters(op)
    assert {"429", "503"} <= set(op["responses"])
    if changes:  # an Idempotency-Key can be malformed, reused or in flight
        assert {"400", "409", "422"} <= set(op["responses"])
    for status, response in op["responses"].items():
        if int(status) >= 400:
            assert response["$ref"].endswith(f"/{_refusal(path, status)}"), (key, status)
        _, resolved = _follow(_pointer("paths", path, method.lower(), "responses", status))
        assert set(RATE_LIMIT_HEADERS) <= set(resolved["headers"]), (key, status)
        if changes and int(status) < 400:
            assert "Idempotent-Replayed" in resolved["headers"], (key, status)


CONDITIONAL = sorted(k for k, op in _operations().items() if "304" in op["responses"])


@pytest.mark.parametrize("key", sorted(_operations()), ids=" ".join)
def test_a_conditional_read_documents_if_none_match_its_etag_and_its_304(key):
    method, path = key
    op = _operations()[key]
    assert ("IfNoneMatch" in _parameters(op)) == (key in CONDITIONAL), key
    answer = _pointer("paths", path, method.lower(), "responses")
    success = next(status for status in op["responses"] if status.startswith("2"))
    _, ok = _follow(f"{answer}/{success}")
    if key not in CONDITIONAL:
        assert "ETag" not in ok.get("headers", {}), key  # only reads are tagged
        return
    _, not_modified = _follow(f"{answer}/304")
    assert method == "GET" and "content" not in not_modified
    for name in ("ETag", "Cache-Control"):  # the 304 says what the 200 would have said
        assert ok["headers"][name] == not_modified["headers"][name], (key, name)
    images = path.endswith((".svg", ".json"))  # badges and shields.io JSON are never stored
    no_store = "Cache-Control-No-Store" if images else "Cache-Control"
    assert ok["headers"]["Cache-Control"]["$ref"].endswith(f"/{no_store}"), key


# ------------------------------------------------------------------ real answers against it


def test_every_v2_answer_matches_the_document(described, workspace):
    ws, admin = workspace
    reader = described("POST", "/account/api-keys", key=admin, body={"scopes": ["read"]})
    read = reader.body["api_key"]

    assert described("GET", f"/v2/{ws}/visits", key=admin).status == 404  # never changed
    assert described("GET", f"/v2/{ws}/visits/up", key=admin).status == 200
    assert described("GET", f"/v2/{ws}/visits", key=admin).status == 200
    assert described("GET", f"/v2/{ws}/visits/stats", key=admin).status == 200
    history = f"/v2/{ws}/visits/history"
    assert described("GET", history, key=admin).status == 200
    assert described("GET", f"{history}?group_by=day&tz=Europe/Paris", key=admin).status == 200
    csv = described("GET", f"{history}?group_by=week", key=read, headers={"Accept": "text/csv"})
    assert csv.status == 200 and csv.body.startswith("at,up,down,value_change,billed\n")
    assert described("GET", f"{history}?group_by=year", key=admin).status == 400
    assert described("GET", history).status == 401  # not public
    assert described("GET", f"/v2/{ws}/visits/down", key=admin).status == 200
    assert described("GET", f"/v2/{ws}/visits/set?value=41", key=admin).status == 200
    assert described("GET", f"/v2/{ws}/visits/reset", key=admin).status == 200
    assert described("GET", f"/v2/{ws}/visits/badge.svg", key=admin).status == 200
    assert described("GET", f"/v2/{ws}/visits/up/badge.svg", key=admin).status == 200
    shield = f"/v2/{ws}/visits/shield.json"
    assert described("GET", f"{shield}?label=hits&color=FF69B4", key=admin).status == 200
    assert described("GET", f"{shield}?color=%23fff", key=admin).status == 400
    assert described("GET", shield).status == 401
    assert described("GET", f"/v2/{ws}/visits").status == 401
    assert described("GET", f"/v2/{ws}/visits/up", key=read).status == 403
    assert described("GET", f"/v2/{ws}/visits/set?value=1.5", key=admin).status == 400
    assert described("GET", f"/v2/{ws}/Bad!name", key=admin).status == 400
    assert described("POST", f"/v2/{ws}/visits/up", key=admin).status == 405  # $default
    described("PUT", "/account/counters/capped/settings", key=admin, body={"upper_bound": 0})
    assert described("GET", f"/v2/{ws}/capped/up", key=admin).status == 409
    once = {"Idempotency-Key": "v2-once"}
    assert described("GET", f"/v2/{ws}/visits/up", key=admin, headers=once).status == 200
    replay = described("GET", f"/v2/{ws}/visits/up", key=admin, headers=once)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert described("GET", f"/v2/{ws}/visits/down", key=admin, headers=once).status == 422

    v2 = {k: s for k, s in described.seen.items() if k.startswith("GET /v2/")}
    assert {k for k, s in v2.items() if 200 in s} == {
        f"GET {r.path}" for r in ROUTES if r.path.startswith("/v2/")
    }
    seen = set().union(*v2.values(), described.seen["$default"])
    assert seen >= ERRORS - {429, 503}  # those two: test_overload_answers_match_the_document


def test_every_backstack_and_operator_answer_matches_the_document(described, workspace):
    ws, admin = workspace
    created = described("POST", "/account/api-keys", key=admin, body={"scopes": ["read"]})
    read, read_id = created.body["api_key"], created.body["key_id"]
    assert described("GET", "/account/api-keys?limit=1", key=admin).status == 200
    assert described("GET", "/dashboard").status == 200
    assert described("GET", "/dashboard/app.js").status == 200
    assert described("GET", "/dashboard/uPlot.min.css").status == 200
    assert described("GET", "/dashboard/package.json").status == 404  # only the page's files
    assert described("GET", "/account/api-keys", key=read).status == 403
    assert described("GET", "/account/api-keys?cursor=!!", key=admin).status == 400

    assert described("POST", "/account/counters/api_calls/41", key=admin).status == 200
    assert described("POST", "/account/counters/api_calls/x", key=admin).status == 400
    assert described("POST", "/account/counters/api_calls/1").status == 401
    assert described("POST", "/account/counters/api_calls/1", key=read).status == 403
    assert described("GET", "/account/counters", key=read).status == 200
    assert described("GET", "/account/counters?details=true", key=admin).status == 200
    assert described("GET", "/account/counters?details=true", key=read).status == 200
    assert described("GET", "/account/counters?details=no", key=read).status == 400
    assert described("GET", "/account/counters", key=read, body="[" * 33).status == 400
    assert described("GET", "/app/session", key=read).status == 200
    assert described("GET", "/app/session", key=read, body="x" * 16385).status == 400
    settings = "/account/settings"
    assert described("GET", settings, key=admin).status == 200
    public = {"default_visibility": "public"}
    assert described("PUT", settings, key=admin, body=public).status == 200
    assert described("PUT", settings, key=admin, body={"default_visibility": None}).status == 400
    assert described("GET", settings, key=read).status == 403
    assert described("PUT", settings, key="tly_x_y", body=public).status == 401
    assert described("DELETE", "/account/counters/api_calls", key=admin).status == 200
    assert described("GET", "/account/counters/api_calls/settings", key=admin).status == 200
    history = "/account/counters/api_calls/history"
    assert described("GET", f"{history}?group_by=month", key=read).status == 200
    assert described("GET", f"{history}?from=yesterday", key=read).status == 400
    bounded = {"lower_bound": -5, "upper_bound": 100, "visibility": "public"}
    billed = {"billing": {"threshold": 1000, "amount": 500, "description": "API calls"}}
    path = "/account/counters/api_calls/settings"
    assert described("PUT", path, key=admin, body={**bounded, **billed}).status == 200
    assert described("GET", path, key=admin).status == 200
    follows = described("PUT", path, key=admin, body={"visibility": None})
    assert follows.status == 200 and follows.body["visibility"] == "public"  # the workspace's
    assert described("PUT", path, key=admin, body={"lower_bound": 5}).status == 409
    item = {"amount": 500, "description": "setup fee"}
    assert described("POST", "/account/invoice-items", key=admin, body=item).status == 201
    assert described("GET", "/account/invoice-items?limit=1", key=read).status == 200
    assert described("GET", "/account/invoice-items?limit=0", key=read).status == 400
    assert described("DELETE", f"/account/api-keys/{read_id}", key=admin).status == 200
    assert described("DELETE", "/account/api-keys/nokey", key=admin).status == 404
    assert described("PATCH", "/account/counters", key=admin).status == 405  # $default
    once = {"Idempotency-Key": "bs-once"}
    add = "/account/counters/api_calls/2"
    assert described("POST", add, key=admin, headers=once).status == 200
    assert described("POST", add, key=admin, headers=once).headers["Idempotent-Replayed"]
    assert described("DELETE", "/account/counters/x", key=admin, headers=once).status == 422

    other = {"workspace": "other", "default_visibility": "public"}
    made = described("POST", "/admin/workspaces", key=ADMIN_TOKEN, body=other)
    assert made.status == 201 and made.body["default_visibility"] == "public"
    plain = described("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "plain"})
    assert plain.body["default_visibility"] == "private"
    body = {"workspace": ws}
    assert described("POST", "/admin/workspaces", key=ADMIN_TOKEN, body=body).status == 409
    assert described("POST", "/admin/workspaces", key="wrong", body=body).status == 401
    assert described("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={}).status == 400
    limit = {"quota": 1200, "window": 60}
    rate_limit = f"/admin/workspaces/{ws}/rate-limit"
    assert described("PUT", rate_limit, key=ADMIN_TOKEN, body=limit).status == 200
    assert described("GET", settings, key=admin).body["rate_limit"] == limit
    nowhere = "/admin/workspaces/nowhere/rate-limit"
    assert described("PUT", nowhere, key=ADMIN_TOKEN, body=limit).status == 404

    hook = {"url": "http://127.0.0.1:9/in", "events": ["tally.counter.alert"]}
    made_hook = described("POST", "/account/webhooks", key=admin, body=hook)
    assert made_hook.status == 201
    assert described("POST", "/account/webhooks", key=admin, body={"url": "x"}).status == 400
    assert described("GET", "/account/webhooks", key=admin).status == 200
    assert described("GET", "/account/webhooks", key=read).status in (401, 403)
    sent = f"/account/webhooks/{made_hook.body['id']}/deliveries"
    assert described("GET", sent, key=admin).status == 200
    assert described("GET", f"{sent}?cursor=x", key=admin).status == 400
    assert described("DELETE", f"/account/webhooks/{made_hook.body['id']}", key=admin).status == 200
    assert described("DELETE", f"/account/webhooks/{made_hook.body['id']}", key=admin).status == 404

    backstack = {k: s for k, s in described.seen.items() if not k.startswith("GET /v2/")}
    assert {k for k, s in backstack.items() if s & {200, 201}} == {
        f"{r.method} {r.path}" for r in ROUTES if not r.path.startswith("/v2/")
    }
    assert set().union(*backstack.values()) >= ERRORS - {429, 503}


def test_overload_answers_match_the_document(described, workspace, monkeypatch):
    ws, admin = workspace
    described("GET", f"/v2/{ws}/c/up", key=admin)
    limit = {"quota": 1, "window": 3600}
    described("PUT", f"/admin/workspaces/{ws}/rate-limit", key=ADMIN_TOKEN, body=limit)
    badges = (f"/v2/{ws}/c/badge.svg", f"/v2/{ws}/c/up/badge.svg")
    for path in (f"/v2/{ws}/c", "/account/counters", *badges):
        described("GET", path, key=admin)
        assert described("GET", path, key=admin).status == 429

    def throttled(*_, **__):
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "GetItem")

    monkeypatch.setattr(counters, "get", throttled)
    monkeypatch.setattr(counters, "values", throttled)
    monkeypatch.setattr(counters, "change", throttled)
    assert described("GET", f"/v2/{ws}/c/stats", key=admin).status == 503
    assert described("GET", "/app/session", key=admin).status == 503
    for path in (f"/v2/{ws}/d/badge.svg", f"/v2/{ws}/d/up/badge.svg"):
        assert described("GET", path, key=admin).status == 503
    for route in (r for r in ROUTES if r.path.endswith(".svg")):  # as images (conforms)
        assert described.seen[f"GET {route.path}"] >= {429, 503}, route.path


# Badges and their refusals, as (path, who, headers, status). `who` is "admin" (a key of the
# workspace), "read" (its read-only key), "other" (another workspace's key) or None (no key).
# `visits` is public, `secret` private and `capped` bounded at 0; `never` was never changed.
BADGE_CASES = [
    ("/v2/{ws}/visits/badge.svg?label=visits&color=green", None, {}, 200),
    ("/v2/{ws}/secret/badge.svg?color=ABC", "admin", {}, 200),
    ("/v2/{ws}/visits/badge.svg?color=%23fff", None, {}, 400),
    ("/v2/{ws}/visits/badge.svg?label=", None, {}, 400),
    ("/v2/{ws}/secret/badge.svg", None, {}, 401),
    ("/v2/{ws}/visits/badge.svg", None, {"Authorization": "Basic eDp5"}, 401),
    ("/v2/{ws}/secret/badge.svg", "other", {}, 404),
    ("/v2/{ws}/never/badge.svg", "admin", {}, 404),
    ("/v2/{ws}/visits/up/badge.svg", None, {}, 200),
    ("/v2/{ws}/secret/up/badge.svg", "admin", {"Idempotency-Key": "badge-once"}, 200),
    ("/v2/{ws}/visits/up/badge.svg?label=a%0Ab", None, {}, 400),
    ("/v2/{ws}/visits/up/badge.svg", None, {"Idempotency-Key": "bad key"}, 400),
    ("/v2/{ws}/secret/up/badge.svg", None, {}, 401),
    ("/v2/{ws}/secret/up/badge.svg", "read", {}, 403),
    ("/v2/{ws}/secret/up/badge.svg", "other", {}, 404),
    ("/v2/{ws}/capped/up/badge.svg", "admin", {}, 409),
    ("/v2/{ws}/secret/up/badge.svg?label=x", "admin", {"Idempotency-Key": "badge-once"}, 422),
]


def test_every_badge_answer_and_refusal_is_an_svg_image_as_documented(described, workspace):
    ws, admin = workspace
    scoped = described("POST", "/account/api-keys", key=admin, body={"scopes": ["read"]})
    other = described("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "other"})
    keys = {"admin": admin, "read": scoped.body["api_key"], "other": other.body["api_key"]}
    for name in ("visits", "secret"):
        described("GET", f"/v2/{ws}/{name}/up", key=admin)
    settings = "/account/counters/{}/settings"
    described("PUT", settings.format("visits"), key=admin, body={"visibility": "public"})
    described("PUT", settings.format("capped"), key=admin, body={"upper_bound": 0})

    for path, who, headers, status in BADGE_CASES:
        answer = described("GET", path.format(ws=ws), key=keys.get(who), headers=headers)
        assert answer.status == status, (path, who, answer.body)
        assert answer.headers["Content-Type"].startswith(SVG), (path, who, status)

    for route in (r for r in ROUTES if r.path.endswith(".svg")):
        documented = {int(s) for s in _operations()[(route.method, route.path)]["responses"]}
        # 304: the conditional-read test; 405: the $default route's; 429, 503: overload.
        assert described.seen[f"GET {route.path}"] == documented - {304, 405, 429, 503}


# Every conditional read, as (path, who): "admin" (a key of the workspace) or None (no key, on
# the public counter `visits`).
CONDITIONAL_READS = [
    ("/v2/{ws}/visits", "admin"),
    ("/v2/{ws}/visits", None),
    ("/v2/{ws}/visits/stats", "admin"),
    ("/v2/{ws}/visits/badge.svg?label=visits&color=green", None),
    ("/v2/{ws}/visits/badge.svg", "admin"),
    ("/v2/{ws}/visits/shield.json", None),
    ("/account/counters", "admin"),
    ("/app/session", "admin"),
    ("/account/invoice-items?limit=1", "admin"),
    ("/account/counters/visits/settings", "admin"),
    ("/account/settings", "admin"),
    ("/account/webhooks", "admin"),
    ("/account/api-keys", "admin"),
    ("/dashboard", None),
    ("/dashboard/style.css", None),
    ("/v2/{ws}/visits/history?group_by=month&from=2026-01-01&to=2026-03-01", None),
    ("/account/counters/visits/history?group_by=month&from=2026-01-01&to=2026-03-01", "admin"),
]


def test_every_conditional_read_answers_304_to_its_etag_as_documented(described, workspace):
    ws, admin = workspace
    described("GET", f"/v2/{ws}/visits/up", key=admin)
    body = {"visibility": "public"}
    described("PUT", "/account/counters/visits/settings", key=admin, body=body)
    described("POST", "/account/invoice-items", key=admin, body={"amount": 5, "description": "x"})
    hook = {"url": "http://127.0.0.1:9/in", "events": ["tally.counter.alert"]}
    hook_id = described("POST", "/account/webhooks", key=admin, body=hook).body["id"]
    reads = [*CONDITIONAL_READS, (f"/account/webhooks/{hook_id}/deliveries", "admin")]

    for path, who in reads:
        key = admin if who else None
        first = described("GET", path.format(ws=ws), key=key)
        tag = first.headers["ETag"]
        for sent in (tag, f'W/{tag}, "other"', "*"):
            again = described("GET", path.format(ws=ws), key=key, headers={"If-None-Match": sent})
            assert (first.status, again.status, again.body) == (200, 304, None), (path, sent)
            assert again.headers["ETag"] == tag
            assert again.headers["Cache-Control"] == first.headers["Cache-Control"]
        stale = described("GET", path.format(ws=ws), key=key, headers={"If-None-Match": '"x"'})
        assert stale.status == 200 and stale.headers["ETag"] == tag, path

    answered_304 = {k for k, statuses in described.seen.items() if 304 in statuses}
    assert answered_304 == {f"{method} {path}" for method, path in CONDITIONAL}


def test_a_replayed_up_badge_is_the_badge_it_replays(described, workspace):
    ws, admin = workspace
    once = {"Idempotency-Key": "badge-replay"}
    first = described("GET", f"/v2/{ws}/c/up/badge.svg", key=admin, headers=once)
    replay = described("GET", f"/v2/{ws}/c/up/badge.svg", key=admin, headers=once)

    assert replay.headers["Idempotent-Replayed"] == "true"
    assert (replay.status, replay.body) == (first.status, first.body)


BODIES = sorted(k for k, op in _operations().items() if "requestBody" in op)


@pytest.mark.parametrize("key", BODIES, ids=" ".join)
def test_each_documented_request_example_is_accepted_and_an_unknown_field_is_400(
    api, key, monkeypatch
):
    method, template_path = key
    op = _operations()[key]
    media = _pointer("paths", template_path, method.lower(), "requestBody", "content")
    example = op["requestBody"]["content"]["application/json"]["example"]
    _validate(f"{media}/application~1json/schema", example)
    made = api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "examples"})
    operator = template_path.startswith("/admin/")
    key_ = ADMIN_TOKEN if operator else made.body["api_key"]
    params = {p["name"]: p.get("example") for p in map(_resolved, op.get("parameters", []))}
    path = template_path.format(**{**params, "workspace": "examples"})

    # The examples name public hosts (a webhook's URL): resolved here as DNS would, offline.
    resolve_publicly(monkeypatch, "example.com")
    refused = api(method, path, key=key_, body={**example, "surprise": 1})
    accepted = api(method, path, key=key_, body=example)

    assert refused.status == 400, refused.body
    assert "surprise" in refused.body["error"]["fields"]
    assert accepted.status in (200, 201), accepted.body


def _resolved(node: dict[str, Any]) -> dict[str, Any]:
    return _follow(node["$ref"])[1] if "$ref" in node else node


def test_a_mismatch_between_an_answer_and_the_document_is_caught():
    pointer = _pointer("paths", "/v2/{workspace}/{name}", "get", "responses", "404")
    backstack_shape = {"error": {"type": "user", "code": 404, "message": "no", "fields": {}}}
    json_type = {"Content-Type": JSON}
    with pytest.raises(AssertionError, match="404"):
        conforms(pointer, 404, backstack_shape, json_type)
    with pytest.raises(AssertionError, match="Retry-After"):
        body = {"code": "429", "message": "x"}
        conforms(_pointer("components", "responses", "V2_429"), 429, body, json_type)
    badge = _pointer("paths", "/v2/{workspace}/{name}/badge.svg", "get", "responses")
    with pytest.raises(AssertionError, match=f"401 as {JSON}"):  # a JSON refusal on an image
        conforms(f"{badge}/401", 401, {"code": "401", "message": "x"}, json_type)
    with pytest.raises(ET.ParseError):  # SVG in name only
        conforms(f"{badge}/404", 404, "not found", {"Content-Type": SVG})
    with pytest.raises(AssertionError, match="304 with a body"):
        conforms(f"{badge}/304", 304, "<svg/>", {"Content-Type": SVG})
    with pytest.raises(AssertionError, match="ETag"):
        conforms(
            f"{badge}/200",
            200,
            '<svg xmlns="http://www.w3.org/2000/svg"/>',
            {"Content-Type": SVG, "Cache-Control": "no-cache, no-store, must-revalidate"},
        )


def test_the_document_names_its_patterns_as_the_code_does():
    from tally import badges, names, workspaces
    from tally.dialects import v2

    schemas = DOC["components"]["schemas"]
    assert schemas["Visibility"]["enum"] == list(workspaces.VISIBILITIES)
    assert schemas["ColorName"]["enum"] == list(badges.NAMED_COLORS)
    label = DOC["components"]["parameters"]["BadgeLabel"]["schema"]
    assert (label["minLength"], label["maxLength"]) == (1, badges.MAX_LABEL)
    no_store = DOC["components"]["headers"]["Cache-Control-No-Store"]["schema"]["const"]
    assert no_store == v2.NO_STORE
    assert schemas["WorkspaceName"]["pattern"] == f"^{names._WORKSPACE.pattern}$"
    assert schemas["CounterName"]["pattern"] == f"^{names._COUNTER.pattern}$"
    assert (schemas["Int64"]["minimum"], schemas["Int64"]["maximum"]) == (
        names.INT64_MIN,
        names.INT64_MAX,
    )
