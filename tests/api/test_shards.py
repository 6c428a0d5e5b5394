"""Sharded counters (tally.shards): exactness under concurrent changes, room moved between
shards under a bound, resharding while changes are in flight, set and reset, stats, history and
events on the sum, on moto and on DynamoDB Local."""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally import counter_settings, counters, events
from tally.errors import Conflict
from tally.names import INT64_MAX
from tests.conftest import DynamoDBFaults, record_calls


def _settings(api, key, name, body):
    return api("PUT", f"/account/counters/{name}/settings", key=key, body=body)


def _add(api, key, name, amount):
    return api("POST", f"/account/counters/{name}/{amount}", key=key)


def _counter(api, key, name):
    return api("GET", f"/v2/acme/{name}", key=key).body["data"]


def _items(ddb, name, workspace="acme"):
    """The counter's items, by shard: its own and its shards' (keyed outside the workspace)."""
    found = {}
    for item in ddb.scan(TableName="CountersTable", ConsistentRead=True)["Items"]:
        partition = item["workspace"]["S"]
        if item["counter"]["S"] == name and partition.split("/")[0] == workspace:
            found[int(partition.split("/")[2]) if "/" in partition else 0] = item
    return found


def _warm(api, key, *paths):
    """Each route called once first: the local gateway loads a function's module on its first
    call, and two threads loading it at once can see it half loaded (a harness race)."""
    for method, path in paths:
        api(method, path, key=key)


@pytest.fixture
def atomic_moto(dynamodb_backend, monkeypatch):
    """moto in-process applies concurrent calls without a lock (tally_local.dynamodb): one call
    at a time, as DynamoDB applies each atomically. DynamoDB Local needs nothing."""
    if dynamodb_backend.endpoint is not None:
        return
    from moto.core.botocore_stubber import BotocoreStubber

    one_at_a_time, send = threading.Lock(), BotocoreStubber.__call__

    def atomic(stubber, *args, **kwargs):
        with one_at_a_time:
            return send(stubber, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", atomic)


# ------------------------------------------------------------------ the setting


def test_a_sharded_counter_counts_every_change_reads_the_sum_and_lists_once(api, workspace, ddb):
    _, key = workspace
    put = _settings(api, key, "hot", {"shards": 4, "description": "busy"})
    assert put.status == 200, put.body
    assert (put.body["shards"], put.body["description"]) == (4, "busy")
    assert sorted(_items(ddb, "hot")) == [0, 1, 2, 3]

    for _ in range(40):
        assert api("GET", "/v2/acme/hot/up", key=key).status == 200
    assert _add(api, key, "hot", -5).body == {"id": "hot", "value": 35}

    data = _counter(api, key, "hot")
    assert (data["value"], data["up_count"], data["down_count"]) == (35, 40, 5)
    stats = api("GET", "/v2/acme/hot/stats", key=key).body["data"]["stats"]
    assert stats["today"] == {"up": 40, "down": 5}
    assert sum(h["up"] for h in stats["temporal"]["hours"].values()) == 40
    assert api("GET", "/account/counters", key=key).body == {"counters": {"hot": 35}}
    details = api("GET", "/account/counters?details=true", key=key).body["details"]["hot"]
    assert (details["value"], details["up_count"], details["today"]) == (
        35,
        40,
        {"up": 40, "down": 5},
    )
    assert ">35<" in api("GET", "/v2/acme/hot/badge.svg", key=key).body
    assert api("GET", "/account/counters/hot/settings", key=key).body["shards"] == 4
    shares = [int(i.get("v", {"N": "0"})["N"]) for i in _items(ddb, "hot").values()]
    assert sum(shares) == 35 and sum(1 for s in shares if s) > 1  # spread over the shards


@pytest.mark.parametrize(
    "shards", [0, 65, -1, "4", 1.5, True, [2], {"n": 2}], ids=lambda v: f"shards={v!r}"
)
def test_bad_shards_are_400_in_the_dialects_shape_and_change_nothing(api, workspace, ddb, shards):
    _, key = workspace
    _settings(api, key, "c", {"description": "before", "shards": 2})

    answer = _settings(api, key, "c", {"shards": shards, "description": "after"})

    assert answer.status == 400
    assert answer.body["error"]["type"] == "user" and "shards" in answer.body["error"]["fields"]
    after = api("GET", "/account/counters/c/settings", key=key).body
    assert (after["description"], after["shards"]) == ("before", 2)
    assert sorted(_items(ddb, "c")) == [0, 1]


def _billing_items(workspace="acme"):
    from tally import invoices

    return [i for i in invoices.page(workspace, limit=100)["list"] if i["source"] == "billing"]


def _marks():
    from tally import billing

    return sorted((m.counter, m.value, m.billed, m.shards) for m in billing.marks())


def test_a_sharded_counter_is_marked_on_its_total_and_billed_on_it_once(
    api, workspace, counter_stream
):
    from tally import billing

    _, key = workspace
    billed = {"billing": {"threshold": 10, "amount": 5, "description": "per 10"}, "shards": 4}
    assert _settings(api, key, "b", billed).status == 200
    for _ in range(9):
        _add(api, key, "b", 1)
    counter_stream()
    assert _marks() == []  # 9: below the threshold, whichever shards hold it
    _add(api, key, "b", 14)  # 23: crosses 10 (a level: a global operation, on the total)
    counter_stream()
    assert _marks() == [("b", 23, 0, 4)]

    report = billing.run()

    assert (report.items_created, report.units_billed, report.cents_billed) == (1, 20, 10)
    assert _counter(api, key, "b")["value"] == 3
    counter_stream()  # the bill's own record: 3, due no more
    assert _marks() == []
    assert billing.run().items_created == 0
    assert [i["amount"] for i in _billing_items()] == [10]


def test_billing_a_sharded_counter_under_concurrent_changes_bills_every_unit_once(
    api, workspace, counter_stream, atomic_moto
):
    from tally import billing, counters

    _, key = workspace
    billed = {"billing": {"threshold": 7, "amount": 3, "description": "per 7"}, "shards": 8}
    assert _settings(api, key, "hot", billed).status == 200
    _warm(api, key, ("POST", "/account/counters/warm/1"))
    stop, reports = threading.Event(), []

    def bill_meanwhile():
        while not stop.is_set():
            counter_stream()
            reports.append(billing.run())

    runner = threading.Thread(target=bill_meanwhile)
    runner.start()
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: _add(api, key, "hot", 1), range(150)))
    stop.set()
    runner.join()
    counter_stream()
    billing.run()
    counter_stream()

    assert [a.status for a in answers] == [200] * 150
    stored = counters.get("acme", "hot").stored
    items = _billing_items()
    assert stored.value + stored.billed_units == 150  # every change billed or still counted
    assert stored.value < 7  # all that was due is billed
    assert sum(i["amount"] for i in items) // 3 * 7 == stored.billed_units  # each unit once
    assert len({i["id"] for i in items}) == len(items)
    assert sum(r.failed for r in reports) == 0
    assert _marks() == []


def test_back_to_one_shard_the_counter_is_its_one_item_again_and_costs_one_write(
    api, workspace, ddb
):
    _, key = workspace
    _settings(api, key, "c", {"shards": 5, "upper_bound": 1000})
    for amount in (7, 11, -3, 20):
        _add(api, key, "c", amount)

    assert _settings(api, key, "c", {"shards": None}).body["shards"] == 1

    items = _items(ddb, "c")
    assert sorted(items) == [0]
    assert not {"sh", "ku", "kd", "fz"} & set(items[0])
    assert (int(items[0]["v"]["N"]), int(items[0]["ru"]["N"])) == (35, 1000 - 35)
    calls = record_calls(ddb)
    counters.change("acme", "c", +1, client=ddb)
    assert calls.pop() == ["UpdateItem"]
    data = _counter(api, key, "c")
    assert (data["value"], data["up_count"], data["down_count"]) == (36, 39, 3)


def test_a_change_to_a_sharded_counter_is_one_write_and_one_batch_read(ddb):
    counters.change("acme", "c", +1, client=ddb)  # created unsharded
    counter_settings.put("acme", "c", {"shards": 4}, client=ddb)  # each shard has room now
    while not all("dy" in item for item in _items(ddb, "c").values()):
        counters.change("acme", "c", +1, client=ddb)  # a shard's first change of a day: 2 writes
    calls = record_calls(ddb)

    counters.change("acme", "c", +1, client=ddb)
    counters.get("acme", "c", client=ddb)

    assert calls.pop() == ["UpdateItem", "BatchGetItem", "BatchGetItem"]


# ------------------------------------------------------------------ exact under concurrency


def test_200_concurrent_changes_from_16_threads_sum_exactly(api, workspace, ddb, atomic_moto):
    _, key = workspace
    _settings(api, key, "hot", {"shards": 8})
    _warm(api, key, ("GET", "/v2/acme/warm/up"), ("POST", "/account/counters/warm/1"))
    rng = random.Random(7)
    amounts = [rng.choice([1, 1, 1, -1, 5, -2]) for _ in range(200)]

    def send(amount: int):
        if amount == 1:
            return amount, api("GET", "/v2/acme/hot/up", key=key)
        return amount, _add(api, key, "hot", amount)

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(send, amounts))

    assert [a.status for _, a in answers] == [200] * 200
    data = _counter(api, key, "hot")
    assert data["value"] == sum(amounts)
    assert data["up_count"] == sum(a for a in amounts if a > 0)
    assert data["down_count"] == -sum(a for a in amounts if a < 0)


def test_concurrent_ups_under_an_upper_bound_fill_it_exactly_and_never_pass_it(
    api, workspace, ddb, atomic_moto
):
    """Room runs short on one shard after another and moves between them: exactly the room
    there was is admitted, every other up is a 409, and no answer ever shows more."""
    _, key = workspace
    _settings(api, key, "seats", {"shards": 8, "upper_bound": 60, "lower_bound": 0})
    _add(api, key, "seats", 10)
    _warm(api, key, ("GET", "/v2/acme/warm/up"))

    def up(_):
        return api("GET", "/v2/acme/seats/up", key=key)

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(up, range(120)))

    admitted = [a for a in answers if a.status == 200]
    assert len(admitted) == 50
    assert {a.status for a in answers} == {200, 409}
    assert all(10 < a.body["data"]["value"] <= 60 for a in admitted)
    refused = next(a for a in answers if a.status == 409)
    assert (
        refused.body["fields"] == {"value": "above upper bound"} and "60" in refused.body["message"]
    )
    assert _counter(api, key, "seats")["value"] == 60
    assert _add(api, key, "seats", -1).status == 200
    assert _add(api, key, "seats", 1).body["value"] == 60


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    shards=st.integers(2, 6),
    hi=st.integers(0, 30),
    width=st.integers(0, 30),
    deltas=st.lists(st.integers(-12, 12), min_size=1, max_size=40),
)
def test_a_change_is_refused_exactly_when_the_whole_counter_has_no_room(
    ddb, shards, hi, width, deltas
):
    """Any sequence of changes to a sharded counter with bounds (to random shards: the room
    moves between them): each is applied exactly when the sum stays within the bounds, as on
    one item."""
    lo, name = hi - width, f"c{uuid.uuid4().hex[:8]}"
    start = random.Random(hi).randint(lo, hi)
    counters.set_value("acme", name, start, client=ddb)
    counter_settings.put(
        "acme", name, {"shards": shards, "upper_bound": hi, "lower_bound": lo}, client=ddb
    )
    value = start
    for delta in deltas:
        fits = lo <= value + delta <= hi
        try:
            answer = counters.change("acme", name, delta, client=ddb)
        except Conflict:
            assert not fits, (value, delta)
            continue
        assert fits, (value, delta)
        value += delta
        assert answer.value == value
    assert counters.get("acme", name, client=ddb).value == value


def test_the_up_count_keeps_its_64_bits_over_the_sum_of_the_shards(ddb):
    counter_settings.put("acme", "big", {"shards": 4}, client=ddb)
    counters.change("acme", "big", INT64_MAX - 10, client=ddb)
    counters.set_value("acme", "big", 0, client=ddb)
    for _ in range(10):
        counters.change("acme", "big", +1, client=ddb)

    with pytest.raises(Conflict) as refused:
        counters.change("acme", "big", +1, client=ddb)

    assert "up_count" in refused.value.message
    assert counters.get("acme", "big", client=ddb).up_count == INT64_MAX


# ------------------------------------------------------------------ resharding in flight


def test_resharding_up_and_down_while_changes_are_in_flight_loses_and_doubles_nothing(
    api, workspace, ddb, atomic_moto
):
    _, key = workspace
    _settings(api, key, "hot", {"upper_bound": 10_000, "lower_bound": -10_000})
    _warm(api, key, ("POST", "/account/counters/warm/1"))
    rng = random.Random(3)
    amounts = [rng.choice([1, 1, 2, -1]) for _ in range(240)]
    done = threading.Event()

    def reshard():
        for shards in (3, 8, 2, 16, 1, 5):
            assert _settings(api, key, "hot", {"shards": shards}).status == 200
        done.set()

    def send(amount: int):
        return amount, _add(api, key, "hot", amount)

    resharder = threading.Thread(target=reshard)
    resharder.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, amounts))
    resharder.join()

    assert done.is_set()
    applied = [amount for amount, answer in answers if answer.status == 200]
    assert [a.status for _, a in answers if a.status != 200] == []
    data = _counter(api, key, "hot")
    assert data["value"] == sum(applied)
    assert data["up_count"] == sum(a for a in applied if a > 0)
    assert sorted(_items(ddb, "hot")) == list(range(5))


# ------------------------------------------------------------------ set and reset


def test_set_and_reset_on_a_sharded_counter_are_exact_on_the_sum(api, workspace, ddb):
    _, key = workspace
    _settings(api, key, "c", {"shards": 6, "upper_bound": 100, "lower_bound": -100})
    for _ in range(12):
        _add(api, key, "c", 3)

    assert api("GET", "/v2/acme/c/set?value=7", key=key).body["data"]["value"] == 7
    assert api("GET", "/v2/acme/c/set?value=101", key=key).status == 409
    for _ in range(5):
        _add(api, key, "c", 2)
    assert _counter(api, key, "c")["value"] == 17
    assert api("DELETE", "/account/counters/c", key=key).body == {"id": "c", "value": 0}
    _add(api, key, "c", 100)

    data = _counter(api, key, "c")
    assert (data["value"], data["up_count"]) == (100, 12 * 3 + 5 * 2 + 100)
    assert _add(api, key, "c", 1).status == 409  # the bound, counted from the reset


def test_bounds_set_on_a_sharded_counter_are_checked_against_the_sum(api, workspace):
    _, key = workspace
    _settings(api, key, "c", {"shards": 4})
    for _ in range(8):
        _add(api, key, "c", 5)  # 40, a part on each shard

    below = _settings(api, key, "c", {"upper_bound": 39})
    fits = _settings(api, key, "c", {"upper_bound": 40})

    assert below.status == 409 and below.body["error"]["fields"] == {"upper_bound": "violated"}
    assert fits.status == 200
    assert _add(api, key, "c", 1).status == 409
    assert _add(api, key, "c", -40).body["value"] == 0


# ------------------------------------------------------------------ DynamoDB failing


def _stored_value(ddb, name):
    """The counter's value as its items hold it (the sum of its shards), read past the API."""
    return sum(int(item.get("v", {"N": "0"})["N"]) for item in _items(ddb, name).values())


def test_with_20_percent_of_dynamodb_calls_failing_a_sharded_counter_counts_exactly_its_200s(
    api, workspace, ddb, monkeypatch
):
    """Changes, sets, reshards and bounds on a sharded counter while a fifth of DynamoDB calls
    are throttled, fail with a 5xx or lose their answer: after each request the counter holds
    exactly what the 200s say. (A change's answer is the sum of its shards, a second read: a
    change made whose sum could not be read was answered a bare 503, and counted once more by a
    client that sent it again.)"""
    _, key = workspace
    monkeypatch.setattr("tally.shards.grow", lambda *_: None)  # N only as this test sets it
    assert _settings(api, key, "c", {"shards": 4}).status == 200
    faults, failing, injected = random.Random(13), [False], []

    def decide(operation):
        if not failing[0] or faults.random() >= 0.2:
            return None
        injected.append(operation)
        return faults.choice(
            ["refuse:ThrottlingException:400", "refuse:InternalServerError:500", "lost"]
        )

    DynamoDBFaults(monkeypatch, decide)
    rng, expected, statuses = random.Random(5), 0, []
    for step in range(120):
        pick, n = rng.random(), rng.randint(-5, 9) or 1
        failing[0] = True
        if pick < 0.04:
            answer = api("GET", f"/v2/acme/c/set?value={n * 10}", key=key)
            expected = n * 10 if answer.status == 200 else expected
        elif pick < 0.08:
            answer = _settings(api, key, "c", {"shards": rng.randint(1, 8)})
        elif pick < 0.12:
            bounds = {"upper_bound": expected + rng.randint(0, 20)}
            answer = _settings(api, key, "c", bounds | {"lower_bound": expected - 20})
        else:
            answer = _add(api, key, "c", n)
            expected += n if answer.status == 200 else 0
        failing[0] = False
        statuses.append(answer.status)
        assert answer.status in (200, 409, 503), (step, answer.body)
        assert _stored_value(ddb, "c") == expected, (step, answer.status, answer.body)

    assert len(injected) > 60 and statuses.count(200) > 50 and 503 in statuses


def test_a_change_made_whose_sum_cannot_be_read_says_so_and_a_keyed_retry_never_repeats_it(
    api, workspace, ddb, monkeypatch
):
    _, key = workspace
    _settings(api, key, "c", {"shards": 4})
    _add(api, key, "c", 5)
    faults = DynamoDBFaults(
        monkeypatch,
        lambda op: "refuse:InternalServerError:500" if op == "BatchGetItem" else None,
    )

    first = api("POST", "/account/counters/c/3", key=key, headers={"Idempotency-Key": "k1"})
    retry = api("POST", "/account/counters/c/3", key=key, headers={"Idempotency-Key": "k1"})
    faults.stop()

    assert first.status == retry.status == 503
    assert "was applied, once" in first.body["error"]["message"]
    assert first.headers["Retry-After"] and retry.headers["Idempotent-Replayed"] == "true"
    assert _stored_value(ddb, "c") == 8  # once: the replay sent nothing
    assert _counter(api, key, "c")["value"] == 8


def test_a_set_whose_last_transaction_answer_is_always_lost_is_applied_once_and_not_resent(
    api, workspace, ddb, monkeypatch
):
    """A global operation's last write (every shard, one transaction) is sent again with its
    ClientRequestToken while its answers are lost: applied once (DynamoDB Local honours the
    token; moto does not, and the resend fails its conditions), then answered OutcomeUnknown."""
    _, key = workspace
    _settings(api, key, "c", {"shards": 3})
    _add(api, key, "c", 4)
    transactions = [0]

    def decide(operation):
        if operation != "TransactWriteItems":
            return None
        transactions[0] += 1  # the first freezes the shards; every later one is the set
        return "lost" if transactions[0] > 1 else None

    faults = DynamoDBFaults(monkeypatch, decide)
    answer = api("GET", "/v2/acme/c/set?value=50", key=key)
    faults.stop()

    assert answer.status == 503  # CounterAPI's error shape: {"code", "message"}
    assert "may or may not have been applied" in answer.body["message"]
    assert transactions[0] > 1 + 3  # past botocore's three attempts
    assert _stored_value(ddb, "c") == 50
    _add(api, key, "c", 1)  # not frozen: the operation let the counter go
    assert _counter(api, key, "c")["value"] == 51


# ------------------------------------------------------------------ history and events


def test_history_of_a_sharded_counter_is_exact_under_redelivery(api, workspace, ddb, monkeypatch):
    from tests.api.test_history import START, _hours, changes, deliver, stream_records

    _, key = workspace
    counter_settings.put("acme", "c", {"shards": 4})
    rng = random.Random(5)
    truth = changes(api, workspace, rng, 60)
    counter_settings.put("acme", "c", {"shards": 2})  # a fold: moves counts, changes no history
    records = stream_records(ddb)

    deliver(records, rng=rng)

    assert _hours(ddb) == truth
    counter = _counter(api, key, "c")
    span = f"from={START.date().isoformat()}&to={(START + timedelta(days=3)).date().isoformat()}"
    points = api("GET", f"/v2/acme/c/history?group_by=day&{span}", key=key).body["data"]["points"]
    assert sum(p["up"] for p in points) == counter["up_count"]
    assert sum(p["down"] for p in points) == counter["down_count"]
    assert sum(p["value_change"] for p in points) == counter["value"]


def test_events_fire_on_the_total_once_per_crossing(api, workspace, ddb):
    from tests.api.test_history import stream_records

    _, key = workspace
    body = {"shards": 4, "upper_bound": 20, "alerts": [{"at": 10}]}
    assert _settings(api, key, "q", body).status == 200
    for _ in range(20):
        assert _add(api, key, "q", 1).status == 200
    _add(api, key, "q", -11)  # 9: below the alert again
    _add(api, key, "q", 1)  # 10: crosses it a second time

    published = [e for r in stream_records(ddb) for e in events.derive(r)]

    seen = [(e.type, e.data.get("level", e.data.get("at")), e.data["value"]) for e in published]
    assert seen == [
        (events.ALERT, 10, 10),
        (events.BOUND_REACHED, 20, 20),
        (events.ALERT, 10, 10),
    ]
    assert [e.data["previous_value"] for e in published] == [9, 19, 9]


# ------------------------------------------------------------------ least privilege


def test_each_function_on_a_sharded_counter_uses_only_what_it_is_granted(
    api, workspace, counter_stream
):
    """Every route that reads or changes a counter, on a sharded one, through rebalances, a
    refusal at the bound, a global operation and resharding both ways: each DynamoDB call its
    function makes is allowed by its policy in template.yaml."""
    from tally import billing
    from tests.api.test_template import _granted

    _, key = workspace
    steps = [
        (
            "AccountPutCounterSettingsFunction",
            "PUT",
            "/account/counters/c/settings",
            {"shards": 4, "upper_bound": 12},
        ),
        ("V2UpFunction", "GET", "/v2/acme/c/up", None),
        ("V2UpBadgeFunction", "GET", "/v2/acme/c/up/badge.svg", None),
        ("AccountAddCounterFunction", "POST", "/account/counters/c/10", None),  # to the bound
        ("AccountAddCounterFunction", "POST", "/account/counters/c/1", None),  # refused
        ("V2DownFunction", "GET", "/v2/acme/c/down", None),
        ("V2SetFunction", "GET", "/v2/acme/c/set?value=5", None),
        ("V2ResetFunction", "GET", "/v2/acme/c/reset", None),
        ("AccountResetCounterFunction", "DELETE", "/account/counters/c", None),
        ("V2GetCounterFunction", "GET", "/v2/acme/c", None),
        ("V2StatsFunction", "GET", "/v2/acme/c/stats", None),
        ("V2BadgeFunction", "GET", "/v2/acme/c/badge.svg", None),
        ("V2ShieldFunction", "GET", "/v2/acme/c/shield.json", None),
        ("AccountGetCounterSettingsFunction", "GET", "/account/counters/c/settings", None),
        ("AccountListCountersFunction", "GET", "/account/counters?details=true", None),
        ("AppSessionFunction", "GET", "/app/session", None),
        ("AccountPutCounterSettingsFunction", "PUT", "/account/counters/c/settings", {"shards": 2}),
        (
            "AccountPutCounterSettingsFunction",
            "PUT",
            "/account/counters/c/settings",
            {"billing": {"threshold": 1, "amount": 1, "description": "per call"}},
        ),
    ]
    for logical_id, method, path, body in steps:
        used = _record_calls_by_table()
        answer = api(method, path, key=key, body=body)
        assert answer.status in (200, 409), (path, answer.body)
        granted = _granted(logical_id)
        for action, table in used:
            assert (action, table) in granted, f"{logical_id} uses {action} on {table}"
    _add(api, key, "c", 3)  # due: its threshold is 1
    counter_stream()
    used = _record_calls_by_table()  # and a billing run's bill of the sharded counter
    assert billing.run().items_created == 1
    granted = _granted("BillingFunction")
    for action, table in used:
        assert (action, table) in granted, f"BillingFunction uses {action} on {table}"


def _record_calls_by_table() -> set[tuple[str, str]]:
    """(IAM action, table) of each DynamoDB call tally makes from now on: a transaction's items
    and a batch's tables each by their own action, as IAM authorises them."""
    from tally import aws

    used: set[tuple[str, str]] = set()
    actions = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "Get": "GetItem"}

    def record(model, params, **_):
        if model.name in ("TransactWriteItems", "TransactGetItems"):
            for item in params["TransactItems"]:
                ((kind, body),) = item.items()
                action = actions.get(kind, "ConditionCheckItem")
                used.add((f"dynamodb:{action}", body["TableName"]))
        elif model.name == "BatchGetItem":
            used.update(("dynamodb:BatchGetItem", table) for table in params["RequestItems"])
        else:
            used.add((f"dynamodb:{model.name}", params["TableName"]))

    aws.dynamodb().meta.events.register("before-parameter-build.dynamodb.*", record)
    return used
