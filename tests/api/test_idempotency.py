"""Idempotency-Key, SDK retries and faults: no double counting, no lost change, never a 500."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter

import pytest
from botocore.exceptions import ReadTimeoutError

from tally import aws, counters, operation
from tests.conftest import ADMIN_TOKEN, DynamoDBFaults, record_calls


def _keyed(api, method, path, key, idem, body=None):
    return api(method, path, key=key, body=body, headers={"Idempotency-Key": idem})


def _value(api, key, name="c"):
    return api("GET", f"/v2/acme/{name}", key=key).body["data"]["value"]


# ------------------------------------------------------------------ Idempotency-Key


def test_a_repeat_answers_the_first_answer_and_changes_nothing(api, workspace):
    _, key = workspace
    first = _keyed(api, "POST", "/account/counters/c/5", key, "order-1")
    again = _keyed(api, "POST", "/account/counters/c/5", key, "order-1")

    assert (
        (first.status, first.body) == (again.status, again.body) == (200, {"id": "c", "value": 5})
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _value(api, key) == 5


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v2/acme/c/up", None),
        ("GET", "/v2/acme/c/down", None),
        ("GET", "/v2/acme/c/reset", None),
        ("GET", "/v2/acme/c/set?value=9", None),
        ("POST", "/account/counters/c/3", None),
        ("DELETE", "/account/counters/c", None),
        ("PUT", "/account/counters/c/settings", {"description": "x"}),
        ("POST", "/account/invoice-items", {"amount": 5, "description": "x"}),
        ("POST", "/account/api-keys", {"scopes": ["read"]}),
        (
            "POST",
            "/account/webhooks",
            {"url": "http://127.0.0.1:9/x", "events": ["tally.counter.alert"]},
        ),
        ("GET", "/v2/acme/c/up?value=5", None),  # a refusal: its fields, in order
    ],
)
def test_every_changing_call_replays_its_first_answer(api, workspace, method, path, body):
    _, key = workspace
    first = _keyed(api, method, path, key, "k1", body)
    again = _keyed(api, method, path, key, "k1", body)

    assert first.status in ((400,) if "value=5" in path else (200, 201)), first.body
    assert again.status == first.status
    # The same body, its fields in the same order (what a client diffing the text sees).
    hidden = {name: None for name in ("api_key", "secret") if name in first.body}
    assert all(first.body[name] for name in hidden)  # shown once, never stored
    assert json.dumps(again.body) == json.dumps({**first.body, **hidden})


def test_replayed_changes_are_applied_once(api, workspace):
    _, key = workspace
    for _ in range(3):
        _keyed(api, "GET", "/v2/acme/c/up", key, "up-1")
        _keyed(
            api, "POST", "/account/invoice-items", key, "item-1", {"amount": 5, "description": "x"}
        )

    assert _value(api, key) == 1
    assert api("GET", "/account/invoice-items", key=key).body["total"] == 1


def test_the_same_key_with_another_request_is_422(api, workspace):
    _, key = workspace
    _keyed(api, "POST", "/account/counters/c/5", key, "k")

    other_value = _keyed(api, "POST", "/account/counters/c/6", key, "k")
    other_route = _keyed(api, "GET", "/v2/acme/c/up", key, "k")
    other_body = _keyed(
        api, "POST", "/account/invoice-items", key, "k", {"amount": 1, "description": "x"}
    )

    assert (other_value.status, other_value.body["error"]["code"]) == (422, 422)
    assert (other_route.status, other_route.body["code"]) == (422, "422")
    assert other_body.status == 422
    assert _value(api, key) == 5


def test_keys_are_scoped_to_the_workspace(api, workspace, demo):
    _, key = workspace
    assert _keyed(api, "POST", "/account/counters/c/1", key, "shared").body["value"] == 1
    assert _keyed(api, "POST", "/account/counters/c/1", demo, "shared").body["value"] == 1
    assert api("GET", "/account/counters", key=demo).body["counters"]["c"] == 1


@pytest.mark.parametrize("idem", ["", "x" * 256, "has space", "tab\tkey", "naïve"])
def test_a_malformed_idempotency_key_is_400_and_changes_nothing(api, workspace, idem):
    _, key = workspace
    answer = _keyed(api, "GET", "/v2/acme/c/up", key, idem)

    assert answer.status == 400
    assert answer.body["fields"] == {"Idempotency-Key": "1-255 printable ASCII characters"}
    assert api("GET", "/v2/acme/c", key=key).status == 404


def test_a_refusal_is_a_first_answer_too(api, workspace):
    _, key = workspace
    api("PUT", "/account/counters/c/settings", key=key, body={"upper_bound": 1})
    assert _keyed(api, "POST", "/account/counters/c/2", key, "k").status == 409
    api("PUT", "/account/counters/c/settings", key=key, body={"upper_bound": None})

    again = _keyed(api, "POST", "/account/counters/c/2", key, "k")

    assert again.status == 409
    assert _value(api, key) == 0


def test_a_repeat_while_the_first_is_in_flight_is_409_and_applies_once(api, workspace, monkeypatch):
    _, key = workspace
    inside, release = threading.Event(), threading.Event()
    change = counters.change

    def slow_change(*args, **kwargs):
        inside.set()
        release.wait(10)
        return change(*args, **kwargs)

    monkeypatch.setattr(counters, "change", slow_change)
    first: list = []
    runner = threading.Thread(
        target=lambda: first.append(_keyed(api, "POST", "/account/counters/c/1", key, "k"))
    )
    runner.start()
    assert inside.wait(10)
    concurrent = _keyed(api, "POST", "/account/counters/c/1", key, "k")
    release.set()
    runner.join()

    assert (concurrent.status, concurrent.headers["Retry-After"]) == (409, "1")
    assert first[0].status == 200
    assert _value(api, key) == 1


def test_records_expire_after_24_hours_by_ttl(api, ddb, workspace):
    _, key = workspace
    _keyed(api, "GET", "/v2/acme/c/up", key, "k")

    (record,) = ddb.scan(TableName="IdempotencyTable")["Items"]

    assert abs(int(record["expiration"]["N"]) - (time.time() + 86_400)) < 60
    ttl = ddb.describe_time_to_live(TableName="IdempotencyTable")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}


def test_a_secret_never_reaches_the_idempotency_table(api, ddb, workspace):
    _, key = workspace
    made = _keyed(api, "POST", "/account/api-keys", key, "new-key", {"scopes": ["read"]}).body
    created = _keyed(
        api, "POST", "/admin/workspaces", ADMIN_TOKEN, "ws", {"workspace": "beta"}
    ).body

    stored = json.dumps(ddb.scan(TableName="IdempotencyTable")["Items"])
    assert made["api_key"] not in stored and created["api_key"] not in stored


def test_a_stored_answer_keeps_its_fields_beside_its_text_for_a_rollback(api, ddb, workspace):
    # A version of tally from before answers were kept as text reads the answer's own fields.
    _, key = workspace
    first = _keyed(api, "GET", "/v2/acme/c/up", key, "k1").body

    (item,) = ddb.scan(TableName="IdempotencyTable")["Items"]
    stored = json.loads(item["data"]["S"])

    assert stored["status"] == 200 and stored["body"] == first
    assert json.loads(stored["answer"]) == {"status": 200, "body": first}


# ------------------------------------------------------------------ answers lost in transit


def _lose_answers(client, times: int = 1, table: str = "CountersTable", then=None):
    """The write reaches DynamoDB and is applied; its answer never comes back (a read timeout)."""
    left = [times]

    def lose(model, params, http_response, **_):
        applied = http_response.status_code == 200
        if applied and params.get("TableName") == table and left[0] > 0:
            left[0] -= 1
            if then:
                then()
            raise ReadTimeoutError(endpoint_url="https://dynamodb")

    params_seen = {}
    client.meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem",
        lambda params, **_: params_seen.update(params=params),
    )
    client.meta.events.register(
        "after-call.dynamodb.UpdateItem",
        lambda model, **kw: lose(model, params_seen["params"], **kw),
    )


def _another_change(delta: int):
    """A change by another request (an operation of its own), landing while this one waits."""

    def change():
        with operation.begin():
            counters.change("acme", "c", delta, client=aws.dynamodb())

    return change


def test_a_change_whose_answer_is_lost_is_applied_once_and_answered(api, workspace):
    _, key = workspace
    _lose_answers(aws.dynamodb())

    answer = api("GET", "/v2/acme/c/up", key=key)

    assert (answer.status, answer.body["data"]["value"]) == (200, 1)
    assert _value(api, key) == 1


def test_a_lost_answer_that_cannot_be_confirmed_is_503_and_never_applied_twice(api, workspace):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    # Another change lands before tally can confirm its own: it cannot tell, so it does not retry.
    _lose_answers(aws.dynamodb(), then=_another_change(10))

    answer = api("GET", "/v2/acme/c/up", key=key)

    assert answer.status == 503 and answer.headers["Retry-After"] == "1"
    assert _value(api, key) == 1 + 10 + 1  # applied once, not twice


def test_an_unconfirmed_change_is_a_final_answer_under_its_idempotency_key(api, workspace):
    _, key = workspace
    api("POST", "/account/counters/c/1", key=key)
    _lose_answers(aws.dynamodb(), then=_another_change(10))

    first = _keyed(api, "POST", "/account/counters/c/7", key, "pay-1")
    retry = _keyed(api, "POST", "/account/counters/c/7", key, "pay-1")

    assert first.status == retry.status == 503
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "read the counter" in retry.body["error"]["message"]
    assert api("GET", "/account/counters", key=key).body["counters"] == {"c": 1 + 10 + 7}


# ------------------------------------------------------------------ faults everywhere


def test_a_mixed_run_with_20_percent_faults_loses_nothing_and_never_answers_500(
    api, workspace, monkeypatch
):
    _, key = workspace
    faults = random.Random(6)  # 20% of all calls: throttles and 5xx refused, answers lost
    rate, injected = [0.2], []

    def decide(operation: str) -> str | None:
        if faults.random() >= rate[0]:
            return None
        injected.append(operation)
        return faults.choice(
            [
                "refuse:ProvisionedThroughputExceededException:400",
                "refuse:ThrottlingException:400",
                "refuse:InternalServerError:500",
                "lost",
            ]
        )

    DynamoDBFaults(monkeypatch, decide)
    rng = random.Random(2026)
    applied, statuses = 0, []

    for _ in range(1000):
        kind = rng.choice(["up", "down", "add", "read"])
        if kind == "read":
            answer = api("GET", "/v2/acme/c", key=key)
        elif kind == "add":
            n = rng.randint(-5, 9)
            answer = api("POST", f"/account/counters/c/{n}", key=key)
            applied += n if answer.status == 200 else 0
        else:
            answer = api("GET", f"/v2/acme/c/{kind}", key=key)
            applied += (1 if kind == "up" else -1) if answer.status == 200 else 0
        statuses.append(answer.status)
        if answer.status == 503:
            assert answer.headers.get("Retry-After"), answer.body
        assert answer.status in (200, 404) or 400 <= answer.status < 500 or answer.status == 503

    assert 500 not in statuses
    assert len(injected) > 300
    assert statuses.count(503) > 0 and statuses.count(200) > 500
    rate[0] = 0
    assert _value(api, key) == applied
    print(f"\nfault run: {len(injected)} faults injected, answers {Counter(statuses)}")


def test_a_first_keyed_change_costs_two_extra_calls_and_a_repeat_one_in_all(api, workspace):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)  # warm: key, policy and today's bucket in place
    calls = record_calls(tables=True)

    _keyed(api, "GET", "/v2/acme/c/up", key, "measure")
    first = list(calls)
    calls.clear()
    _keyed(api, "GET", "/v2/acme/c/up", key, "measure")
    repeat = list(calls)

    assert first == [
        ("UpdateItem", "RateLimitsTable"),
        ("PutItem", "IdempotencyTable"),  # claim the key
        ("UpdateItem", "CountersTable"),  # the change
        ("UpdateItem", "IdempotencyTable"),  # store the answer
    ]
    assert repeat == [("UpdateItem", "RateLimitsTable"), ("PutItem", "IdempotencyTable")]


def test_a_keyed_change_whose_answer_cannot_be_stored_still_answers_the_truth(
    api, workspace, monkeypatch
):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    updates = [0]

    def decide(operation: str) -> str | None:
        if operation != "UpdateItem":
            return None
        updates[0] += 1  # 1: the rate limit, 2: the change, 3+: storing the answer
        return "refuse:InternalServerError:500" if updates[0] >= 3 else None

    faults = DynamoDBFaults(monkeypatch, decide)
    answer = _keyed(api, "GET", "/v2/acme/c/up", key, "k")
    faults.stop()

    assert (answer.status, answer.body["data"]["value"]) == (200, 2)
    assert _value(api, key) == 2


def test_a_keyed_invoice_item_whose_answer_is_lost_is_created_once_and_answered_201(
    api, workspace, monkeypatch
):
    _, key = workspace
    puts = [0]

    def decide(operation: str) -> str | None:
        if operation == "PutItem":
            puts[0] += 1
            return "lost" if puts[0] == 2 else None  # the item, after the idempotency claim
        return None

    faults = DynamoDBFaults(monkeypatch, decide)
    body = {"amount": 500, "description": "setup fee"}
    answer = _keyed(api, "POST", "/account/invoice-items", key, "inv-1", body)
    faults.stop()
    replay = _keyed(api, "POST", "/account/invoice-items", key, "inv-1", body)

    assert puts[0] >= 3  # the lost put was sent again
    assert answer.status == replay.status == 201 and replay.body == answer.body
    assert api("GET", "/account/invoice-items", key=key).body["total"] == 1


@pytest.mark.parametrize("lost", ["ReadTimeoutError", "SSLError", "ConnectionClosedError"])
@pytest.mark.parametrize("change, value", [("up", 2), ("set?value=7", 7), ("reset", 0)])
def test_an_applied_change_whose_answer_is_lost_any_way_is_confirmed_not_resent(
    api, workspace, monkeypatch, lost, change, value
):
    _, key = workspace
    api("GET", f"/v2/acme/c/{change}", key=key)  # the path's bucket exists: one bucket write
    calls = record_calls(tables=True)
    updates = [0]

    def decide(operation: str) -> str | None:
        if operation == "UpdateItem":
            updates[0] += 1
            return f"lost:{lost}" if updates[0] == 2 else None  # the change, not the bucket
        return None

    faults = DynamoDBFaults(monkeypatch, decide)
    answer = api("GET", f"/v2/acme/c/{change}", key=key)
    faults.stop()

    assert updates[0] == 2  # the change was sent once
    assert ("GetItem", "CountersTable") in calls  # and confirmed by reading the counter
    assert (answer.status, answer.body["data"]["value"]) == (200, value)
    assert _value(api, key) == value
