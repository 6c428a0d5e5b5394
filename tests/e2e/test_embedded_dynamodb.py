"""The embedded DynamoDB endpoint of `tally serve` applies every call atomically; plain moto
does not. Both run here side by side so the test shows the lock is what makes the difference."""

from __future__ import annotations

import threading
import time

import boto3
import pytest
from moto.dynamodb.models.dynamo_type import DynamoType

from tally_local import dynamodb
from tests.conftest import TEMPLATE

pytestmark = pytest.mark.moto_only("tests of tally serve's embedded endpoint: moto's server")
THREADS, CALLS = 16, 25


@pytest.fixture
def wide_race_window(monkeypatch):
    """Sleep inside moto's ADD, between reading the number and writing the sum, so that racing
    calls overlap every time instead of once in thousands."""
    add = DynamoType.__add__

    def slow_add(self, other):
        time.sleep(0.002)
        return add(self, other)

    monkeypatch.setattr(DynamoType, "__add__", slow_add)


def _race(endpoint: str) -> int:
    client = dynamodb.client(endpoint)
    dynamodb.ensure_tables(client, TEMPLATE)
    key = {"workspace": {"S": "race"}, "counter": {"S": "c"}}

    def add_many():
        for _ in range(CALLS):
            client.update_item(
                TableName="CountersTable",
                Key=key,
                UpdateExpression="ADD v :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    threads = [threading.Thread(target=add_many) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    item = client.get_item(TableName="CountersTable", Key=key, ConsistentRead=True)["Item"]
    return int(item["v"]["N"])


@pytest.mark.parametrize("atomic", [False, True], ids=["plain-moto", "embedded-endpoint"])
def test_concurrent_adds_are_all_kept_only_by_the_embedded_endpoint(wide_race_window, atomic):
    # In this process, where the race window is widened (tally serve runs it in its own).
    server = dynamodb.EmbeddedDynamoDB(port=0, atomic=atomic, own_process=False).start()
    try:
        kept = _race(server.endpoint)
    finally:
        server.stop()

    if atomic:
        assert kept == THREADS * CALLS
    else:  # plain moto loses increments: the reason the embedded endpoint holds a lock
        assert kept < THREADS * CALLS


def test_ensure_tables_creates_only_what_is_missing():
    server = dynamodb.EmbeddedDynamoDB(port=0).start()
    try:
        client = dynamodb.client(server.endpoint)
        first = dynamodb.ensure_tables(client, TEMPLATE)
        second = dynamodb.ensure_tables(client, TEMPLATE)
        tables = set(client.list_tables()["TableNames"])
    finally:
        server.stop()

    assert set(first) == set(TEMPLATE.tables()) == tables
    assert second == []


def test_the_embedded_endpoint_runs_in_a_process_of_its_own_and_ends_with_stop():
    """Out of the handlers' GIL: its own process, which stop() (or the parent's end) ends."""
    import os

    server = dynamodb.EmbeddedDynamoDB(port=0).start()
    try:
        child = server._process
        assert child is not None and child.pid != os.getpid() and child.poll() is None
        client = dynamodb.client(server.endpoint)
        dynamodb.ensure_tables(client, TEMPLATE)
        assert "CountersTable" in client.list_tables()["TableNames"]
    finally:
        server.stop()
    assert child.wait(timeout=5) is not None


# ------------------------------------------------------------------ --state (tally_local.moto_state)


def _stream_numbers(client) -> list[int]:
    from tally_local.streams import read_all

    streams = dynamodb.client(client.meta.endpoint_url, "dynamodbstreams")
    return [
        int(r["dynamodb"]["SequenceNumber"]) for r in read_all(client, streams, "CountersTable")
    ]


def _change(client, counter: str) -> None:
    client.update_item(
        TableName="CountersTable",
        Key={"workspace": {"S": "w"}, "counter": {"S": counter}},
        UpdateExpression="ADD v :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


def test_a_saved_state_loads_whole_and_its_stream_numbers_on_from_the_saved_records(tmp_path):
    """What a restart needs: the items, and the stream's records (a change not yet delivered is
    delivered after it), new records numbered after them (history skips by number)."""
    path = tmp_path / "state.json"
    first = dynamodb.EmbeddedDynamoDB(port=0, state=path).start()
    try:
        client = dynamodb.client(first.endpoint)
        _change(client, "a")
        _change(client, "a")
        _change(client, "b")
        numbers = _stream_numbers(client)
    finally:
        first.stop()  # SIGTERM: the last save

    second = dynamodb.EmbeddedDynamoDB(port=0, state=path).start()
    try:
        client = dynamodb.client(second.endpoint)
        items = client.scan(TableName="CountersTable")["Items"]
        assert {(i["counter"]["S"], i["v"]["N"]) for i in items} == {("a", "2"), ("b", "1")}
        assert _stream_numbers(client) == numbers  # the records kept, as they were
        _change(client, "b")
        assert _stream_numbers(client) == [*numbers, numbers[-1] + 1]
    finally:
        second.stop()


def test_a_save_keeps_the_last_24_hours_of_stream_records():
    """DynamoDB keeps a stream's records for 24 hours; so does a save, and the first it keeps
    keeps its number."""
    from moto import mock_aws

    from tally_local import moto_state

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.ensure_tables(client, TEMPLATE)
        for counter in ("a", "b", "c"):
            _change(client, counter)
        now = time.time()
        saved = {t["name"]: t for t in moto_state.snapshot(now=now)["tables"]}["CountersTable"]
        later = {t["name"]: t for t in moto_state.snapshot(now=now + 86_400 + 60)["tables"]}

    records = saved["stream"]["records"]  # (moto records an update that makes an item twice)
    assert {r["dynamodb"]["Keys"]["counter"]["S"] for r in records} == {"a", "b", "c"}
    assert later["CountersTable"]["stream"] == {
        "first_sequence_number": saved["stream"]["first_sequence_number"] + len(records),
        "records": [],
    }
    assert len(later["CountersTable"]["items"]) == 3  # items are kept whatever their age


def test_a_stream_read_before_a_cancelled_transaction_goes_on_after_it():
    """moto puts copies of the tables back to cancel a transaction; the embedded endpoint keeps
    each table's stream, so an iterator taken before still reads what comes after, and the
    cancelled transaction's writes leave no record."""
    server = dynamodb.EmbeddedDynamoDB(port=0, own_process=False).start()
    try:
        client = dynamodb.client(server.endpoint)
        streams = dynamodb.client(server.endpoint, "dynamodbstreams")
        dynamodb.ensure_tables(client, TEMPLATE)
        add = {"UpdateExpression": "ADD v :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}

        def key(name: str) -> dict:
            return {"workspace": {"S": "w"}, "counter": {"S": name}}

        client.update_item(TableName="CountersTable", Key=key("after"), **add)  # made before
        arn = client.describe_table(TableName="CountersTable")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]

        with pytest.raises(client.exceptions.TransactionCanceledException):
            client.transact_write_items(  # the first write is made, the second cancels both
                TransactItems=[
                    {"Update": {"TableName": "CountersTable", "Key": key("undone"), **add}},
                    {
                        "Update": {
                            "TableName": "CountersTable",
                            "Key": key("refused"),
                            "ConditionExpression": "attribute_exists(v)",
                            **add,
                        }
                    },
                ]
            )
        client.update_item(TableName="CountersTable", Key=key("after"), **add)

        got = streams.get_records(ShardIterator=iterator)["Records"]
        assert [r["dynamodb"]["Keys"]["counter"]["S"] for r in got] == ["after"]
    finally:
        server.stop()
