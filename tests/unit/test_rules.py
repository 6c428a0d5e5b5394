"""Pure rules of the edge, with no DynamoDB and no server: property-based where a rule has an
invariant (hypothesis), so they are tried on inputs nobody thought to write down."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tally import badges, idempotency
from tally.errors import Unauthorized
from tally.http import MAX_BODY_DEPTH, Request, _deeper_than
from tally.telemetry import _cut

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=60,
)


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(max_examples=300)
@given(JSON, st.integers(min_value=0, max_value=8))
def test_the_depth_scan_agrees_with_the_parsed_json_for_any_document(value, limit):
    """Brackets inside strings never count; nesting outside them always does."""
    assert _deeper_than(json.dumps(value), limit) == (_depth(value) > limit)


def test_the_body_limit_is_one_past_what_any_request_of_the_api_needs():
    assert not _deeper_than("[" * MAX_BODY_DEPTH + "]" * MAX_BODY_DEPTH, MAX_BODY_DEPTH)
    assert _deeper_than("[" * (MAX_BODY_DEPTH + 1), MAX_BODY_DEPTH)


def _add(value: str) -> Request:
    return Request(
        method="POST",
        path=f"/account/counters/c/{value}",
        route="POST /account/counters/{name}/{value}",
        path_params={"name": "c", "value": value},
    )


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.integers(0, 5), st.booleans())
def test_one_number_is_one_rate_limit_path_however_it_is_spelt(number, zeros, plus):
    sign = "-" if number < 0 else ("+" if plus else "")
    spelt = f"{sign}{'0' * zeros}{abs(number)}"
    assert _add(spelt).limit_path() == _add(str(number)).limit_path()


def test_every_request_no_route_took_is_one_rate_limit_path():
    paths = {Request(method=m, path=p).limit_path() for m in ("GET", "PUT") for p in ("/a", "/b/c")}
    assert paths == {"$default"}


@settings(max_examples=200)
@given(st.text(max_size=5000), st.sampled_from([512, 1024, 2048]))
def test_a_logged_value_never_takes_more_than_its_share_of_a_line(text, limit):
    cut = _cut(text, limit)
    assert len(json.dumps(cut)) <= limit
    if len(json.dumps(text)) <= limit:
        assert cut == text


@given(st.text(max_size=80))
def test_any_label_the_badge_accepts_is_drawn_as_well_formed_escaped_text(text):
    try:
        label = badges.label(text, "c")
    except ValueError:
        return
    svg = badges.render_svg(label, "42", badges.color(None))
    root = ET.fromstring(svg)
    assert "42" in "".join(root.itertext())


@given(
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/",
        min_size=1,
        max_size=60,
    ),
    st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"]),
    st.integers(1, 3),
)
def test_a_bearer_credential_is_its_token_in_any_case_and_spacing(token, scheme, spaces):
    request = Request(
        method="GET", path="/", headers={"authorization": f"{scheme}{' ' * spaces}{token}"}
    )
    assert request.bearer == token


@pytest.mark.parametrize(
    "value", ["tly_a_b", "Basic dXNlcg==", "Token x", "Bearer", "Bearer a b", "", "Bearer\tx"]
)
def test_anything_else_in_authorization_is_no_credential(value):
    with pytest.raises(Unauthorized):
        _ = Request(method="GET", path="/", headers={"authorization": value}).bearer


@given(
    st.text(max_size=20),
    st.text(max_size=20),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
def test_an_operation_id_names_one_request_of_one_caller(scope, key, body):
    fingerprint = {"method": "POST", "path": "/x", "query": {}, "body": body}
    same = idempotency.operation_id(scope, key, dict(fingerprint))
    assert same == idempotency.operation_id(scope, key, fingerprint)
    assert same != idempotency.operation_id(scope + "!", key, fingerprint)
    assert same != idempotency.operation_id(scope, key, {**fingerprint, "path": "/y"})


def test_a_function_missing_a_table_name_says_which_at_once():
    from tally.config import TABLES, Settings

    env = {var: f"{var}-name" for var in TABLES.values()}
    assert Settings.from_env(env).counters_table == "COUNTERS_TABLE-name"
    del env["COUNTERS_TABLE"], env["IDEMPOTENCY_TABLE"]
    with pytest.raises(RuntimeError, match="COUNTERS_TABLE, IDEMPOTENCY_TABLE not set"):
        Settings.from_env(env)


def test_shards_grow_is_on_off_or_refused():
    from tally.config import TABLES, Settings

    env = {var: f"{var}-name" for var in TABLES.values()}
    assert Settings.from_env(env).shards_grow is True
    assert Settings.from_env({**env, "TALLY_SHARDS_GROW": "off"}).shards_grow is False
    with pytest.raises(ValueError, match="TALLY_SHARDS_GROW must be on or off"):
        Settings.from_env({**env, "TALLY_SHARDS_GROW": "no"})


@pytest.mark.parametrize(
    "code, status, again",
    [
        ("ProvisionedThroughputExceededException", 400, True),
        ("TransactionConflictException", 400, True),
        ("TransactionInProgressException", 400, True),
        ("InternalServerError", 500, True),
        ("ConditionalCheckFailedException", 400, False),
        ("TransactionCanceledException", 400, False),
        ("ValidationException", 400, False),
    ],
)
def test_a_call_is_sent_again_patiently_only_when_it_may_succeed(monkeypatch, code, status, again):
    from botocore.exceptions import ClientError

    from tally import aws

    monkeypatch.setattr(aws.time, "sleep", lambda _s: None)
    calls = []

    def failing():
        calls.append(1)
        raise ClientError(
            {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "X"
        )

    with pytest.raises(ClientError):
        aws.patiently(failing)
    assert len(calls) == (aws.PATIENT_ROUNDS if again else 1)


@pytest.mark.parametrize(
    ("spelt", "number"),
    [
        ("-0", "0"),
        ("-000", "0"),
        ("+0", "0"),
        ("-" + "0" * 5000 + "12", "-12"),
        ("9" * 5000, "9" * 5000),
    ],
)
def test_a_number_past_what_int_parses_is_still_one_rate_limit_path(spelt, number):
    # int() refuses over 4,300 digits; the rate limiter must not, whatever a caller sends.
    assert _add(spelt).limit_path() == f"/account/counters/c/{number}"
