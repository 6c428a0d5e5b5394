"""openapi.yaml describes the API as built: every route of template.yaml and nothing else, and
every answer a handler gives, status, body and headers, in the shape the document says."""

from __future__ import annotations

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
from tests.conftest import ADMIN_TOKEN, TEMPLATE

DOC = document()
BASE = "urn:tally:openapi"  # the document as one schema resource, so "#/components/..." resolve
REGISTRY = Registry().with_resource(BASE, Resource.from_contents(DOC, DRAFT202012))
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
ROUTES = [r for r in TEMPLATE.routes() if r.path != "$default"]
ERRORS = {400, 401, 403, 404, 405, 409, 422, 429, 503}
RATE_LIMIT_HEADERS = ("RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining")


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
    """An answer matches the response object at `pointer`: body schema and headers."""
    where, response = _follow(pointer)
    _validate(f"{where}/content/application~1json/schema", body)
    received = {name.lower(): value for name, value in headers.items()}
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

    def __call__(self, method: str, path: str, **kw: Any):
        answer = self.api(method, path, **kw)
        for name in RATE_LIMIT_HEADERS:
            assert name in answer.headers, f"{method} {path}: no {name}"
        route = next(
            (r for r in ROUTES if r.method == method and r.pattern.fullmatch(path.split("?")[0])),
            None,
        )
        if route is None:  # the $default route: the dialect's own error answer
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
        assert _operations()[(route.method, route.path)]["operationId"] + "Function" == (
            route.function
        )


@pytest.mark.parametrize("key", sorted(_operations()), ids=" ".join)
def test_each_operation_documents_its_dialects_errors_with_rate_limit_headers(key):
    method, path = key
    op = _operations()[key]
    dialect = "V2_" if path.startswith("/v2/") else "Backstack"
    changes = any(p.get("$ref", "").endswith("/IdempotencyKey") for p in op.get("parameters", []))
    assert {"429", "503"} <= set(op["responses"])
    if changes:  # an Idempotency-Key can be malformed, reused or in flight
        assert {"400", "409", "422"} <= set(op["responses"])
    for status, response in op["responses"].items():
        if int(status) >= 400:
            assert response["$ref"].endswith(f"/{dialect}{status}"), (key, status)
        _, resolved = _follow(_pointer("paths", path, method.lower(), "responses", status))
        assert set(RATE_LIMIT_HEADERS) <= set(resolved["headers"]), (key, status)
        if changes and int(status) < 400:
            assert "Idempotent-Replayed" in resolved["headers"], (key, status)


# ------------------------------------------------------------------ real answers against it


def test_every_v2_answer_matches_the_document(described, workspace):
    ws, admin = workspace
    reader = described("POST", "/account/api-keys", key=admin, body={"scopes": ["read"]})
    read = reader.body["api_key"]

    assert described("GET", f"/v2/{ws}/visits", key=admin).status == 404  # never changed
    assert described("GET", f"/v2/{ws}/visits/up", key=admin).status == 200
    assert described("GET", f"/v2/{ws}/visits", key=admin).status == 200
    assert described("GET", f"/v2/{ws}/visits/stats", key=admin).status == 200
    assert described("GET", f"/v2/{ws}/visits/down", key=admin).status == 200
    assert described("GET", f"/v2/{ws}/visits/set?value=41", key=admin).status == 200
    assert described("GET", f"/v2/{ws}/visits/reset", key=admin).status == 200
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

    assert described("POST", "/account/counters/api_calls/41", key=admin).status == 200
    assert described("POST", "/account/counters/api_calls/x", key=admin).status == 400
    assert described("POST", "/account/counters/api_calls/1").status == 401
    assert described("POST", "/account/counters/api_calls/1", key=read).status == 403
    assert described("GET", "/account/counters", key=read).status == 200
    assert described("GET", "/app/session", key=read).status == 200
    assert described("DELETE", "/account/counters/api_calls", key=admin).status == 200
    assert described("GET", "/account/counters/api_calls/settings", key=admin).status == 200
    bounded = {"lower_bound": -5, "upper_bound": 100, "visibility": "public"}
    billed = {"billing": {"threshold": 1000, "amount": 500, "description": "API calls"}}
    path = "/account/counters/api_calls/settings"
    assert described("PUT", path, key=admin, body={**bounded, **billed}).status == 200
    assert described("GET", path, key=admin).status == 200
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

    other = {"workspace": "other"}
    assert described("POST", "/admin/workspaces", key=ADMIN_TOKEN, body=other).status == 201
    body = {"workspace": ws}
    assert described("POST", "/admin/workspaces", key=ADMIN_TOKEN, body=body).status == 409
    assert described("POST", "/admin/workspaces", key="wrong", body=body).status == 401
    assert described("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={}).status == 400
    limit = {"quota": 1200, "window": 60}
    rate_limit = f"/admin/workspaces/{ws}/rate-limit"
    assert described("PUT", rate_limit, key=ADMIN_TOKEN, body=limit).status == 200
    nowhere = "/admin/workspaces/nowhere/rate-limit"
    assert described("PUT", nowhere, key=ADMIN_TOKEN, body=limit).status == 404

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
    for path in (f"/v2/{ws}/c", "/account/counters"):
        described("GET", path, key=admin)
        assert described("GET", path, key=admin).status == 429

    def throttled(*_, **__):
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "GetItem")

    monkeypatch.setattr(counters, "get", throttled)
    monkeypatch.setattr(counters, "values", throttled)
    assert described("GET", f"/v2/{ws}/c/stats", key=admin).status == 503
    assert described("GET", "/app/session", key=admin).status == 503


BODIES = sorted(k for k, op in _operations().items() if "requestBody" in op)


@pytest.mark.parametrize("key", BODIES, ids=" ".join)
def test_each_documented_request_example_is_accepted_and_an_unknown_field_is_400(api, key):
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
    with pytest.raises(AssertionError, match="404"):
        conforms(pointer, 404, backstack_shape, {})
    with pytest.raises(AssertionError, match="Retry-After"):
        conforms(
            _pointer("components", "responses", "V2_429"), 429, {"code": "429", "message": "x"}, {}
        )


def test_the_document_names_its_patterns_as_the_code_does():
    from tally import names

    schemas = DOC["components"]["schemas"]
    assert schemas["WorkspaceName"]["pattern"] == f"^{names._WORKSPACE.pattern}$"
    assert schemas["CounterName"]["pattern"] == f"^{names._COUNTER.pattern}$"
    assert (schemas["Int64"]["minimum"], schemas["Int64"]["maximum"]) == (
        names.INT64_MIN,
        names.INT64_MAX,
    )
