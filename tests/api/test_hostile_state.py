"""Hostile callers (issue "Hostile callers"), judged on what a caller sees AND what DynamoDB holds:

3. a key reused after its idempotency record expired is a new request (and, within 24 h, a
   request whose record is gone is still never applied twice);
6. rate-limit buckets cannot be multiplied (spellings, paths, workspaces, new paths, junk), an
   unauthenticated refusal writes at most one item, and a warm change costs two calls;
7. what happens is visible: OutcomeUnknown and RateLimitFailOpen in the logs and EMF metrics;
8. a changing handler cannot forget its operation id: every write of every changing function
   of template.yaml runs inside the request's operation and carries its id.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.exceptions import ReadTimeoutError

from tally import aws, clock, counters, idempotency, invoices, operation, rate_limit
from tests.conftest import (
    ADMIN_TOKEN,
    TEMPLATE,
    DynamoDBFaults,
    emitted_metrics,
    make_public,
    rate_limit_table_down,
    record_calls,
)

WRITES = {"UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
EXPIRED = timedelta(hours=25)  # past an idempotency record's 24 h
JOB = "job-42"


# ------------------------------------------------------------------ clock, helpers


class MovableClock:
    """tally.clock.now, frozen at the real time the test starts and moved by hand."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)  # whole ms: epoch ms == iso ms

    def __call__(self) -> datetime:
        return self.at

    def move(self, delta: timedelta) -> None:
        self.at += delta


@pytest.fixture
def moved(monkeypatch) -> MovableClock:
    movable = MovableClock()
    monkeypatch.setattr(clock, "now", movable)
    return movable


def _keyed(api, method, path, key, idem=JOB, body=None):
    return api(method, path, key=key, body=body, headers={"Idempotency-Key": idem})


def _value_of(answer) -> int:
    """The counter value in an answer of either dialect."""
    return answer.body.get("data", answer.body)["value"]


def _message(answer) -> str:
    body = answer.body
    return body["error"]["message"] if "error" in body else body["message"]


def _key_id(key: str) -> str:
    return key.split("_", 2)[1]


def _counter_item(ddb, name: str = "c", workspace: str = "acme") -> dict | None:
    return ddb.get_item(
        TableName="CountersTable",
        Key={"workspace": {"S": workspace}, "counter": {"S": name}},
        ConsistentRead=True,
    ).get("Item")


def _n(item: dict, attr: str) -> int:
    return int(item[attr]["N"]) if attr in item else 0


def _scan(ddb, table: str) -> list[dict]:
    return ddb.scan(TableName=table, ConsistentRead=True)["Items"]


def _invoice_items(ddb) -> list[dict]:
    return _scan(ddb, "InvoiceItemsTable")


def _lose_idempotency_records(ddb) -> int:
    """Delete every Idempotency-Key record, as TTL (or a crash before the answer was stored)
    would leave it: gone. The number deleted."""
    records = _scan(ddb, "IdempotencyTable")
    for record in records:
        ddb.delete_item(TableName="IdempotencyTable", Key={"id": record["id"]})
    return len(records)


def _expire(ddb, moved: MovableClock, delta: timedelta = EXPIRED) -> None:
    """The record expired: TTL deleted it, and more than 24 h passed on tally's clock."""
    assert _lose_idempotency_records(ddb) >= 1
    moved.move(delta)


def _fingerprint(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """What the edge fingerprints a request by (tally.http.Request.fingerprint)."""
    parts = urlsplit(path)
    return {
        "method": method,
        "path": parts.path,
        "query": dict(parse_qsl(parts.query, keep_blank_values=True)),
        "body": body,
    }


def _op_id(key: str, method: str, path: str, body: Any = None, idem: str = JOB) -> str:
    return idempotency.operation_id(f"key:{_key_id(key)}", idem, _fingerprint(method, path, body))


def _next_generation(item_id: str) -> str:
    return "ivi_" + hashlib.sha256(item_id.encode()).hexdigest()[:20]


# ------------------------------------------------------------------ 3. expired Idempotency-Keys


@pytest.mark.parametrize(
    ("first", "second", "value", "ups", "downs"),
    [
        (("GET", "/v2/acme/c/up"), ("GET", "/v2/acme/c/down"), 0, 1, 1),
        (("POST", "/account/counters/c/5"), ("POST", "/account/counters/c/7"), 12, 12, 0),
        (("GET", "/v2/acme/c/set?value=10"), ("GET", "/v2/acme/c/set?value=99"), 99, 0, 0),
        (("GET", "/v2/acme/c/up"), ("GET", "/v2/acme/c/up"), 2, 2, 0),
        (("GET", "/v2/acme/c/down"), ("GET", "/v2/acme/c/down"), -2, 0, 2),
        (("POST", "/account/counters/c/5"), ("POST", "/account/counters/c/5"), 10, 10, 0),
        (("POST", "/account/counters/c/-3"), ("POST", "/account/counters/c/+3"), 0, 3, 3),
        (("GET", "/v2/acme/c/up"), ("GET", "/v2/acme/c/set?value=40"), 40, 1, 0),
    ],
    ids=[
        "up-then-down",
        "plus5-then-plus7",
        "set10-then-set99",
        "up-then-the-same-up",
        "down-then-the-same-down",
        "plus5-then-the-same-plus5",
        "minus3-then-plus3",
        "up-then-set",
    ],
)
def test_a_key_reused_after_its_record_expired_is_a_new_request_and_is_applied(
    moved, api, ddb, workspace, first, second, value, ups, downs
):
    _, key = workspace
    before = _keyed(api, *first, key)
    assert before.status == 200
    _expire(ddb, moved)

    after = _keyed(api, *second, key)

    assert after.status == 200
    assert "Idempotent-Replayed" not in after.headers
    assert _value_of(after) == value
    item = _counter_item(ddb)
    assert (_n(item, "v"), _n(item, "uc"), _n(item, "dc")) == (value, ups, downs)
    assert item["lop"]["S"] == _op_id(key, *second)  # stamped by the new request
    assert _n(item, "ua") == int(moved.at.timestamp() * 1000)
    (record,) = _scan(ddb, "IdempotencyTable")  # the new request's own record
    assert record["status"]["S"] == "COMPLETED"


def test_the_same_set_after_expiry_is_applied_again_and_shows_its_own_time(
    moved, api, ddb, workspace
):
    _, key = workspace
    first = _keyed(api, "GET", "/v2/acme/c/set?value=10", key)
    _expire(ddb, moved)

    again = _keyed(api, "GET", "/v2/acme/c/set?value=10", key)

    assert again.status == 200 and "Idempotent-Replayed" not in again.headers
    assert again.body["data"]["updated_at"] == clock.iso(moved.at)
    assert again.body["data"]["updated_at"] != first.body["data"]["updated_at"]
    assert _n(_counter_item(ddb), "ua") == int(moved.at.timestamp() * 1000)


def test_a_key_reused_after_expiry_is_refused_on_its_own_merits_not_replayed(
    moved, api, ddb, workspace
):
    _, key = workspace
    api("PUT", "/account/counters/c/settings", key=key, body={"upper_bound": 1})
    assert _keyed(api, "GET", "/v2/acme/c/up", key).status == 200
    _expire(ddb, moved)

    again = _keyed(api, "GET", "/v2/acme/c/up", key)

    assert again.status == 409 and "upper bound" in again.body["message"]
    assert "Idempotent-Replayed" not in again.headers
    assert _n(_counter_item(ddb), "v") == 1


def test_an_invoice_item_under_a_reused_expired_key_is_a_new_item_each_time(
    moved, api, ddb, workspace
):
    _, key = workspace
    body = {"amount": 500, "description": "setup fee"}

    first = _keyed(api, "POST", "/account/invoice-items", key, body=body)
    _expire(ddb, moved)
    second = _keyed(api, "POST", "/account/invoice-items", key, body=body)
    _expire(ddb, moved)
    third = _keyed(api, "POST", "/account/invoice-items", key, body=body)

    assert first.status == second.status == third.status == 201
    assert "Idempotent-Replayed" not in second.headers | third.headers
    ids = [first.body["id"], second.body["id"], third.body["id"]]
    assert ids[0] == "ivi_" + _op_id(key, "POST", "/account/invoice-items", body)
    assert ids[1] == _next_generation(ids[0]) and ids[2] == _next_generation(ids[1])
    listed = api("GET", "/account/invoice-items", key=key).body
    assert listed["total"] == 3
    stored = {item["item_id"]["S"]: item for item in _invoice_items(ddb)}
    assert sorted(stored) == sorted(ids)
    assert {int(item["amount"]["N"]) for item in stored.values()} == {500}
    assert third.body["timestamp"] == clock.iso(moved.at)


@pytest.mark.parametrize(
    "wait", [timedelta(minutes=1), timedelta(hours=23, minutes=59)], ids=["1min", "23h59"]
)
@pytest.mark.parametrize(
    ("method", "path", "value", "ups", "downs"),
    [
        ("GET", "/v2/acme/c/up", 1, 1, 0),
        ("GET", "/v2/acme/c/down", -1, 0, 1),
        ("POST", "/account/counters/c/5", 5, 5, 0),
        ("POST", "/account/counters/c/-4", -4, 0, 4),
        ("GET", "/v2/acme/c/set?value=10", 10, 0, 0),
        ("DELETE", "/account/counters/c", 0, 0, 0),
    ],
)
def test_within_24_hours_the_same_request_with_its_record_gone_is_not_applied_twice(
    moved, api, ddb, workspace, method, path, value, ups, downs, wait
):
    _, key = workspace
    first = _keyed(api, method, path, key)
    assert first.status == 200
    stamped = _counter_item(ddb)
    assert _lose_idempotency_records(ddb) == 1  # the first answer was never stored (a crash)
    moved.move(wait)

    again = _keyed(api, method, path, key)

    assert again.status == 200
    assert _value_of(again) == value  # the true state
    item = _counter_item(ddb)
    assert (_n(item, "v"), _n(item, "uc"), _n(item, "dc")) == (value, ups, downs)
    assert item["ua"] == stamped["ua"] and item["lop"] == stamped["lop"]  # not written again


def test_within_24_hours_the_same_request_after_a_reuse_is_not_applied_a_third_time(
    moved, api, ddb, workspace
):
    _, key = workspace
    _keyed(api, "GET", "/v2/acme/c/up", key)
    _expire(ddb, moved)
    assert _value_of(_keyed(api, "GET", "/v2/acme/c/up", key)) == 2
    _lose_idempotency_records(ddb)
    moved.move(timedelta(hours=1))

    again = _keyed(api, "GET", "/v2/acme/c/up", key)

    assert (again.status, _value_of(again)) == (200, 2)
    assert _n(_counter_item(ddb), "uc") == 2


@pytest.mark.parametrize(
    "wait", [timedelta(minutes=1), timedelta(hours=23, minutes=59)], ids=["1min", "23h59"]
)
def test_within_24_hours_the_same_invoice_item_with_its_record_gone_is_not_made_twice(
    moved, api, ddb, workspace, wait
):
    _, key = workspace
    body = {"amount": 250, "description": "support"}
    first = _keyed(api, "POST", "/account/invoice-items", key, body=body)
    assert _lose_idempotency_records(ddb) == 1
    moved.move(wait)

    again = _keyed(api, "POST", "/account/invoice-items", key, body=body)

    assert again.status == 201 and again.body == first.body  # the item the first one made
    assert api("GET", "/account/invoice-items", key=key).body["total"] == 1
    assert len(_invoice_items(ddb)) == 1


def test_within_24_hours_after_a_reuse_the_invoice_item_is_the_second_one_not_a_third(
    moved, api, ddb, workspace
):
    _, key = workspace
    body = {"amount": 250, "description": "support"}
    _keyed(api, "POST", "/account/invoice-items", key, body=body)
    _expire(ddb, moved)
    second = _keyed(api, "POST", "/account/invoice-items", key, body=body)
    _lose_idempotency_records(ddb)
    moved.move(timedelta(hours=2))

    again = _keyed(api, "POST", "/account/invoice-items", key, body=body)

    assert again.status == 201 and again.body == second.body
    assert len(_invoice_items(ddb)) == 2


@pytest.mark.parametrize(
    ("first", "second", "value"),
    [
        (("GET", "/v2/acme/c/up"), ("GET", "/v2/acme/c/down"), 0),
        (("POST", "/account/counters/c/5"), ("POST", "/account/counters/c/7"), 12),
        (("GET", "/v2/acme/c/set?value=10"), ("GET", "/v2/acme/c/set?value=99"), 99),
    ],
)
def test_within_24_hours_another_request_under_the_same_key_with_the_record_gone_is_applied(
    moved, api, ddb, workspace, first, second, value
):
    _, key = workspace
    _keyed(api, *first, key)
    assert _lose_idempotency_records(ddb) == 1
    moved.move(timedelta(hours=1))

    answer = _keyed(api, *second, key)

    assert (answer.status, _value_of(answer)) == (200, value)
    assert _n(_counter_item(ddb), "v") == value


def test_within_24_hours_another_invoice_item_under_the_same_key_with_the_record_gone_is_made(
    moved, api, ddb, workspace
):
    _, key = workspace
    _keyed(api, "POST", "/account/invoice-items", key, body={"amount": 1, "description": "a"})
    assert _lose_idempotency_records(ddb) == 1
    moved.move(timedelta(hours=1))

    answer = _keyed(
        api, "POST", "/account/invoice-items", key, body={"amount": 2, "description": "b"}
    )

    assert answer.status == 201 and answer.body["amount"] == 2
    assert sorted(int(i["amount"]["N"]) for i in _invoice_items(ddb)) == [1, 2]


def _lose_counter_answers(times: int = 1, then: Callable[[], None] | None = None) -> list[int]:
    """The next `times` changes to CountersTable are applied and their answers never come back
    (a read timeout); `then` runs in between (another request's change landing)."""
    client = aws.dynamodb()
    left, lost, seen = [times], [0], {}

    def remember(params, **_):
        seen["table"] = params.get("TableName")

    def lose(http_response, **_):
        if http_response.status_code == 200 and seen.get("table") == "CountersTable" and left[0]:
            left[0] -= 1
            lost[0] += 1
            if then:
                then()
            raise ReadTimeoutError(endpoint_url="https://dynamodb")

    client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", remember)
    client.meta.events.register("after-call.dynamodb.UpdateItem", lose)
    return lost


def _another_change(delta: int) -> Callable[[], None]:
    def change() -> None:
        with operation.begin():
            counters.change("acme", "c", delta, client=aws.dynamodb())

    return change


def test_an_expired_key_reused_whose_answer_is_lost_is_applied_once_and_answered(
    moved, api, ddb, workspace
):
    _, key = workspace
    _keyed(api, "GET", "/v2/acme/c/up", key)  # the counter's stamp: this very operation's id
    _expire(ddb, moved)
    lost = _lose_counter_answers()
    calls = record_calls(tables=True)

    answer = _keyed(api, "GET", "/v2/acme/c/up", key)

    assert lost == [1]
    assert ("GetItem", "CountersTable") in calls  # confirmed by a read, not resent
    assert (answer.status, _value_of(answer)) == (200, 2)
    item = _counter_item(ddb)
    assert (_n(item, "v"), _n(item, "uc")) == (2, 2)
    assert _n(item, "ua") == int(moved.at.timestamp() * 1000)


def test_an_expired_key_reused_for_an_invoice_item_whose_answer_is_lost_makes_one_new_item(
    moved, api, ddb, workspace, monkeypatch
):
    _, key = workspace
    body = {"amount": 500, "description": "setup fee"}
    first = _keyed(api, "POST", "/account/invoice-items", key, body=body)
    _expire(ddb, moved)
    puts = [0]

    def decide(operation_name: str) -> str | None:
        if operation_name != "PutItem":
            return None
        puts[0] += 1  # 1: the key's claim, 2: the expired item's id, 3: the next generation's
        return "lost" if puts[0] == 3 else None

    faults = DynamoDBFaults(monkeypatch, decide)
    answer = _keyed(api, "POST", "/account/invoice-items", key, body=body)
    faults.stop()

    assert puts[0] == 4  # the lost put was sent again, and found itself
    assert answer.status == 201 and answer.body["id"] == _next_generation(first.body["id"])
    assert len(_invoice_items(ddb)) == 2


# ------------------------------------------------------------------ 6. rate-limit buckets


def _limit_five_a_minute(api, moved: MovableClock) -> None:
    answer = api(
        "PUT",
        "/admin/workspaces/acme/rate-limit",
        key=ADMIN_TOKEN,
        body={"quota": 5, "window": 60},
    )
    assert answer.status == 200
    moved.move(timedelta(seconds=61))  # every bucket touched so far is full again


def _key_buckets(ddb, key: str) -> list[str]:
    return [
        item["bucket"]["S"]
        for item in _scan(ddb, "RateLimitsTable")
        if item["bucket"]["S"].startswith(f"key:{_key_id(key)}#")
    ]


@pytest.mark.parametrize(
    ("spellings", "value", "other"),
    [
        (["1", "01", "001", "+1", "+01", "00000000000000000001"], 5, "2"),
        (["1", "+1", "1", "01", "0001", "+0001"], 5, "11"),
        (["-0", "0", "+0", "00", "-00", "+000"], 0, "1"),
        (["-1", "-01", "-001", "-0001", "-00000000000000000001", "-1"], -5, "1"),
        (["7", "07", "+7", "+07", "007", "00000000000000000007"], 35, "70"),
    ],
    ids=["one", "one-repeated", "zero", "minus-one", "seven"],
)
def test_a_number_spelt_many_ways_is_one_rate_limit_bucket(
    moved, api, ddb, workspace, spellings, value, other
):
    _, key = workspace
    _limit_five_a_minute(api, moved)

    answers = [api("POST", f"/account/counters/x/{n}", key=key) for n in spellings]

    assert [a.status for a in answers] == [200] * 5 + [429]
    assert "5 requests per 60 s on this path" in _message(answers[5])
    assert _n(_counter_item(ddb, "x"), "v") == value  # the refused sixth never reached it
    assert len([b for b in _key_buckets(ddb, key) if "#POST#" in b]) == 1
    assert api("POST", f"/account/counters/x/{other}", key=key).status == 200  # another number


@pytest.mark.parametrize(
    "requests",
    [
        [("GET", f"/v2/acme/pub{i}/up") for i in range(6)],
        [("GET", f"/v2/acme/priv{i}/up") for i in range(6)],
        [("GET", f"/v2/acme/{n}{i}") for i, n in enumerate(["pub", "priv"] * 3)],
        [
            ("GET", "/v2/acme/pub0/up"),
            ("GET", "/v2/acme/priv1"),
            ("GET", "/v2/acme/pub2/stats"),
            ("GET", "/v2/acme/pub3/down"),
            ("GET", "/v2/acme/priv4/reset"),
            ("GET", "/v2/acme/pub5/up"),
        ],
    ],
    ids=["public-ups", "private-ups", "gets", "mixed-routes"],
)
def test_an_anonymous_caller_has_one_bucket_per_workspace_whatever_the_path(
    moved, api, ddb, workspace, requests
):
    _limit_five_a_minute(api, moved)
    for i in range(6):
        make_public(ddb, "acme", f"pub{i}")

    answers = [api(method, path) for method, path in requests]

    assert all(a.status != 429 for a in answers[:5]), [a.status for a in answers]
    assert answers[5].status == 429
    assert "5 requests per 60 s from this address to this workspace" in _message(answers[5])
    refused_name = requests[5][1].split("/")[3]
    assert _n(_counter_item(ddb, refused_name) or {}, "v") == 0


@pytest.mark.parametrize(
    "authorization",
    [
        lambda i: f"Bearer tly_{i:016x}_not-a-secret",  # made-up keys, each a new key id
        lambda i: f"Bearer tly_{i}",  # malformed keys
        lambda i: f"Basic dXNlcjp{i}",  # another scheme
        lambda i: f"Bearer {ADMIN_TOKEN}x{i}",  # wrong admin tokens
    ],
    ids=["made-up-keys", "malformed-keys", "basic-auth", "wrong-admin-tokens"],
)
def test_a_caller_without_a_valid_key_varying_its_credential_shares_the_anonymous_bucket(
    moved, api, ddb, workspace, authorization
):
    _limit_five_a_minute(api, moved)
    make_public(ddb, "acme", "c")

    answers = [
        api("GET", "/v2/acme/c/up", headers={"Authorization": authorization(i)}) for i in range(6)
    ]

    assert [a.status for a in answers] == [401] * 5 + [429]
    assert _n(_counter_item(ddb), "v") == 0


def test_an_anonymous_caller_varying_x_forwarded_for_is_still_one_address(
    moved, api, ddb, workspace
):
    _limit_five_a_minute(api, moved)
    make_public(ddb, "acme", "c")

    answers = [
        api("GET", "/v2/acme/c/up", headers={"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(6)
    ]

    assert [a.status for a in answers] == [200] * 5 + [429]
    assert _n(_counter_item(ddb), "v") == 5


def test_a_keyed_caller_naming_a_workspace_that_does_not_exist_keeps_its_own_limit_on_a_path(
    moved, api, ddb, workspace
):
    _, key = workspace
    _limit_five_a_minute(api, moved)

    statuses = [api("GET", "/v2/ghost/c/up", key=key).status for _ in range(6)]

    assert statuses == [404] * 5 + [429], statuses


def test_a_keyed_caller_naming_workspaces_that_do_not_exist_keeps_its_50_new_paths(
    moved, api, ddb, workspace
):
    _, key = workspace
    _limit_five_a_minute(api, moved)

    statuses = [api("GET", f"/v2/ghost-{i}/c/up", key=key).status for i in range(51)]
    then_own = api("GET", "/v2/acme/fresh/up", key=key)

    assert statuses[:50] == [404] * 50
    assert statuses[50] == 429, "the 51st new path in a minute was served"
    assert then_own.status == 429 and "new paths" in _message(then_own)


def test_an_anonymous_caller_varying_unknown_workspaces_and_paths_shares_one_bucket(moved, api):
    paths = []
    for i in range(601):
        paths.append(
            (f"/v2/ghost-{i}/c", f"/v2/ghost-{i}/c/up", f"/nowhere/{i}", "/account/counters")[i % 4]
        )

    statuses = [api("GET", path).status for path in paths]

    assert 429 not in statuses[:600]
    assert statuses[600] == 429


@pytest.mark.parametrize(
    ("method", "path", "body", "authorization", "idem"),
    [
        ("GET", "/v2/acme/c/up", None, None, None),
        ("GET", "/v2/acme/c/up", None, None, "k1"),
        ("GET", "/v2/acme/fresh/up", None, None, None),
        ("GET", "/v2/acme/c/down", None, None, None),
        ("GET", "/v2/acme/fresh/down", None, None, "k1"),
        ("GET", "/v2/acme/c/reset", None, None, "k1"),
        ("GET", "/v2/acme/c/set?value=5", None, None, None),
        ("POST", "/account/counters/c/1", None, None, None),
        ("POST", "/account/counters/c/1", None, None, "k1"),
        ("POST", "/account/invoice-items", {"amount": 5, "description": "x"}, None, "k1"),
        ("GET", "/v2/acme/c/up", None, "Bearer tly_0123456789abcdef_made-up", "k1"),
        ("GET", "/v2/acme/c/up", None, "Basic dXNlcjpwYXNz", None),
        ("POST", "/account/api-keys", {"scopes": ["admin"]}, "Bearer tly_x_y", "k1"),
        ("POST", "/admin/workspaces", {"workspace": "evil"}, "Bearer wrong", "k1"),
        ("PUT", "/admin/workspaces/acme/rate-limit", {"quota": 1, "window": 1}, None, "k1"),
        ("DELETE", "/account/api-keys/0123456789abcdef", None, "Bearer tly_a_b", "k1"),
    ],
)
def test_a_refused_unauthenticated_request_writes_at_most_one_item(
    api, ddb, workspace, method, path, body, authorization, idem
):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)  # a private counter `c`, value 1
    before = {table: _scan(ddb, table) for table in ddb.list_tables()["TableNames"]}
    headers = {}
    if authorization:
        headers["Authorization"] = authorization
    if idem:
        headers["Idempotency-Key"] = idem
    calls = record_calls(tables=True)

    answer = api(method, path, body=body, headers=headers)

    assert answer.status == 401, answer.body
    for table, items in before.items():
        if table != "RateLimitsTable":
            assert _scan(ddb, table) == items, table
    # The one item written is the caller's bucket. An anonymous change to a counter not open to
    # anyone is refused by the change's own condition (a conditional write that writes nothing),
    # which spares every allowed anonymous change a read first.
    writes = [call for call in calls if call[0] in WRITES and call[1] != "CountersTable"]
    assert writes == [("UpdateItem", "RateLimitsTable")], writes
    assert len([call for call in calls if call[0] in WRITES]) <= 2


@pytest.mark.parametrize("idem", [None, "k1"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/acme/c/up"), ("GET", "/v2/acme/c"), ("POST", "/account/counters/c/1")],
)
def test_a_rate_limited_unauthenticated_request_writes_at_most_one_item(
    moved, api, ddb, workspace, method, path, idem
):
    _limit_five_a_minute(api, moved)
    make_public(ddb, "acme", "c")
    if path.startswith("/v2/acme/"):  # this address's bucket for acme holds 5
        drained = [api("GET", f"/v2/acme/c{i}").status for i in range(6)]
    else:  # paths with no workspace share this address's bucket of the default 600
        drained = [api("GET", f"/nowhere/{i}").status for i in range(601)]
    assert drained[-1] == 429
    before = {table: _scan(ddb, table) for table in ("CountersTable", "IdempotencyTable")}
    headers = {"Idempotency-Key": idem} if idem else {}
    calls = record_calls(tables=True)

    answer = api(method, path, headers=headers)

    assert answer.status == 429
    assert len([call for call in calls if call[0] in WRITES]) <= 1, list(calls)
    assert {table: _scan(ddb, table) for table in before} == before


def test_a_key_opening_many_new_paths_meets_the_new_paths_bucket_at_50_a_minute(
    moved, api, ddb, workspace
):
    _, key = workspace
    _limit_five_a_minute(api, moved)
    assert rate_limit.SPREAD * 5 == 50

    answers = [api("GET", f"/v2/acme/n{i}/up", key=key) for i in range(51)]

    assert [a.status for a in answers[:50]] == [200] * 50
    refused = answers[50]
    assert refused.status == 429
    assert "50 new paths per 60 s for this API key" in _message(refused)
    assert refused.headers["RateLimit-Policy"] == '"new-paths";q=50;w=60'
    assert _counter_item(ddb, "n49") is not None and _counter_item(ddb, "n50") is None


def test_new_paths_of_every_route_share_the_keys_one_new_paths_bucket(moved, api, ddb, workspace):
    _, key = workspace
    _limit_five_a_minute(api, moved)
    requests = (
        [("GET", f"/v2/acme/a{i}/up") for i in range(15)]
        + [("POST", f"/account/counters/b/{i}") for i in range(1, 16)]
        + [("GET", f"/v2/acme/a{i}") for i in range(10)]
        + [("PUT", f"/account/counters/d{i}/settings") for i in range(11)]
    )

    statuses = [
        api(m, p, key=key, body={"description": "x"} if m == "PUT" else None).status
        for m, p in requests
    ]

    assert statuses[:50] == [200] * 50
    assert statuses[50] == 429


def test_a_new_path_refused_for_lack_of_new_path_tokens_stays_refused_when_retried(
    moved, api, ddb, workspace
):
    _, key = workspace
    _limit_five_a_minute(api, moved)
    for i in range(50):
        api("GET", f"/v2/acme/n{i}/up", key=key)
    assert api("GET", "/v2/acme/n50/up", key=key).status == 429

    retried = api("GET", "/v2/acme/n50/up", key=key)  # the same instant: no token refilled

    assert retried.status == 429, retried.body
    assert _counter_item(ddb, "n50") is None


def test_sending_each_new_path_twice_opens_no_more_than_50_paths_a_minute(
    moved, api, ddb, workspace
):
    _, key = workspace
    _limit_five_a_minute(api, moved)
    served = set()

    for i in range(80):
        for _ in range(2):
            if api("GET", f"/v2/acme/n{i}/up", key=key).status == 200:
                served.add(i)

    assert len(served) <= 50, f"{len(served)} distinct new paths served in one minute"
    assert len(counters.values("acme")) <= 50


def test_repeating_one_path_is_limited_at_the_quota_of_5(moved, api, ddb, workspace):
    _, key = workspace
    _limit_five_a_minute(api, moved)

    answers = [api("GET", "/v2/acme/c/up", key=key) for _ in range(6)]

    assert [a.status for a in answers] == [200] * 5 + [429]
    assert "5 requests per 60 s on this path" in _message(answers[5])
    assert _n(_counter_item(ddb), "v") == 5


@pytest.mark.parametrize(
    "requests",
    [
        [("GET", f"/junk/{i}") for i in range(6)],
        [("GET", f"/v2/acme/c/up/{i}") for i in range(6)],
        [("PUT", f"/junk/{i}") for i in range(3)] + [("PUT", "/account/counters")] * 3,
        [("DELETE", "/v2/acme/c"), ("DELETE", "/nowhere"), ("DELETE", "/account/counters")] * 2,
    ],
    ids=["junk-404s", "extra-segments", "404-and-405", "deletes"],
)
def test_requests_no_route_took_share_one_bucket_per_caller(moved, api, ddb, workspace, requests):
    _, key = workspace
    _limit_five_a_minute(api, moved)

    statuses = [api(m, p, key=key).status for m, p in requests]

    assert all(s in (404, 405) for s in statuses[:5]), statuses
    assert statuses[5] == 429


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/acme/c/up"),
        ("GET", "/v2/acme/c/down"),
        ("POST", "/account/counters/c/3"),
        ("POST", "/account/counters/c/-2"),
    ],
)
def test_cost_a_warm_repeated_change_with_a_key_is_exactly_two_dynamodb_calls(
    api, workspace, method, path
):
    _, key = workspace
    for _ in range(2):  # warm: key, policy, bucket hint and today's counter buckets in place
        assert api(method, path, key=key).status == 200
    calls = record_calls(tables=True)

    for _ in range(3):
        assert api(method, path, key=key).status == 200
        assert calls.pop() == [("UpdateItem", "RateLimitsTable"), ("UpdateItem", "CountersTable")]


# ------------------------------------------------------------------ 7. visible outcomes


@pytest.fixture
def log_stream():
    """Powertools' JSON log lines (its handler keeps the stdout it was created with, so it is
    pointed at a buffer here, as tests/api/test_telemetry.py does)."""
    from tally.telemetry import logger

    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    yield buffer
    logger.registered_handler.setStream(previous)


def _warnings(stream: io.StringIO) -> list[dict]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("level") == "WARNING"]


def _operations_of_counter_changes() -> list[str]:
    """The running operation of each change sent to CountersTable from now on."""
    seen: list[str] = []

    def record(params, **_):
        if params.get("TableName") == "CountersTable" and operation.running():
            seen.append(operation.running())

    aws.dynamodb().meta.events.register("before-parameter-build.dynamodb.UpdateItem", record)
    return seen


@pytest.mark.parametrize(
    ("method", "path", "idem", "value"),
    [
        ("GET", "/v2/acme/c/up", None, 1 + 10 + 1),
        ("GET", "/v2/acme/c/down", "k-down", 1 + 10 - 1),
        ("POST", "/account/counters/c/7", "pay-1", 1 + 10 + 7),
        ("POST", "/account/counters/c/-3", None, 1 + 10 - 3),
        ("GET", "/v2/acme/c/set?value=3", None, 3 + 10),
        ("DELETE", "/account/counters/c", "reset-1", 0 + 10),
    ],
)
def test_an_outcome_unknown_logs_one_warning_with_its_operation_and_counter_and_a_metric(
    api, ddb, workspace, capsys, log_stream, method, path, idem, value
):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    emitted_metrics(capsys)
    log_stream.truncate(0)
    log_stream.seek(0)
    operations = _operations_of_counter_changes()
    _lose_counter_answers(then=_another_change(10))

    answer = api(method, path, key=key, headers={"Idempotency-Key": idem} if idem else None)

    assert answer.status == 503 and answer.headers["Retry-After"] == "1"
    op = operations[0]
    if idem:
        assert op == _op_id(key, method, path, idem=idem)
    (warning,) = _warnings(log_stream)
    assert warning["operation"] == op and warning["counter"] == "c"
    assert "OutcomeUnknown" in warning["message"]
    assert "OutcomeUnknown" in emitted_metrics(capsys)
    assert _n(_counter_item(ddb), "v") == value  # applied once, not twice


@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"],
)
@pytest.mark.parametrize("caller", ["key", "anonymous"])
def test_when_the_rate_limit_table_is_down_the_request_is_served_and_counted_fail_open(
    api, ddb, workspace, capsys, log_stream, monkeypatch, code, caller
):
    _, key = workspace
    make_public(ddb, "acme", "c")
    emitted_metrics(capsys)
    log_stream.truncate(0)
    log_stream.seek(0)
    buckets = _scan(ddb, "RateLimitsTable")
    rate_limit_table_down(monkeypatch, code)

    answer = api("GET", "/v2/acme/c/up", key=key if caller == "key" else None)

    assert (answer.status, answer.body["data"]["value"]) == (200, 1)
    assert "RateLimit" not in answer.headers
    assert "RateLimitFailOpen" in emitted_metrics(capsys)
    (warning,) = [w for w in _warnings(log_stream) if w.get("rate_limit") == "fail_open"]
    assert warning["workspace"] == "acme"
    assert _n(_counter_item(ddb), "v") == 1
    assert _scan(ddb, "RateLimitsTable") == buckets


# ------------------------------------------------------------------ 8. operation ids

WORKSPACE_KEY, OPERATOR = "workspace key", "operator"

# route -> a valid request on it: (method, path, body, who sends it). "{new_webhook_id}" is a
# webhook made first, as "{new_key_id}" is the id of
# a read key made for the request (a key to revoke).
CHANGING_REQUESTS: dict[tuple[str, str], tuple[str, str, Any, str]] = {
    ("POST", "/admin/workspaces"): ("POST", "/admin/workspaces", {"workspace": "beta"}, OPERATOR),
    ("PUT", "/admin/workspaces/{workspace}/rate-limit"): (
        "PUT",
        "/admin/workspaces/acme/rate-limit",
        {"quota": 100, "window": 60},
        OPERATOR,
    ),
    ("POST", "/account/api-keys"): (
        "POST",
        "/account/api-keys",
        {"scopes": ["read"]},
        WORKSPACE_KEY,
    ),
    ("DELETE", "/account/api-keys/{key_id}"): (
        "DELETE",
        "/account/api-keys/{new_key_id}",
        None,
        WORKSPACE_KEY,
    ),
    ("GET", "/v2/{workspace}/{name}/up"): ("GET", "/v2/acme/c/up", None, WORKSPACE_KEY),
    ("GET", "/v2/{workspace}/{name}/down"): ("GET", "/v2/acme/c/down", None, WORKSPACE_KEY),
    ("GET", "/v2/{workspace}/{name}/reset"): ("GET", "/v2/acme/c/reset", None, WORKSPACE_KEY),
    ("GET", "/v2/{workspace}/{name}/set"): ("GET", "/v2/acme/c/set?value=3", None, WORKSPACE_KEY),
    ("POST", "/account/counters/{name}/{value}"): (
        "POST",
        "/account/counters/c/4",
        None,
        WORKSPACE_KEY,
    ),
    ("DELETE", "/account/counters/{name}"): ("DELETE", "/account/counters/c", None, WORKSPACE_KEY),
    ("PUT", "/account/counters/{name}/settings"): (
        "PUT",
        "/account/counters/c/settings",
        {"description": "x", "upper_bound": 100, "lower_bound": -100},
        WORKSPACE_KEY,
    ),
    ("POST", "/account/invoice-items"): (
        "POST",
        "/account/invoice-items",
        {"amount": 5, "description": "x"},
        WORKSPACE_KEY,
    ),
    ("GET", "/v2/{workspace}/{name}/up/badge.svg"): (
        "GET",
        "/v2/acme/c/up/badge.svg",
        None,
        WORKSPACE_KEY,
    ),
    ("PUT", "/account/settings"): (
        "PUT",
        "/account/settings",
        {"default_visibility": "public"},
        WORKSPACE_KEY,
    ),
    ("POST", "/account/webhooks"): (
        "POST",
        "/account/webhooks",
        {"url": "http://127.0.0.1:9/", "events": ["tally.counter.alert"]},
        WORKSPACE_KEY,
    ),
    ("DELETE", "/account/webhooks/{webhook_id}"): (
        "DELETE",
        "/account/webhooks/{new_webhook_id}",
        None,
        WORKSPACE_KEY,
    ),
}

READING_REQUESTS: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/v2/{workspace}/{name}"): ("GET", "/v2/acme/c"),
    ("GET", "/v2/{workspace}/{name}/stats"): ("GET", "/v2/acme/c/stats"),
    ("GET", "/account/counters"): ("GET", "/account/counters"),
    ("GET", "/app/session"): ("GET", "/app/session"),
    ("GET", "/account/counters/{name}/settings"): ("GET", "/account/counters/c/settings"),
    ("GET", "/account/invoice-items"): ("GET", "/account/invoice-items"),
    ("GET", "/account/api-keys"): ("GET", "/account/api-keys"),
    ("GET", "/v2/{workspace}/{name}/badge.svg"): ("GET", "/v2/acme/c/badge.svg"),
    ("GET", "/v2/{workspace}/{name}/shield.json"): ("GET", "/v2/acme/c/shield.json"),
    ("GET", "/account/settings"): ("GET", "/account/settings"),
    ("GET", "/v2/{workspace}/{name}/history"): ("GET", "/v2/acme/c/history"),
    ("GET", "/account/counters/{name}/history"): ("GET", "/account/counters/c/history"),
    ("ANY", "$default"): ("GET", "/nowhere"),
    ("GET", "/account/webhooks"): ("GET", "/account/webhooks"),
    ("GET", "/account/webhooks/{webhook_id}/deliveries"): (
        "GET",
        "/account/webhooks/wh_00000000000000000000/deliveries",
    ),
    ("GET", "/dashboard"): ("GET", "/dashboard"),
    ("GET", "/dashboard/{file}"): ("GET", "/dashboard/app.js"),
}

# What each changing route must stamp with its operation id.
STAMPS = {
    ("GET", "/v2/{workspace}/{name}/up"): "counter",
    ("GET", "/v2/{workspace}/{name}/down"): "counter",
    ("GET", "/v2/{workspace}/{name}/reset"): "counter",
    ("GET", "/v2/{workspace}/{name}/set"): "counter",
    ("POST", "/account/counters/{name}/{value}"): "counter",
    ("DELETE", "/account/counters/{name}"): "counter",
    ("GET", "/v2/{workspace}/{name}/up/badge.svg"): "counter",
    ("POST", "/account/invoice-items"): "invoice item",
}

ROUTED = {name: fn for name, fn in TEMPLATE.functions.items() if fn.routes}
CHANGING = sorted(name for name, fn in ROUTED.items() if getattr(fn.load(), "changes", False))
READING = sorted(set(ROUTED) - set(CHANGING))


def _route(fn) -> tuple[str, str]:
    (route,) = fn.routes
    return route.method, route.path


def _routes(names: list[str]) -> set[tuple[str, str]]:
    return {(r.method, r.path) for name in names for r in ROUTED[name].routes}


def _tables(params: dict[str, Any]) -> set[str]:
    if "TableName" in params:
        return {params["TableName"]}
    if "TransactItems" in params:
        return {body["TableName"] for item in params["TransactItems"] for body in item.values()}
    return set(params.get("RequestItems", {}))


def _record_writes() -> list[dict[str, Any]]:
    """Every write tally's client sends from now on: its operation, tables, parameters, and the
    operation the edge had running at that moment."""
    writes: list[dict[str, Any]] = []

    def record(model, params, **_):
        if model.name in WRITES:
            writes.append(
                {
                    "op": model.name,
                    "tables": _tables(params),
                    "params": copy.deepcopy(params),
                    "running": operation.running(),
                }
            )

    aws.dynamodb().meta.events.register("before-parameter-build.dynamodb.*", record)
    return writes


_SETS_VALUE = re.compile(r"(?:\bSET |, )#v = ")
_ADDS_VALUE = re.compile(r"\bADD (?:#\w+ :\w+, )*#v :")


def _changes_value(update_expression: str) -> bool:
    """Whether an UpdateItem assigns the counter's value (SET #v = ... or ADD #v ...), not merely
    reads it (if_not_exists(#v, ...) in a settings change)."""
    return bool(_SETS_VALUE.search(update_expression) or _ADDS_VALUE.search(update_expression))


def _operation_violations(writes: list[dict[str, Any]]) -> list[str]:
    """What breaks "every write runs in the request's one operation and carries its id"; the
    rate-limit bucket is taken at the edge before any operation begins, and is not checked."""
    domain = [w for w in writes if w["tables"] != {"RateLimitsTable"}]
    problems = [
        f"{w['op']} on {w['tables']} outside any operation" for w in domain if not w["running"]
    ]
    running = {w["running"] for w in domain if w["running"]}
    if len(running) > 1:
        problems.append(f"more than one operation in one request: {running}")
    for w in domain:
        params = w["params"]
        counter_change = w["op"] == "UpdateItem" and w["tables"] == {"CountersTable"}
        if counter_change and _changes_value(params["UpdateExpression"]):
            stamp = params.get("ExpressionAttributeValues", {}).get(":op", {}).get("S")
            if stamp is None or stamp != w["running"]:
                problems.append(f"a counter change stamped {stamp}, running {w['running']}")
        if w["op"] == "PutItem" and w["tables"] == {"InvoiceItemsTable"}:
            item_id = params["Item"]["item_id"]["S"]
            if item_id != f"ivi_{w['running']}":
                problems.append(f"invoice item {item_id}, running {w['running']}")
    return problems


def test_every_routed_function_declares_whether_it_changes_and_is_probed_here():
    for name, fn in TEMPLATE.functions.items():
        if not fn.routes:
            assert fn.schedules or fn.streams, f"{name}: no route, schedule or stream event"
            assert not hasattr(fn.load(), "changes"), f"{name} is not behind the gateway"
            continue
        handler = fn.load()
        assert isinstance(getattr(handler, "changes", None), bool), name
    assert _routes(CHANGING) == set(CHANGING_REQUESTS)
    assert _routes(READING) == set(READING_REQUESTS)
    assert set(STAMPS) <= set(CHANGING_REQUESTS)


def _send(api, method: str, path: str, *, token: str, body: Any = None, idem: str | None = None):
    """A request through the gateway whose answer may not be JSON (an SVG badge): (status,
    the parsed JSON body or None)."""
    headers = {"Authorization": f"Bearer {token}"}
    if idem:
        headers["Idempotency-Key"] = idem
    data = None if body is None else json.dumps(body)
    response = api.client.open(path, method=method, headers=headers, data=data)
    is_json = response.headers.get("Content-Type", "").startswith("application/json")
    return response.status_code, json.loads(response.get_data(as_text=True)) if is_json else None


def _probe(api, key: str, name: str) -> tuple[str, str, Any, str, str]:
    """The request for function `name`: (method, path, body, who, the token it sends)."""
    method, path, body, who = CHANGING_REQUESTS[_route(ROUTED[name])]
    if "{new_key_id}" in path:
        made = api("POST", "/account/api-keys", key=key, body={"scopes": ["read"]}).body
        path = path.format(new_key_id=made["key_id"])
    if "{new_webhook_id}" in path:
        hook = {"url": "http://127.0.0.1:9/", "events": ["tally.counter.alert"]}
        made = api("POST", "/account/webhooks", key=key, body=hook).body
        path = path.format(new_webhook_id=made["id"])
    return method, path, body, who, ADMIN_TOKEN if who == OPERATOR else key


@pytest.mark.parametrize("idem", [None, "op-key-1"], ids=["no-key", "idempotency-key"])
@pytest.mark.parametrize("name", CHANGING)
def test_a_changing_handler_writes_only_inside_its_operation_and_stamps_its_id(
    api, ddb, workspace, name, idem
):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)  # a counter `c` that exists, value 1
    method, path, body, who, token = _probe(api, key, name)
    writes = _record_writes()

    status, answered = _send(api, method, path, token=token, body=body, idem=idem)

    assert status in (200, 201), answered
    domain = [w for w in writes if w["tables"] != {"RateLimitsTable"}]
    assert domain, f"{name} changed nothing"
    assert _operation_violations(writes) == []
    op = domain[0]["running"]
    stamps = STAMPS.get(_route(ROUTED[name]))
    if stamps == "counter":
        stamped = [
            w
            for w in domain
            if w["op"] == "UpdateItem"
            and w["tables"] == {"CountersTable"}
            and _changes_value(w["params"]["UpdateExpression"])
        ]
        assert stamped and _counter_item(ddb)["lop"]["S"] == op
    elif stamps == "invoice item":
        assert [w["op"] for w in domain if w["tables"] == {"InvoiceItemsTable"}] == ["PutItem"]
        assert answered["id"] == f"ivi_{op}"
    if idem:
        scope = "operator" if who == OPERATOR else f"key:{_key_id(key)}"
        assert op == idempotency.operation_id(scope, idem, _fingerprint(method, path, body))


@pytest.mark.parametrize("name", CHANGING)
def test_a_keyed_request_is_the_same_operation_on_every_attempt_and_another_key_is_another(
    api, ddb, workspace, name
):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    method, path, body, _, token = _probe(api, key, name)
    writes = _record_writes()

    def attempt(idem: str) -> str:
        writes.clear()
        _send(api, method, path, token=token, body=body, idem=idem)
        _lose_idempotency_records(ddb)  # the next attempt runs again
        return next(w["running"] for w in writes if w["tables"] != {"RateLimitsTable"})

    first, again, other = attempt("same"), attempt("same"), attempt("other")

    assert first == again != other


@pytest.mark.parametrize("route", sorted(READING_REQUESTS), ids=" ".join)
def test_a_reading_handler_writes_nothing_but_its_rate_limit_bucket(api, workspace, route):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    api("POST", "/account/invoice-items", key=key, body={"amount": 1, "description": "x"})
    method, path = READING_REQUESTS[route]
    writes = _record_writes()

    status, answered = _send(api, method, path, token=key)

    assert status in (200, 404), answered
    assert writes and all(w["tables"] == {"RateLimitsTable"} for w in writes), writes


def test_a_change_made_outside_any_operation_is_caught_by_these_checks(ddb, workspace):
    writes = _record_writes()

    counters.change("acme", "c", +1)
    invoices.create("acme", 5, "x")

    assert operation.running() is None
    assert {w["op"] for w in writes} == {"UpdateItem", "PutItem"}
    assert all(w["running"] is None for w in writes)
    problems = _operation_violations(writes)
    assert "UpdateItem on {'CountersTable'} outside any operation" in problems
    assert "PutItem on {'InvoiceItemsTable'} outside any operation" in problems
    assert any(p.startswith("a counter change stamped ") for p in problems)
    assert any(p.startswith("invoice item ivi_") for p in problems)
    with operation.begin("probe-op"):
        inside = _record_writes()
        counters.change("acme", "c", +1)
    assert _operation_violations(inside) == []
