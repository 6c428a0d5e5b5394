"""The throttling proxy (tally_local/throttle.py) in front of the run's DynamoDB: it limits one
item and not its neighbour, refuses as DynamoDB does, botocore retries that refusal and then
raises it, and tally answers 503 for a change throttled past its retries, in each dialect.

The proxy's buckets run on a clock moved by hand, so what is refused never depends on timing."""

from __future__ import annotations

import json
import zlib

import pytest
import urllib3
from botocore.exceptions import ClientError

from tally import aws
from tally.items import counter
from tally_local import dynamodb
from tally_local.throttle import THROTTLED, Throttle
from tests.conftest import TEMPLATE, Api

THROTTLE = "ProvisionedThroughputExceededException"


class Clock:
    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


@pytest.fixture(scope="module")
def backend(dynamodb_backend):
    """The endpoint behind the proxy: the run's DynamoDB Local, or an embedded moto server (the
    one tally serve runs) for this module, since the proxy speaks HTTP."""
    if dynamodb_backend.endpoint:
        yield dynamodb_backend.endpoint
        return
    embedded = dynamodb.EmbeddedDynamoDB(port=0).start()
    yield embedded.endpoint
    embedded.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def proxy(backend, clock, monkeypatch):
    """5 write units a second per item, a burst of 5, empty tables; tally's client points at it."""
    from tests.serve import IN_USE

    assert backend not in IN_USE, "a tally serve keeps its state on this DynamoDB"
    dynamodb.reset_tables(dynamodb.client(backend), TEMPLATE)
    throttle = Throttle(backend, item_wcu=5, burst=5, clock=clock)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", throttle.start())
    yield throttle
    throttle.stop()


def _client(proxy: Throttle, attempts: int = 1):
    """A client of the proxy; `attempts` in all (1: botocore retries nothing)."""
    import boto3
    from botocore.config import Config

    retries = {"mode": "standard", "total_max_attempts": attempts}
    return boto3.client(
        "dynamodb",
        endpoint_url=proxy.endpoint,
        region_name="us-east-1",
        config=Config(retries=retries),  # type: ignore[arg-type]
    )


def _add(client, name: str) -> None:
    client.update_item(
        TableName="CountersTable",
        Key=counter.key("acme", name),
        UpdateExpression="ADD v :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


def _value(client, name: str) -> int:
    item = client.get_item(
        TableName="CountersTable", Key=counter.key("acme", name), ConsistentRead=True
    )
    return int(item["Item"]["v"]["N"])


def test_an_item_past_its_rate_is_throttled_and_its_neighbour_is_not(proxy, clock) -> None:
    client = _client(proxy)
    for _ in range(5):  # the burst
        _add(client, "hot")
    with pytest.raises(ClientError) as refused:
        _add(client, "hot")
    assert refused.value.response["Error"]["Code"] == THROTTLE
    _add(client, "cold")  # same table, another item: its own 5 units
    assert (_value(client, "hot"), _value(client, "cold")) == (5, 1)  # the refusal applied nothing
    clock.at += 0.2  # one unit back at 5 a second
    _add(client, "hot")
    with pytest.raises(ClientError):
        _add(client, "hot")
    assert _value(client, "hot") == 6


def test_reads_are_never_limited(proxy) -> None:
    client = _client(proxy)
    for _ in range(5):
        _add(client, "hot")
    assert [_value(client, "hot") for _ in range(20)] == [5] * 20


def test_a_transaction_costs_each_item_it_touches_two_units(proxy) -> None:
    client = _client(proxy)
    update = lambda name: {  # noqa: E731
        "Update": {
            "TableName": "CountersTable",
            "Key": counter.key("acme", name),
            "UpdateExpression": "ADD v :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }
    client.transact_write_items(TransactItems=[update("a"), update("b")])  # 2 each: 3 left
    client.transact_write_items(TransactItems=[update("a"), update("b")])  # 1 left
    with pytest.raises(ClientError) as refused:  # needs 2 of each
        client.transact_write_items(TransactItems=[update("a"), update("c")])
    assert refused.value.response["Error"]["Code"] == THROTTLE
    _add(client, "a")  # the last unit of a; c took nothing from the refused call
    client.transact_write_items(TransactItems=[update("c"), update("d")])
    assert [_value(client, n) for n in "abcd"] == [3, 2, 1, 1]


def test_a_batch_write_returns_the_items_over_their_limit_unprocessed(proxy) -> None:
    client = _client(proxy)
    for _ in range(5):
        _add(client, "hot")
    put = lambda name: {"PutRequest": {"Item": {**counter.key("acme", name), "v": {"N": "7"}}}}  # noqa: E731
    answer = client.batch_write_item(RequestItems={"CountersTable": [put("hot"), put("cold")]})
    assert answer["UnprocessedItems"] == {"CountersTable": [put("hot")]}
    assert (_value(client, "hot"), _value(client, "cold")) == (5, 7)
    with pytest.raises(ClientError) as refused:  # none admitted: the call is refused
        client.batch_write_item(RequestItems={"CountersTable": [put("hot")]})
    assert refused.value.response["Error"]["Code"] == THROTTLE


def test_the_refusal_is_dynamodbs_answer_on_the_wire(proxy) -> None:
    client = _client(proxy)
    for _ in range(5):
        _add(client, "hot")
    sent = {
        "TableName": "CountersTable",
        "Key": counter.key("acme", "hot"),
        "UpdateExpression": "ADD v :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    answer = urllib3.request(
        "POST",
        proxy.endpoint,
        body=json.dumps(sent).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.UpdateItem",
        },
    )
    assert answer.status == 400
    assert answer.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert int(answer.headers["x-amz-crc32"]) == zlib.crc32(answer.data)
    assert answer.headers["x-amzn-RequestId"]
    body = json.loads(answer.data)
    assert body["__type"] == THROTTLED
    assert body["__type"] == "com.amazonaws.dynamodb.v20120810#" + THROTTLE
    assert "capacity" in body["message"]
    assert body["ThrottlingReasons"] == [
        {
            "reason": "TableWriteKeyRangeThroughputExceeded",
            "resource": "arn:aws:dynamodb:local:000000000000:table/CountersTable",
        }
    ]


def test_botocore_retries_a_throttle_and_then_raises_it(proxy) -> None:
    """botocore's standard retry mode classes the answer as a throttle (retries/standard.py,
    ThrottledRetryableChecker): it sends the call 4 times in all, then raises it."""
    client = _client(proxy, attempts=4)
    for _ in range(5):
        _add(client, "hot")
    before = proxy.throttled
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException) as refused:
        _add(client, "hot")
    assert refused.value.response["ResponseMetadata"]["RetryAttempts"] == 3
    assert proxy.throttled - before == 4
    assert _value(client, "hot") == 5


@pytest.mark.parametrize(
    ("change", "read", "shape"),
    [
        (
            ("GET", "/v2/acme/hot/up"),
            lambda body: body["data"]["value"],
            lambda body: set(body) == {"code", "message"} and body["code"] == "503",
        ),
        (
            ("POST", "/account/counters/hot/1"),
            lambda body: body["value"],
            lambda body: body["error"]["code"] == 503 and body["error"]["type"] == "system",
        ),
    ],
    ids=["v2", "backstack"],
)
def test_tally_answers_503_for_a_change_throttled_past_its_retries(
    proxy, clock, change, read, shape
) -> None:
    api = Api()
    made = api("POST", "/admin/workspaces", key="local-admin-token", body={"workspace": "acme"})
    key = made.body["api_key"]
    assert api(*change, key=key).status == 200
    clock.at += 60  # every bucket full again
    # Another writer has just used the counter item's second: 5 units.
    assert proxy.buckets.take(
        {("CountersTable", json.dumps(counter.key("acme", "hot"), sort_keys=True)): 5}
    )
    before = proxy.throttled
    answer = api(*change, key=key)
    assert answer.status == 503, answer.body
    assert shape(answer.body), answer.body
    assert answer.headers["Retry-After"] == "1"
    # tally's own retries, all refused; then its grow to 2 shards, throttled too (tried again at
    # a later throttle)
    assert proxy.throttled - before == 2 * aws.MAX_ATTEMPTS
    assert _value(_client(proxy), "hot") == 1  # nothing applied
    assert api("GET", "/account/counters/hot/settings", key=key).body["shards"] == 1
    assert api(change[0], change[1].replace("hot", "cold"), key=key).status == 200


@pytest.mark.dynamodb_local_only("moto's consumed capacity follows none of DynamoDB's rules")
def test_a_write_of_a_large_item_costs_its_write_units(proxy) -> None:
    """A 2.5 KB item costs 3 write units a write, as DynamoDB Local reports: the minimum taken
    before, 2 more charged after, so a burst of 5 takes two such writes, not five."""
    client = _client(proxy)
    item = {**counter.key("acme", "big"), "blob": {"S": "x" * 2500}}
    client.put_item(TableName="CountersTable", Item=item)  # 5 - 3 = 2
    client.put_item(TableName="CountersTable", Item=item)  # 2 - 3 = -1: taken, now in debt
    with pytest.raises(ClientError) as refused:
        client.put_item(TableName="CountersTable", Item=item)
    assert refused.value.response["Error"]["Code"] == THROTTLE


@pytest.mark.parametrize("start", [1, 2])
def test_a_counter_throttled_past_its_retries_doubles_its_shards_and_counts_exactly(
    proxy, clock, monkeypatch, start
) -> None:
    from tally import shards

    api = Api()
    made = api("POST", "/admin/workspaces", key="local-admin-token", body={"workspace": "acme"})
    key = made.body["api_key"]
    if start > 1:
        body = {"shards": start}
        assert api("PUT", "/account/counters/hot/settings", key=key, body=body).status == 200
    assert api("POST", "/account/counters/hot/1", key=key).status == 200
    clock.at += 60
    items = [
        ("CountersTable", json.dumps(counter.key("acme", "hot", i), sort_keys=True))
        for i in range(start)
    ]
    assert proxy.buckets.take(dict.fromkeys(items, 5))  # both items' second used up
    run = shards.run

    def later(*args, **kwargs):  # the grow is tried after the retries' waits: units came back
        clock.at += 1
        return run(*args, **kwargs)

    monkeypatch.setattr(shards, "run", later)

    throttled = api("POST", "/account/counters/hot/1", key=key)

    assert throttled.status == 503  # that change was not made
    settings = api("GET", "/account/counters/hot/settings", key=key).body
    assert settings["shards"] == 2 * start  # but the counter now spreads over twice the items
    clock.at += 60
    assert proxy.buckets.take(
        dict.fromkeys(items, 5)
    )  # the old shards used up: the new take changes
    answers = [api("POST", "/account/counters/hot/1", key=key).status for _ in range(20)]
    assert set(answers) == {200, 503}  # each change meets one shard, picked by its operation id
    assert api("GET", "/v2/acme/hot", key=key).body["data"]["value"] == 1 + answers.count(200)
    assert (
        api("GET", "/account/counters/hot/settings", key=key).body["shards"] == 2 * start
    )  # once a 10 s


@pytest.mark.parametrize("grow, runs", [("on", 1), ("off", 0)])
def test_shards_grow_off_keeps_a_throttled_counter_at_the_n_its_owner_set(
    api, workspace, monkeypatch, grow, runs
) -> None:
    from tally import shards, warm_cache
    from tests.conftest import DynamoDBFaults

    _, key = workspace
    monkeypatch.setenv("TALLY_SHARDS_GROW", grow)
    warm_cache.reset_all()  # the configuration is read once per container
    tried, run = [], shards.run
    monkeypatch.setattr(shards, "run", lambda *a: tried.append(a[-1]) or run(*a))
    faults = DynamoDBFaults(
        monkeypatch,
        lambda op: (
            "refuse:ProvisionedThroughputExceededException:400" if op == "UpdateItem" else None
        ),
    )

    assert api("POST", "/account/counters/hot/1", key=key).status == 503
    faults.stop()

    assert [type(op).__name__ for op in tried] == ["Grow"] * runs
    assert api("GET", "/account/counters/hot/settings", key=key).body["shards"] == 1
