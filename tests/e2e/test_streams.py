"""DynamoDB stream events in `tally serve` (tally_local.streams): the counters table's stream
runs CounterStreamFunction as Lambda would, so a change shows up in the history table within a
second or two; and the poller, with a fake handler, retries, splits and discards as Lambda does."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError

from tally_local import dynamodb
from tally_local.demo import DEMO_KEY
from tally_local.streams import (
    StreamPoller,
    WireRecords,
    lambda_record,
    stream_client,
    wire_record,
)
from tally_local.template import StreamSource
from tests.conftest import ROOT, TEMPLATE
from tests.serve import TALLY, Server

pytestmark = pytest.mark.e2e
SOON_S = 5.0  # a change reaches its history bucket well within this (1-2 s measured)


# ------------------------------------------------------------------ the poller, a fake handler


@pytest.fixture(scope="module")
def endpoint(dynamodb_backend):
    """An endpoint with DynamoDB Streams: tally serve's embedded moto (its own process), or the
    run's DynamoDB Local (where each test makes a table of its own, beside the template's)."""
    if dynamodb_backend.endpoint:
        yield dynamodb_backend.endpoint
        return
    embedded = dynamodb.EmbeddedDynamoDB(port=0).start()
    yield embedded.endpoint
    embedded.stop()


@pytest.fixture
def stream_table(endpoint):
    """A table with a NEW_AND_OLD_IMAGES stream; `write(n)` puts items 0..n-1 in order."""
    client = dynamodb.client(endpoint)
    name = f"PollerTest-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )

    def write(n: int) -> None:
        for i in range(n):
            item = {"k": {"S": f"item-{i}"}, "i": {"N": str(i)}, "b": {"B": bytes([i, 255])}}
            client.put_item(TableName=name, Item=item)

    write.table = name  # type: ignore[attr-defined]
    write.client = client  # type: ignore[attr-defined]
    yield write
    client.delete_table(TableName=name)


class FakeHandler:
    """Records each batch it is given (as the items' numbers) and answers as `script` says:
    script(call number from 1, the batch's numbers) -> None (success), "raise", or the numbers
    to report in batchItemFailures."""

    def __init__(self, script) -> None:
        self.script, self.batches, self.events = script, [], []
        self.changed = threading.Condition()

    def __call__(self, event):
        numbers = [int(r["dynamodb"]["NewImage"]["i"]["N"]) for r in event["Records"]]
        with self.changed:
            self.batches.append(numbers)
            self.events.append(event)
            self.changed.notify_all()
        verdict = self.script(len(self.batches), numbers)
        if verdict == "raise":
            raise RuntimeError(f"batch {len(self.batches)} failed")
        if verdict:
            by_number = {
                n: r["dynamodb"]["SequenceNumber"]
                for n, r in zip(numbers, event["Records"], strict=True)
            }
            return {"batchItemFailures": [{"itemIdentifier": by_number[n]} for n in verdict]}
        return {"batchItemFailures": []}

    def wait_for(self, done, timeout: float = 20.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: done(self.batches), timeout), self.batches


def _poll(stream_table, handler, log, **source) -> StreamPoller:
    settings = {
        "batch_size": 10,
        "window_s": 0.5,  # (the records are there already: full batches, at once)
        "retries": 10,
        "starting_position": "TRIM_HORIZON",
        "report_item_failures": True,
        "on_failure": "TestFailures",
        **source,
    }
    poller = StreamPoller(
        "FakeFunction",
        StreamSource(table=stream_table.table, **settings),
        stream_table.client.meta.endpoint_url,
        handler,
        log=log,
        poll_s=0.05,
        retry_delay_s=0,
    )
    return poller.start()


def _settled(poller, handler, expected_batches: int) -> None:
    """Wait for the expected number of batches, then a little longer: no more may come."""
    try:
        handler.wait_for(lambda batches: len(batches) >= expected_batches)
        time.sleep(0.5)
    finally:
        poller.stop()


def test_a_batch_is_retried_from_its_lowest_reported_failure_and_whole_after_an_exception(
    stream_table,
):
    stream_table(10)

    def script(call, numbers):
        return {1: [7, 3], 2: "raise"}.get(call)  # then every batch succeeds

    handler, log = FakeHandler(script), io.StringIO()
    poller = _poll(stream_table, handler, log)
    _settled(poller, handler, 3)

    # 0-2 done by the partial answer; 3 on (7 too) retried; after the exception, the same batch.
    assert handler.batches == [list(range(10)), list(range(3, 10)), list(range(3, 10))]
    lines = log.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert "batchItemFailures from" in lines[0] and "retry 1/10 of 7" in lines[0]
    assert "failed: RuntimeError('batch 2 failed')" in lines[1] and "retry 2/10 of 7" in lines[1]
    assert " ok " in lines[2]


def test_records_arrive_in_the_shape_lambda_delivers_them(stream_table):
    stream_table(3)
    handler, log = FakeHandler(lambda call, numbers: None), io.StringIO()
    poller = _poll(stream_table, handler, log)
    _settled(poller, handler, 1)

    arn = stream_table.client.describe_table(TableName=stream_table.table)["Table"][
        "LatestStreamArn"
    ]
    (event,) = handler.events
    json.dumps(event)  # plain JSON, as Lambda's event is
    sequences = []
    for number, record in enumerate(event["Records"]):
        assert set(record) >= {
            "eventID",
            "eventName",
            "eventVersion",
            "eventSource",
            "awsRegion",
            "dynamodb",
            "eventSourceARN",
        }
        assert (record["eventName"], record["eventSource"]) == ("INSERT", "aws:dynamodb")
        assert record["eventSourceARN"] == arn
        images = record["dynamodb"]
        assert isinstance(images["ApproximateCreationDateTime"], int)
        assert abs(images["ApproximateCreationDateTime"] - time.time()) < 120
        assert images["Keys"] == {"k": {"S": f"item-{number}"}}
        assert images["NewImage"]["b"] == {"B": base64.b64encode(bytes([number, 255])).decode()}
        assert images["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(images["SizeBytes"], int)
        sequences.append(int(images["SequenceNumber"]))
    assert sequences == sorted(sequences)


@pytest.mark.parametrize(
    "bisect, retries, batches, discarded",
    [
        # Lambda's documented example: the failing record alone ends up discarded.
        (
            True,
            1,
            [[0, 1, 2, 3, 4, 5], [2, 3, 4, 5], [2, 3], [2], [2], [3], [4, 5]],
            [2],
        ),
        # Without splitting, the rest of the batch is retried (that counts), and discarded.
        (False, 1, [[0, 1, 2, 3, 4, 5], [2, 3, 4, 5]], [2, 3, 4, 5]),
    ],
    ids=["bisect", "no-bisect"],
)
def test_a_record_that_always_fails_is_isolated_by_bisection_and_discarded_after_the_retries(
    stream_table, bisect, retries, batches, discarded
):
    stream_table(6)

    def script(call, numbers):
        return [2] if 2 in numbers else None

    handler, log = FakeHandler(script), io.StringIO()
    poller = _poll(stream_table, handler, log, batch_size=6, bisect=bisect, retries=retries)
    _settled(poller, handler, len(batches))

    assert handler.batches == batches
    (line,) = [line for line in log.getvalue().splitlines() if "discarded to" in line]
    info = json.loads(line.split("(this line, locally): ", 1)[1])
    assert line.startswith("stream FakeFunction discarded to TestFailures")
    assert info["condition"] == "RetryAttemptsExhausted"
    assert info["approximateInvokeCount"] == retries + 1
    batch = info["DDBStreamBatchInfo"]
    assert batch["batchSize"] == len(discarded)
    assert batch["startSequenceNumber"] <= batch["endSequenceNumber"]


def test_an_exception_splits_the_batch_in_halves_down_to_the_failing_record(stream_table):
    stream_table(8)

    def script(call, numbers):
        return "raise" if 5 in numbers else None

    handler, log = FakeHandler(script), io.StringIO()
    poller = _poll(stream_table, handler, log, batch_size=8, bisect=True, retries=2)
    _settled(poller, handler, 9)

    assert handler.batches == [
        [0, 1, 2, 3, 4, 5, 6, 7],  # fails: split into 4 + 4 (no retry counted)
        [0, 1, 2, 3],
        [4, 5, 6, 7],  # fails: 2 + 2
        [4, 5],  # fails: 1 + 1
        [4],
        [5],  # fails: retried twice, then discarded
        [5],
        [5],
        [6, 7],
    ]
    assert "split into 4 + 4" in log.getvalue()
    assert log.getvalue().count("discarded to TestFailures") == 1


def test_latest_skips_what_the_stream_held_when_the_poller_started(stream_table):
    stream_table(3)
    handler, log = FakeHandler(lambda call, numbers: None), io.StringIO()
    poller = _poll(stream_table, handler, log, starting_position="LATEST")
    try:
        time.sleep(1.0)  # it has listed the shards and taken their ends
        stream_table.client.put_item(
            TableName=stream_table.table,
            Item={"k": {"S": "later"}, "i": {"N": "99"}, "b": {"B": b"x"}},
        )
        handler.wait_for(lambda batches: batches)
        time.sleep(0.3)
    finally:
        poller.stop()
    assert handler.batches == [[99]]


def test_records_read_as_json_are_those_boto3_reads_in_the_shape_lambda_delivers(stream_table):
    """The pollers read GetRecords as JSON (WireRecords): the records must be exactly what boto3's
    records become (lambda_record), binary attributes and times included."""
    stream_table(3)
    stream_table.client.update_item(
        TableName=stream_table.table,
        Key={"k": {"S": "item-1"}},
        UpdateExpression="SET bs = :bs, m = :m ADD ns :ns",
        ExpressionAttributeValues={
            ":bs": {"BS": [b"\x00", b"\xff"]},
            ":m": {"M": {"l": {"L": [{"B": b"\x01"}, {"NULL": True}, {"BOOL": False}]}}},
            ":ns": {"NS": ["1", "2.5"]},
        },
    )
    ddb, streams = stream_table.client, stream_client(stream_table.client.meta.endpoint_url)
    arn = ddb.describe_table(TableName=stream_table.table)["Table"]["LatestStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]

    def iterator() -> str:
        return streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]

    parsed = streams.get_records(ShardIterator=iterator())["Records"]
    wire = WireRecords(ddb.meta.endpoint_url).get_records(ShardIterator=iterator())["Records"]

    expected = [lambda_record(raw, arn) for raw in parsed]
    assert [wire_record(raw, arn) for raw in wire] == expected
    assert len(expected) == 4  # three puts and the update
    assert sorted(expected[3]["dynamodb"]["NewImage"]["bs"]["BS"]) == ["/w==", "AA=="]  # base64
    assert isinstance(expected[0]["dynamodb"]["ApproximateCreationDateTime"], int)


@pytest.mark.dynamodb_local_only("moto answers an unknown iterator with a 500 and a traceback")
def test_a_refused_read_as_json_raises_the_error_boto3_raises(stream_table):
    endpoint = stream_table.client.meta.endpoint_url
    with pytest.raises(ClientError) as by_boto3:
        stream_client(endpoint).get_records(ShardIterator="not-an-iterator")
    with pytest.raises(ClientError) as as_json:
        WireRecords(endpoint).get_records(ShardIterator="not-an-iterator")
    assert as_json.value.response["Error"] == by_boto3.value.response["Error"]


@pytest.mark.moto_only("tally serve's embedded endpoint is moto's server")
def test_the_embedded_endpoint_serves_dynamodb_streams():
    server = dynamodb.EmbeddedDynamoDB(port=0).start()
    try:
        ddb, streams = dynamodb.client(server.endpoint), stream_client(server.endpoint)
        dynamodb.ensure_tables(ddb, TEMPLATE)
        table = ddb.describe_table(TableName="CountersTable")["Table"]
        key = {"workspace": {"S": "w"}, "counter": {"S": "c"}}
        ddb.put_item(TableName="CountersTable", Item={**key, "v": {"N": "1"}})
        ddb.update_item(
            TableName="CountersTable",
            Key=key,
            UpdateExpression="ADD v :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        arn = table["LatestStreamArn"]
        (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator)["Records"]
    finally:
        server.stop()

    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY"]
    assert records[1]["dynamodb"]["OldImage"]["v"] == {"N": "1"}
    assert records[1]["dynamodb"]["NewImage"]["v"] == {"N": "2"}


@pytest.mark.moto_only("tally serve's embedded endpoint is moto's server")
def test_the_embedded_endpoint_answers_get_records_as_motos_own_app_does():
    """It answers GetRecords from moto's records itself (tally_local.dynamodb._get_records), not
    through moto's response serializer: the same JSON, binary attributes and times included."""
    from moto.moto_server.werkzeug_app import create_backend_app
    from werkzeug.test import Client, EnvironBuilder

    server = dynamodb.EmbeddedDynamoDB(port=0, own_process=False).start()  # its state is here
    try:
        ddb, streams = dynamodb.client(server.endpoint), stream_client(server.endpoint)
        dynamodb.ensure_tables(ddb, TEMPLATE)
        key = {"workspace": {"S": "w"}, "counter": {"S": "c"}}
        ddb.put_item(TableName="CountersTable", Item={**key, "v": {"N": "1"}, "b": {"B": b"\0"}})
        ddb.update_item(
            TableName="CountersTable",
            Key=key,
            UpdateExpression="ADD v :one SET m = :m",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":m": {"M": {"bs": {"BS": [b"\1", b"\2"]}, "l": {"L": [{"NULL": True}]}}},
            },
        )
        arn = ddb.describe_table(TableName="CountersTable")["Table"]["LatestStreamArn"]
        (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        request = {
            "data": json.dumps({"ShardIterator": iterator, "Limit": 10}),
            "headers": {
                "X-Amz-Target": "DynamoDBStreams_20120810.GetRecords",
                "Content-Type": "application/x-amz-json-1.0",
            },
        }
        ours = dynamodb._get_records(EnvironBuilder(method="POST", **request).get_environ())
        motos = Client(create_backend_app("dynamodbstreams")).post("/", **request).get_data()
        unknown = {**request, "data": json.dumps({"ShardIterator": "not-an-iterator"})}
        left_to_moto = dynamodb._get_records(EnvironBuilder(method="POST", **unknown).get_environ())
    finally:
        server.stop()
    assert ours is not None and json.loads(ours)["Records"] == json.loads(motos)["Records"]
    assert len(json.loads(ours)["Records"]) == 2
    assert left_to_moto is None  # moto's app answers what it does not know


@pytest.mark.moto_only("tally serve's embedded endpoint is moto's server")
def test_the_embedded_endpoint_keeps_only_the_newest_shard_iterators(monkeypatch):
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    monkeypatch.setattr(dynamodb, "KEPT_ITERATORS", 5)
    server = dynamodb.EmbeddedDynamoDB(port=0, own_process=False).start()  # its state is here
    try:
        ddb, streams = dynamodb.client(server.endpoint), stream_client(server.endpoint)
        dynamodb.ensure_tables(ddb, TEMPLATE)
        arn = ddb.describe_table(TableName="CountersTable")["Table"]["LatestStreamArn"]
        (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]
        for _ in range(20):  # a poller: each read gives the iterator of the next
            iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]
        ddb.put_item(
            TableName="CountersTable", Item={"workspace": {"S": "w"}, "counter": {"S": "c"}}
        )
        records = streams.get_records(ShardIterator=iterator)["Records"]
        kept = [
            len(b.shard_iterators) for a in dynamodbstreams_backends.values() for b in a.values()
        ]
    finally:
        server.stop()
    assert [r["eventName"] for r in records] == ["INSERT"]
    assert kept == [5]


def test_the_template_gives_the_counters_table_its_stream_on_either_backend():
    assert TEMPLATE.tables()["CountersTable"]["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert "StreamSpecification" not in TEMPLATE.tables()["HistoryTable"]
    (source,) = TEMPLATE.functions["CounterStreamFunction"].streams
    assert (source.table, source.on_failure) == ("CountersTable", "CounterStreamFailures")


# ------------------------------------------------------------------ through tally serve


@pytest.fixture(scope="module")
def server(tmp_path_factory, dynamodb_backend):
    running = Server(
        tmp_path_factory.mktemp("serve"), schedule_interval=None, endpoint=dynamodb_backend.endpoint
    )
    yield running
    running.stop()


def _history(server, series: str) -> dict[int, dict]:
    """The history table's buckets of a series: start -> its numbers."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=server.ddb_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    items = client.query(
        TableName="HistoryTable",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "series"},
        ExpressionAttributeValues={":s": {"S": series}},
        ConsistentRead=True,
    )["Items"]
    return {
        int(item["at"]["N"]): {
            name: int(item[name]["N"]) for name in ("up", "down", "vc", "billed") if name in item
        }
        for item in items
    }


def _total(server, series: str, name: str) -> int:
    return sum(bucket.get(name, 0) for bucket in _history(server, series).values())


def test_tally_serve_names_the_stream_it_runs(server):
    assert "streams: CounterStreamFunction <- CountersTable (TRIM_HORIZON" in server.log()


def _counted(server, counter: str, name: str, expected: int) -> bool:
    return all(_total(server, f"demo/{counter}/{g}", name) == expected for g in "hdm")


def test_a_change_through_the_api_reaches_its_history_buckets_within_seconds(server):
    # The demo's own making (its first up) comes first, read from TRIM_HORIZON.
    deadline = time.monotonic() + SOON_S
    while not _counted(server, "visits", "up", 1):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    latencies = []
    for _ in range(3):
        status, body = server.call("/v2/demo/visits/up", key=DEMO_KEY)
        changed = time.monotonic()
        assert status == 200, body
        while not _counted(server, "visits", "up", body["data"]["up_count"]):
            assert time.monotonic() - changed < SOON_S, server.log()
            time.sleep(0.02)
        latencies.append(time.monotonic() - changed)
    print(f"change -> history buckets: {', '.join(f'{s:.2f}s' for s in latencies)}")
    hour = max(_history(server, "demo/visits/h"))
    assert hour <= time.time() < hour + 3600
    assert "stream CounterStreamFunction 1 records" in server.log()


def test_changes_from_8_threads_are_each_counted_once(server):
    plan = ["up"] * 150 + ["down"] * 50

    def call(direction: str) -> int:
        return server.call(f"/v2/demo/crowd/{direction}", key=DEMO_KEY)[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(call, plan))
    assert statuses == [200] * len(plan)
    data = server.call("/v2/demo/crowd", key=DEMO_KEY)[1]["data"]
    assert (data["up_count"], data["down_count"]) == (150, 50)

    deadline = time.monotonic() + SOON_S
    while _total(server, "demo/crowd/h", "up") < 150 or _total(server, "demo/crowd/h", "down") < 50:
        assert time.monotonic() < deadline, _history(server, "demo/crowd/h")
        time.sleep(0.05)
    time.sleep(1.5)  # a redelivery, had there been one, would have landed by now
    for grain in "hdm":
        series = f"demo/crowd/{grain}"
        assert _total(server, series, "up") == data["up_count"], series
        assert _total(server, series, "down") == data["down_count"], series
        assert _total(server, series, "vc") == data["value"], series
    deliveries = [line for line in server.log().splitlines() if line.startswith("stream ")]
    assert deliveries and all(" ok " in line for line in deliveries), deliveries


def test_a_history_write_that_fails_is_retried_until_it_lands_and_counted_once(server):
    client = dynamodb.client(server.ddb_endpoint)
    client.delete_table(TableName="HistoryTable")  # every bucket write now fails
    try:
        status, body = server.call("/v2/demo/outage/up", key=DEMO_KEY)
        assert status == 200, body
        deadline = time.monotonic() + SOON_S
        while "batchItemFailures from" not in server.log().split("/outage/up", 1)[1]:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
    finally:
        dynamodb.ensure_tables(client, TEMPLATE)  # back: the next retry lands
    deadline = time.monotonic() + 3 * SOON_S  # (retries wait 0.1 s, doubling up to 2 s)
    while not _counted(server, "outage", "up", 1):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    retried = server.log().split("/outage/up", 1)[1]
    assert "retry 1/10 of 1 " in retried and "discarded" not in retried


@pytest.mark.moto_only("tally invoke against an embedded endpoint of its own")
def test_tally_invoke_runs_the_stream_function_on_its_sample_event():
    """The sample's records are a counter of their own (`stream-sample`), so invoking it beside
    a running tally serve never touches real counters' history."""
    embedded = dynamodb.EmbeddedDynamoDB(port=0).start()
    try:
        done = subprocess.run(
            [
                *(TALLY, "invoke", "CounterStreamFunction", "-e", "events/counter_stream.json"),
                *("--dynamodb-port", str(embedded.port)),
            ],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"batchItemFailures": []}
        client = dynamodb.client(embedded.endpoint)
        items = client.scan(TableName="HistoryTable")["Items"]
    finally:
        embedded.stop()
    buckets = {item["series"]["S"]: int(item["up"]["N"]) for item in items}
    assert buckets == {f"demo/stream-sample/{grain}": 2 for grain in "hdm"}


@pytest.mark.dynamodb_local_only("a DynamoDB that outlives tally serve: an endpoint of its own")
def test_tally_serve_started_again_on_the_same_tables_counts_every_change_once(tmp_path):
    """Each start reads the stream from TRIM_HORIZON again: the records the last run delivered
    come again and are taken at most once, and a change made while no tally serve ran is kept."""
    from tally_local.dynamodb_local import DynamoDBLocal
    from tests.serve import free_port, started

    class Ran:  # what _history and _counted read of a server
        def __init__(self, endpoint: str) -> None:
            self.ddb_endpoint = endpoint

    with DynamoDBLocal() as endpoint:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env.update(AWS_ENDPOINT_URL_DYNAMODB=endpoint, TALLY_ADMIN_TOKEN="x")

        def serve_and_up(times: int, log_name: str) -> None:
            port = free_port()
            log = tmp_path / log_name
            process = started(["--port", str(port)], env, log)
            try:
                for _ in range(times):
                    url = f"http://127.0.0.1:{port}/v2/demo/visits/up"
                    request = urllib.request.Request(
                        url, headers={"Authorization": f"Bearer {DEMO_KEY}"}
                    )
                    urllib.request.urlopen(request, timeout=10).read()
                up_count = 1 + times + serve_and_up.before
                deadline = time.monotonic() + 20
                while not _counted(Ran(endpoint), "visits", "up", up_count):
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.1)
                serve_and_up.before += times
            finally:
                process.terminate()
                process.wait(timeout=20)

        serve_and_up.before = 0
        serve_and_up(3, "first.log")
        done = subprocess.run(  # a change while no tally serve runs
            [TALLY, "invoke", "V2UpFunction", "-e", "events/v2_up.json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        serve_and_up.before += 1
        serve_and_up(2, "second.log")  # 1 (the demo's) + 3 + 1 + 2, each once
        assert _total(Ran(endpoint), "demo/visits/h", "up") == 7
