"""Hostile callers: a body is bounded before anything parses it, an Idempotency-Key record belongs
to the caller who proved who it is, only `Bearer <token>` is a credential, and bodies are UTF-8.
Each refusal is checked as the caller sees it and by what it did (not) write to DynamoDB."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from botocore.exceptions import ClientError

from tally import counters, invoices
from tally.telemetry import logger
from tally_local.gateway import LambdaContext
from tests.conftest import ADMIN_TOKEN, TEMPLATE, Answer, load_event, record_calls

IDEM = "Idempotency-Key"
INVOICE, BETA = {"amount": 1, "description": "x"}, {"workspace": "beta"}
ITEMS, SETTINGS = "/account/invoice-items", "/account/counters/c/settings"
_SAMPLE = {"workspace": "acme", "name": "c", "value": "1", "key_id": "abc123"}


def _concrete(route) -> tuple[str, str]:
    if route.path == "$default":
        return "POST", "/nowhere"
    return route.method, re.sub(r"\{(\w+)\}", lambda m: _SAMPLE.get(m.group(1), "x"), route.path)


ROUTES = [pytest.param(*_concrete(r), id=f"{r.method} {r.path}") for r in TEMPLATE.routes()]


def _call(api, method, path, *, auth=None, body=None, idem=None, address="127.0.0.1") -> Answer:
    """One request from `address`, with exactly this Authorization header (None: none)."""
    headers = {k: v for k, v in {"Authorization": auth, IDEM: idem}.items() if v is not None}
    data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    response = api.client.open(
        path, method=method, data=data, headers=headers, environ_base={"REMOTE_ADDR": address}
    )
    text = response.get_data(as_text=True)
    json_answer = text and response.mimetype == "application/json"
    return Answer(
        response.status_code, json.loads(text) if json_answer else text, dict(response.headers)
    )


def _fields(path: str, answer: Answer) -> dict | None:
    """The error's fields, once the answer is checked to be an error in the path's dialect (an
    image route's refusal is an image: None)."""
    assert answer.status >= 400, answer.body
    if answer.headers["Content-Type"].startswith("image/svg+xml"):
        assert answer.body.startswith("<svg"), answer.body[:100]
        return None
    if path.startswith("/v2/"):
        assert answer.body["code"] == str(answer.status) and answer.body["message"]
        assert set(answer.body) <= {"code", "message", "fields"}
        return answer.body.get("fields", {})
    assert list(answer.body) == ["error"], answer.body
    error = answer.body["error"]
    assert error["code"] == answer.status and error["message"]
    assert error["type"] == ("user" if answer.status < 500 else "system")
    return error["fields"]


def _idempotency_or_writes(calls) -> list:
    """The recorded calls on the IdempotencyTable, and every write but the rate limiter's."""
    reads = {"GetItem", "Query", "BatchGetItem"}
    return [
        (operation, table)
        for operation, table in calls
        if table == "IdempotencyTable" or (operation not in reads and table != "RateLimitsTable")
    ]


def _created_beta(api) -> bool:
    """Whether workspace `beta` could be created now (so no earlier request had created it)."""
    return api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body=BETA).status == 201


def _value(api, key, name="c") -> int:
    return api("GET", f"/v2/acme/{name}", key=key).body["data"]["value"]


def _invoice_total(api, key) -> int:
    return api("GET", ITEMS, key=key).body["total"]


@pytest.fixture
def key_with(api, workspace):
    """A new key of `acme` with these scopes."""
    _, admin = workspace

    def make(*scopes: str) -> str:
        made = api("POST", "/account/api-keys", key=admin, body={"scopes": list(scopes)})
        assert made.status == 201, made.body
        return made.body["api_key"]

    return make


# ------------------------------------------------------------------ 1. bounded bodies

PAST_THE_BOUNDS = {  # name: (body, the reason named in fields.body)
    "500 arrays": ("[" * 500 + "]" * 500, "nested too deeply"),
    "500 objects": ('{"a":' * 500 + "1" + "}" * 500, "nested too deeply"),
    "mixed": ('{"a":[' * 250 + "1" + "]}" * 250, "nested too deeply"),
    "33 levels": ("[" * 33 + "]" * 33, "nested too deeply"),
    "never closed": ("[{" * 4000, "nested too deeply"),
    "deep after fields": ('{"amount":5,"x":' + "[" * 40 + "]" * 40 + "}", "nested too deeply"),
    "17 KiB": (json.dumps({"description": "x" * 17 * 1024}), "too large"),
    "5462 characters, 16386 bytes": ("€" * 5462, "too large"),
    "20 KB not UTF-8 (base64 in the event)": (b"\xff" * 20_000, "too large"),
}
DEPTH_REFUSAL = {"body": "nested too deeply"}
WITHIN_THE_BOUNDS = [
    "[" * 32 + "]" * 32,
    '{"a":' * 32 + "1" + "}" * 32,
    "[" * 31 + json.dumps(["[{" * 2000]) + "]" * 31,  # brackets in a string do not count
    json.dumps({"d": '\\"[' * 1000 + '"\\' + "{" * 1000}),  # nor after escaped quotes
]


@pytest.mark.parametrize("method, path", ROUTES)
def test_a_body_past_its_bounds_is_400_on_every_route_before_anything_parses_it(
    api, workspace, method, path
):
    _, key = workspace
    token = ADMIN_TOKEN if path.startswith("/admin") else key
    calls = record_calls(tables=True)

    for name, (body, reason) in PAST_THE_BOUNDS.items():
        for auth in (None, f"Bearer {token}", "Bearer not-a-key", f"Basic {token}", token):
            for idem in (None, "hostile-1"):
                answer = _call(api, method, path, auth=auth, body=body, idem=idem)
                assert answer.status == 400, (name, auth, idem, answer.status, answer.body)
                assert _fields(path, answer) in ({"body": reason}, None), (name, auth, idem)

    assert _idempotency_or_writes(calls) == []  # no record claimed, nothing written


@pytest.mark.parametrize("method, path", ROUTES)
def test_a_body_exactly_32_deep_is_never_refused_for_its_depth(api, workspace, method, path):
    _, key = workspace
    token = ADMIN_TOKEN if path.startswith("/admin") else key
    for body in WITHIN_THE_BOUNDS:
        answer = _call(api, method, path, auth=f"Bearer {token}", body=body)
        assert answer.status < 500, (body[:40], answer.body)
        for_depth = answer.status == 400 and _fields(path, answer) in (DEPTH_REFUSAL, None)
        assert not for_depth, (body[:40], answer.body)  # (an image's 400 can only be the body)


@pytest.mark.parametrize(
    "description",
    ["[" * 500, "{" * 300 + "]" * 200, '"' + "[" * 400, "\\" * 9 + "[{" * 200, "\\u005b" * 80],
)
def test_brackets_inside_strings_do_not_count_and_are_stored_exactly(api, workspace, description):
    _, key = workspace
    answer = api("POST", ITEMS, key=key, body={"amount": 5, "description": description})

    assert (answer.status, answer.body["description"]) == (201, description)
    listed = api("GET", ITEMS, key=key).body["list"]
    assert [item["description"] for item in listed] == [description]


def _padded(size: int) -> bytes:
    item = b'{"amount": 5, "description": "padded"}'
    return item + b" " * (size - len(item))


def _invoke(name: str, body: bytes | str) -> dict:
    """The function's sample event with this body, base64-encoded as API Gateway sends a binary
    body (a str is sent as it is, flagged base64), straight to its handler."""
    event = load_event(name)
    encoded = base64.b64encode(body).decode() if isinstance(body, bytes) else body
    event.update(body=encoded, isBase64Encoded=True)
    fn = next(f for f in TEMPLATE.functions.values() if f.handler.startswith(f"{name}."))
    return fn.load()(event, LambdaContext(fn))


@pytest.mark.parametrize(
    "name, body, reason",
    [
        ("account_create_invoice_item", _padded(16 * 1024 + 1), "too large"),
        ("account_create_invoice_item", _padded(1024 * 1024), "too large"),
        ("account_create_invoice_item", b"[" * 40 + b"]" * 40, "nested too deeply"),
        ("account_create_invoice_item", b'{"description":"\xff"}', "not UTF-8"),
        ("account_create_invoice_item", "{not base64!}", None),
        ("account_put_counter_settings", _padded(17 * 1024), "too large"),
        ("create_workspace", b'{"a":' * 100 + b"}" * 100, "nested too deeply"),
        ("v2_up", b"\xfe" * 17 * 1024, "too large"),
        ("v2_get_counter", b"[" * 33 + b"]" * 33, "nested too deeply"),
    ],
)
def test_a_base64_encoded_body_is_bounded_before_it_is_decoded(api, demo, name, body, reason):
    answer = _invoke(name, body)

    assert answer["statusCode"] == 400, answer["body"]
    error = json.loads(answer["body"])
    fields = error["fields"] if name.startswith("v2") else error["error"]["fields"]
    assert list(fields) == ["body"] and fields["body"] == (reason or fields["body"])
    assert _invoice_total(api, demo) == 0


def test_a_base64_encoded_body_within_the_bounds_is_decoded_and_stored_exactly(api, demo):
    text = "Grüße, 日本語 😀"
    body = json.dumps({"amount": 5, "description": text}, ensure_ascii=False).encode()

    full = _invoke("account_create_invoice_item", _padded(16 * 1024))
    answer = _invoke("account_create_invoice_item", body)

    assert (full["statusCode"], answer["statusCode"]) == (201, 201), (full, answer)
    assert api("GET", ITEMS, key=demo).body["list"][0]["description"] == text
    assert _invoice_total(api, demo) == 2


MESSAGES = {
    "300 KB of ASCII": "x" * 300_000,
    "300 KB of lines": "line\n" * 60_000,
    "100,000 emoji": "\N{GRINNING FACE}" * 100_000,
    "300 KB of control characters": "\x01" * 300_000,
}


def _raiser(error: BaseException):
    def fail(*_args, **_kwargs):
        raise error

    return fail


@pytest.fixture
def log_lines(capsys):
    """Every line the requests print: Powertools' JSON logs (its handler keeps the stdout it was
    created with, so it is pointed at a buffer, as in test_telemetry.py) and the EMF metrics."""
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    capsys.readouterr()
    yield lambda: buffer.getvalue().splitlines() + capsys.readouterr().out.splitlines()
    logger.registered_handler.setStream(previous)


@pytest.mark.parametrize(
    "target, name, kind, method, path, body",
    [
        (counters, "change", RuntimeError, "GET", "/v2/acme/c/up", None),
        (counters, "change", ClientError, "POST", "/account/counters/c/1", None),
        (invoices, "create", KeyError, "POST", ITEMS, INVOICE),
    ],
    ids=["v2 up", "account add (DynamoDB refuses)", "invoice item"],
)
@pytest.mark.parametrize("message", MESSAGES.values(), ids=MESSAGES)
def test_an_exception_with_a_300_kb_message_is_500_in_dialect_and_logs_a_bounded_line(
    api, workspace, log_lines, monkeypatch, message, target, name, kind, method, path, body
):
    _, key = workspace
    if kind is ClientError:
        error = ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "X")
    else:
        error = kind(message)
        error.__cause__ = ValueError(message)  # a chained traceback: twice the text
    monkeypatch.setattr(target, name, _raiser(error))

    answer = api(method, path, key=key, body=body)

    assert answer.status == 500
    assert _fields(path, answer) == {} and len(json.dumps(answer.body)) < 500
    assert "quote request id" in json.dumps(answer.body)
    lines = log_lines()
    assert any('"exception"' in line for line in lines)  # the stack went to the log
    assert max(map(len, lines)) < 4096


def test_hostile_requests_write_no_large_log_line(api, workspace, log_lines):
    _, key = workspace
    junk = {IDEM: "k" * 255, "X-Junk": "j" * 8000, "User-Agent": "u" * 8000}
    for body, _ in PAST_THE_BOUNDS.values():
        for path in [ITEMS, "/v2/acme/c/up", f"/v2/acme/{'n' * 8000}/up"]:
            method = "POST" if path.startswith("/account") else "GET"
            assert api(method, path, key=key, body=body, headers=junk).status == 400

    lines = log_lines()
    assert len(lines) >= 27  # a metrics line a request at least
    assert max(map(len, lines)) < 4096


# Python's int() refuses a string of over 4,300 digits (ValueError): a path parameter or a query
# value of 5,000 digits (a number to the eye) must be a 4xx wherever tally reads numbers.
HUGE_NUMBERS = {"5000 digits": "1" * 5000, "-0 x 5000": "-" + "0" * 5000}
QUERY = ("value", "limit", "cursor", "from", "to", "tz", "group_by", "label", "color")


def _with_one_huge_parameter() -> list:
    cases = []
    for route in TEMPLATE.routes():
        if route.path == "$default":
            continue
        for param in re.findall(r"\{(\w+)\}", route.path):
            for label, huge in HUGE_NUMBERS.items():
                path = re.sub(
                    r"\{(\w+)\}",
                    lambda m, p=param, h=huge: (
                        h if m.group(1) == p else _SAMPLE.get(m.group(1), "x")
                    ),
                    route.path,
                )
                cases.append(
                    pytest.param(
                        route.method, path, id=f"{route.method} {route.path} {param} {label}"
                    )
                )
        if route.method == "GET":
            method, path = _concrete(route)
            query = "&".join(f"{name}={'9' * 5000}" for name in QUERY)
            cases.append(pytest.param(method, f"{path}?{query}", id=f"GET {route.path} query"))
    return cases


@pytest.mark.parametrize("method, path", _with_one_huge_parameter())
def test_a_number_of_5000_digits_anywhere_is_a_4xx_in_dialect_never_a_500(
    api, workspace, method, path
):
    _, key = workspace
    api("GET", "/v2/acme/c/set?value=7", key=key)

    answer = _call(
        api, method, path, auth=f"Bearer {key}", body=INVOICE if method != "GET" else None
    )

    assert answer.status < 500, answer.body
    if answer.status >= 400:  # (a route that takes none of those query parameters answers)
        _fields(path, answer)
    assert _value(api, key) == 7


# ------------------------------------------------------------------ 2. records of proven callers

OPERATOR_CALLS = [
    ("POST", "/admin/workspaces", BETA, 201),
    ("PUT", "/admin/workspaces/acme/rate-limit", {"quota": 5, "window": 60}, 200),
]
NOT_THE_OPERATOR = {
    "no Authorization": None,
    "a wrong token": "Bearer not-the-admin-token",
    "the token without its scheme": ADMIN_TOKEN,
    "Basic": f"Basic {ADMIN_TOKEN}",
    "a workspace's admin key": "Bearer {key}",
}


@pytest.mark.parametrize("intruder", NOT_THE_OPERATOR.values(), ids=NOT_THE_OPERATOR)
@pytest.mark.parametrize("method, path, body, status", OPERATOR_CALLS)
def test_an_operators_record_is_neither_poisoned_nor_replayed_by_a_caller_without_the_token(
    api, workspace, method, path, body, status, intruder
):
    _, key = workspace
    intruder = intruder and intruder.format(key=key)
    calls = record_calls(tables=True)
    before = _call(api, method, path, auth=intruder, body=body, idem="K")
    refused_calls = _idempotency_or_writes(calls.pop())

    first = _call(api, method, path, auth=f"Bearer {ADMIN_TOKEN}", body=body, idem="K")
    calls.clear()
    after = _call(api, method, path, auth=intruder, body=body, idem="K")
    refused_calls += _idempotency_or_writes(calls.pop())
    replay = _call(api, method, path, auth=f"Bearer {ADMIN_TOKEN}", body=body, idem="K")

    assert (first.status, first.body["workspace"]) == (status, body.get("workspace", "acme"))
    assert "Idempotent-Replayed" not in first.headers  # the refused first try left no record
    for refused in (before, after):
        assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Idempotent-Replayed" not in refused.headers and _fields(path, refused) == {}
    assert not {"beta", "key_id", "quota"} & set(re.findall(r"\w+", json.dumps(after.body)))
    assert refused_calls == []
    assert (replay.status, replay.headers.get("Idempotent-Replayed")) == (status, "true")


@pytest.mark.parametrize("scopes", [("read",), ("write",), ("read", "write")])
def test_a_key_without_the_scope_gets_403_not_the_admin_keys_answer_nor_the_reverse(
    api, workspace, key_with, scopes
):
    _, admin = workspace
    weaker = key_with(*scopes)

    def put(key, idem):
        body = {"description": "set by admin"}
        return _call(api, "PUT", SETTINGS, auth=f"Bearer {key}", body=body, idem=idem)

    first, replayed = put(admin, "K1"), put(weaker, "K1")
    refused, applied = put(weaker, "K2"), put(admin, "K2")

    assert first.status == 200
    assert replayed.status == 403 and "Idempotent-Replayed" not in replayed.headers
    assert refused.status == 403
    assert (applied.status, applied.body["description"]) == (200, "set by admin")
    assert "Idempotent-Replayed" not in applied.headers


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/account/counters/c/1", None),
        ("GET", "/v2/acme/c/up", None),
        ("POST", ITEMS, INVOICE),
    ],
)
def test_two_keys_of_one_workspace_sending_the_same_key_and_request_each_apply(
    api, workspace, key_with, method, path, body
):
    _, admin = workspace
    answers = [
        _call(api, method, path, auth=f"Bearer {key}", body=body, idem="same")
        for key in (key_with("write"), key_with("write"))
    ]

    assert [a.status for a in answers] in ([200, 200], [201, 201])
    assert all("Idempotent-Replayed" not in a.headers for a in answers)
    assert (_invoice_total(api, admin) if body else _value(api, admin)) == 2


REFUSED = {  # (method, path, Authorization, status)
    "no key": ("POST", "/account/counters/c/1", None, 401),
    "a bad key": ("POST", "/account/counters/c/1", "Bearer tly_abc_not-a-key", 401),
    "a revoked key": ("GET", "/v2/acme/c/up", "Bearer {revoked}", 401),
    "a malformed Authorization": ("DELETE", "/account/counters/c", "Basic {admin}", 401),
    "a read key adding": ("POST", "/account/counters/c/1", "Bearer {read}", 403),
    "a read key upping": ("GET", "/v2/acme/c/up", "Bearer {read}", 403),
    "a write key on settings": ("PUT", SETTINGS, "Bearer {write}", 403),
    "a write key making a key": ("POST", "/account/api-keys", "Bearer {write}", 403),
    "anonymous up, private counter": ("GET", "/v2/acme/c/up", None, 401),
    "anonymous down, private counter": ("GET", "/v2/acme/c/down", None, 401),
    "anonymous up, no such counter": ("GET", "/v2/acme/nothing/up", None, 401),
    "another workspace's key upping": ("GET", "/v2/acme/c/up", "Bearer {other}", 404),
    "anonymous reset": ("GET", "/v2/acme/c/reset", None, 401),
    "a wrong admin token": ("POST", "/admin/workspaces", "Bearer wrong", 401),
    "a key as admin token": ("PUT", "/admin/workspaces/acme/rate-limit", "Bearer {admin}", 401),
}
BODIES = {
    SETTINGS: {"description": "x"},
    "/account/api-keys": {"scopes": ["read"]},
    "/admin/workspaces": BETA,
    "/admin/workspaces/acme/rate-limit": {"quota": 5, "window": 60},
}


@pytest.mark.parametrize("method, path, auth, status", REFUSED.values(), ids=REFUSED)
def test_a_request_that_fails_authorization_never_touches_the_idempotency_table(
    api, ddb, workspace, key_with, demo, method, path, auth, status
):
    _, admin = workspace
    revoked = key_with("write")
    api("DELETE", f"/account/api-keys/{revoked.split('_')[1]}", key=admin)
    tokens = {"admin": admin, "read": key_with("read"), "write": key_with("write")}
    auth = auth and auth.format(**tokens, revoked=revoked, other=demo)
    api("POST", "/account/counters/c/1", key=admin)  # a private counter
    calls = record_calls(tables=True)

    answer = _call(api, method, path, auth=auth, body=BODIES.get(path), idem="K")

    assert answer.status == status, answer.body
    assert [c for c in calls if c[1] == "IdempotencyTable"] == []
    assert ddb.scan(TableName="IdempotencyTable")["Items"] == []
    assert _value(api, admin) == 1


def test_anonymous_callers_of_a_public_counter_get_replays_per_address(api, workspace):
    _, key = workspace
    api("PUT", SETTINGS, key=key, body={"visibility": "public"})

    def up(address="127.0.0.1", auth=None):
        answer = _call(api, "GET", "/v2/acme/c/up", idem="anon", address=address, auth=auth)
        return answer.body["data"]["value"], answer.headers.get("Idempotent-Replayed")

    assert up() == (1, None)
    assert up() == (1, "true")
    assert up("10.0.0.2") == (2, None)
    assert up("10.0.0.2") == (2, "true")
    assert up() == (1, "true")
    assert up(auth=f"Bearer {key}") == (3, None)  # the workspace's own key is another caller
    assert _value(api, key) == 3


# ------------------------------------------------------------------ 4. Bearer is the credential

MALFORMED = {
    "the raw token": "{token}",
    "Basic": "Basic {token}",
    "Token": "Token {token}",
    "Bearer alone": "Bearer",
    "Bearer and a space": "Bearer ",
    "a second word": "Bearer {token} extra",
    "empty": "",
    "a tab": "Bearer\t{token}",
    "no space": "Bearer{token}",
    "quoted": 'Bearer "{token}"',
    "two credentials": "Bearer {token}, Bearer {token}",
}
TARGETS = [  # (method, path, body); the admin routes take the operator's token
    ("POST", "/admin/workspaces", BETA),
    ("PUT", "/admin/workspaces/acme/rate-limit", {"quota": 5, "window": 60}),
    ("POST", "/account/counters/c/5", None),
    ("GET", "/account/counters", None),
    ("PUT", SETTINGS, {"visibility": "private"}),
    ("GET", "/v2/acme/c/up", None),  # open to anyone: c is public
    ("GET", "/v2/acme/c", None),
    ("GET", "/v2/acme/c/reset", None),
]


@pytest.fixture
def public_c(api, workspace):
    """acme's counter `c`, public and at 1: anyone may read and up it. Returns acme's admin key."""
    _, key = workspace
    api("PUT", SETTINGS, key=key, body={"visibility": "public"})
    api("GET", "/v2/acme/c/up", key=key)
    return key


@pytest.mark.parametrize("header", MALFORMED.values(), ids=MALFORMED)
def test_an_authorization_that_is_not_bearer_is_401_even_where_anonymous_is_allowed(
    api, public_c, header
):
    calls = record_calls(tables=True)
    for method, path, body in TARGETS:
        token = ADMIN_TOKEN if path.startswith("/admin") else public_c
        answer = _call(api, method, path, auth=header.format(token=token), body=body, idem="K")
        assert answer.status == 401, (path, answer.body)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer"), path
        assert _fields(path, answer) == {}, path

    assert _idempotency_or_writes(calls) == []
    settings = api("GET", SETTINGS, key=public_c).body
    assert (_value(api, public_c), settings["visibility"]) == (1, "public")
    assert _created_beta(api)


@pytest.mark.parametrize(
    "scheme", ["bearer {}", "BEARER {}", "bEaReR {}", "Bearer   {}", "Bearer {} "]
)
def test_the_bearer_scheme_is_case_insensitive(api, public_c, scheme):
    for method, path, body in TARGETS:
        token = ADMIN_TOKEN if path.startswith("/admin") else public_c
        answer = _call(api, method, path, auth=scheme.format(token), body=body)
        assert answer.status in (200, 201), (path, answer.body)


# ------------------------------------------------------------------ 5. UTF-8 bodies

NOT_UTF8 = [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82", b"\x80"]


@pytest.mark.parametrize("raw", NOT_UTF8, ids=[r.hex() for r in NOT_UTF8])
def test_a_body_of_invalid_utf8_bytes_is_400_naming_the_body_and_stores_nothing(
    api, workspace, raw
):
    _, key = workspace
    sends = [
        ("POST", ITEMS, b'{"amount":5,"description":"' + raw + b'"}', key),
        ("PUT", SETTINGS, b'{"description":"' + raw + b'"}', key),
        ("POST", "/admin/workspaces", b'{"workspace":"beta' + raw + b'"}', ADMIN_TOKEN),
        ("GET", "/v2/acme/c", raw, key),  # a route that reads no body
    ]
    for method, path, body, token in sends:
        answer = _call(api, method, path, auth=f"Bearer {token}", body=body, idem="K")
        assert answer.status == 400, (path, answer.body)
        assert list(_fields(path, answer)) == ["body"], path

    assert _invoice_total(api, key) == 0
    assert api("GET", SETTINGS, key=key).body["description"] in ("", None)
    assert _created_beta(api)


SURROGATES = [r"\ud800", r"\udfff", r"a\ud800b", r"\ud800\u0041", r"\ude00\ud83d", r"\udbff"]
WHERE = {  # (path, body with {s} for the escape, the field named)
    "invoice description": (ITEMS, '{"amount":5,"description":"{s}"}', "description"),
    "settings description": (SETTINGS, '{"description":"{s}"}', "description"),
    "billing.description": (
        SETTINGS,
        '{"billing":{"threshold":1,"amount":5,"description":"{s}"}}',
        "billing.description",
    ),
    "a key name": (ITEMS, '{"amount":5,"description":"x","{s}":1}', "body"),
    "a nested key name": (SETTINGS, '{"billing":{"{s}":1}}', "billing"),
    "a list item": ("/account/api-keys", '{"scopes":["read","{s}"]}', "scopes.1"),
}


@pytest.mark.parametrize("path, body, field", WHERE.values(), ids=WHERE)
def test_a_lone_surrogate_escape_is_400_naming_its_field_and_stores_nothing(
    api, workspace, path, body, field
):
    _, key = workspace
    method = "PUT" if path.endswith("settings") else "POST"
    for escape in SURROGATES:
        answer = api(method, path, key=key, body=body.replace("{s}", escape))
        assert answer.status == 400, (escape, answer.body)
        assert answer.body["error"]["fields"] == {field: "not UTF-8"}, escape

    assert _invoice_total(api, key) == 0
    settings = api("GET", SETTINGS, key=key).body
    assert settings["description"] in ("", None) and settings["billing"] is None
    assert len(api("GET", "/account/counters", key=key).body["counters"]) == 0


@pytest.mark.parametrize(
    "text", ["\\ud83d\\ude00", "Grüße, 日本語 \\ud83d\\ude00", "Grüße, 日本語 😀", "\\u00e9\\u20ac"]
)
def test_a_surrogate_pair_and_real_non_ascii_text_are_stored_exactly(api, workspace, text):
    _, key = workspace
    expected = json.loads(f'"{text}"')
    item = f'{{"amount":5,"description":"{text}"}}'
    billing = f'{{"threshold":9,"amount":5,"description":"{text}"}}'
    settings = f'{{"description":"{text}","billing":{billing}}}'

    created = api("POST", ITEMS, key=key, body=item.encode())
    put = api("PUT", SETTINGS, key=key, body=settings.encode())

    assert (created.status, put.status) == (201, 200), (created.body, put.body)
    assert api("GET", ITEMS, key=key).body["list"][0]["description"] == expected
    read = api("GET", SETTINGS, key=key).body
    assert read["description"] == read["billing"]["description"] == expected
