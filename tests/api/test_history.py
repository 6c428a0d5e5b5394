"""History through the real stream: changes made through the API are read back from the counters
table's stream (moto's or DynamoDB Local's) and handed to CounterStreamFunction as Lambda would,
including the ways Lambda redelivers; every bucket must come out exact."""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from tally import aws, clock
from tally_local.gateway import LambdaContext
from tally_local.streams import read_all
from tests.conftest import ADMIN_TOKEN, TEMPLATE, DynamoDBFaults

STREAM = TEMPLATE.functions["CounterStreamFunction"]
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)


def stream_records(ddb) -> list[dict]:
    """Every record of the counters table's stream, in order, shaped as Lambda delivers them."""
    # moto answers on the classic endpoint only (botocore now picks an account-based one)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    streams = boto3.client(
        "dynamodbstreams",
        region_name="us-east-1",
        endpoint_url=endpoint or "https://streams.dynamodb.us-east-1.amazonaws.com",
    )
    return read_all(ddb, streams, "CountersTable")


def deliver(records: list[dict], *, rng: random.Random, batch: int = 7) -> int:
    """Hand the records to the consumer as Lambda does at least once: batches of up to `batch`,
    a failed batch resent from its first failed record, and sometimes a batch (or a part of it)
    resent although it succeeded. Returns the number of invocations."""
    handler, position, calls = STREAM.load(), 0, 0
    while position < len(records):
        size = rng.randint(1, batch)
        sent = records[position : position + size]
        try:
            answer = handler({"Records": sent}, LambdaContext(STREAM))
        except Exception:  # the function failed: Lambda sends the same batch again
            answer = {
                "batchItemFailures": [{"itemIdentifier": sent[0]["dynamodb"]["SequenceNumber"]}]
            }
        calls += 1
        failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
        if failed:
            sequences = [r["dynamodb"]["SequenceNumber"] for r in sent]
            position += min(sequences.index(s) for s in failed)
            continue
        if rng.random() < 0.3:  # delivered again: the whole batch, or the start of it
            handler({"Records": sent[: rng.randint(1, len(sent))]}, LambdaContext(STREAM))
            calls += 1
        position += size
    return calls


def changes(api, workspace, rng: random.Random, count: int) -> dict:
    """`count` changes (ups, downs and sets) spread over 30 hours, through the API. Returns the
    ups and downs per UTC hour, as the counter itself saw them."""
    ws, key = workspace
    now = [START]
    truth: dict[datetime, list[int]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: now[0])
        for _ in range(count):
            now[0] += timedelta(seconds=rng.randint(1, 30 * 3600 // count))
            kind = rng.choice(["up", "up", "up", "down", "set"])
            path = f"/v2/{ws}/c/{kind}" + ("?value=5" if kind == "set" else "")
            assert api("GET", path, key=key).status == 200
            if kind != "set":
                hour = truth.setdefault(now[0].replace(minute=0, second=0, microsecond=0), [0, 0])
                hour[kind == "down"] += 1
    return truth


@pytest.fixture(params=[11, 23, 37])
def fed(request, ddb, api, workspace, monkeypatch):
    """60 changes through the API, their stream records delivered at least once, with lost
    answers and throttles on the history writes: three random runs."""
    rng = random.Random(request.param)
    truth = changes(api, workspace, rng, 60)
    records = stream_records(ddb)
    assert len(records) >= 60
    faults = DynamoDBFaults(
        monkeypatch,
        lambda op: (
            None
            if op != "UpdateItem" or rng.random() > 0.15
            else rng.choice(["lost", "refuse:ProvisionedThroughputExceededException:400"])
        ),
    )
    calls = deliver(records, rng=rng)
    faults.stop()
    return truth, records, calls


def _hours(ddb) -> dict[datetime, list[int]]:
    found = ddb.query(
        TableName="HistoryTable",
        KeyConditionExpression="series = :s",
        ExpressionAttributeValues={":s": {"S": "acme/c/h"}},
        ConsistentRead=True,
    )["Items"]
    return {
        datetime.fromtimestamp(int(i["at"]["N"]), UTC): [int(i["up"]["N"]), int(i["down"]["N"])]
        for i in found
        if int(i["up"]["N"]) or int(i["down"]["N"])
    }


def test_every_hour_is_exact_under_redelivery_lost_answers_and_throttles(fed, ddb, api, workspace):
    truth, records, calls = fed
    assert calls > len(records) / 7  # (resends happened: the fixture's faults and replays)
    assert _hours(ddb) == truth
    counter = api("GET", "/v2/acme/c", key=workspace[1]).body["data"]
    assert sum(up for up, _ in truth.values()) == counter["up_count"]
    assert sum(down for _, down in truth.values()) == counter["down_count"]


def test_the_history_routes_answer_those_hours(fed, api, workspace):
    truth, _, _ = fed
    _, key = workspace
    span = f"from={START.isoformat()}&to={(START + timedelta(hours=31)).isoformat()}"
    span = span.replace("+00:00", "Z")
    v2 = api("GET", f"/v2/acme/c/history?{span}", key=key)
    assert v2.status == 200, v2.body
    points = v2.body["data"]["points"]
    assert len(points) == 31 and v2.body["data"]["group_by"] == "hour"
    for point in points:
        at = datetime.fromisoformat(point["at"].replace("Z", "+00:00"))
        assert [point["up"], point["down"]] == truth.get(at, [0, 0]), point["at"]

    backstack = api(
        "GET", f"/account/counters/c/history?{span}&group_by=day&tz=Europe/Paris", key=key
    )
    assert backstack.status == 200, backstack.body
    days = backstack.body["points"]
    assert sum(p["up"] for p in days) == sum(up for up, _ in truth.values())
    assert all(p["at"].endswith(("+01:00", "+02:00")) for p in days)

    csv = api("GET", f"/v2/acme/c/history?{span}", key=key, headers={"Accept": "text/csv"})
    assert csv.headers["Content-Type"].startswith("text/csv")
    rows = csv.body.splitlines()
    assert rows[0] == "at,up,down,value_change,billed" and len(rows) == 32


def test_anyone_reads_a_public_counters_history_and_no_private_one(api, workspace):
    ws, key = workspace
    api("GET", f"/v2/{ws}/open/up", key=key)
    api("PUT", "/account/counters/open/settings", key=key, body={"visibility": "public"})
    assert api("GET", f"/v2/{ws}/open/history").status == 200
    api("GET", f"/v2/{ws}/shut/up", key=key)
    assert api("GET", f"/v2/{ws}/shut/history").status == 401
    reader = api("POST", "/account/api-keys", key=key, body={"scopes": ["read"]}).body["api_key"]
    assert api("GET", f"/v2/{ws}/shut/history", key=reader).status == 200
    other = api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "other"})
    stranger = other.body["api_key"]
    assert api("GET", f"/v2/{ws}/shut/history", key=stranger).status == 404  # says nothing more
    assert api("GET", f"/v2/{ws}/open/history", key=stranger).status == 200
    assert api("GET", "/account/counters/shut/history", key=stranger).body["points"][-1]["up"] == 0


def test_a_hostile_window_is_a_quick_400(api, workspace):
    ws, key = workspace
    for query in (
        "group_by=hour&from=1970-01-01&to=2200-01-01",  # two million hours
        "tz=" + "A" * 5000,
        "from=" + "9" * 5000,
        "tz=../../../etc/localtime",
        "group_by=month&tz=Asia/Kathmandu",  # 5:45 from UTC
    ):
        started = time.perf_counter()
        answer = api("GET", f"/v2/{ws}/c/history?{query}", key=key)
        assert answer.status == 400 and answer.body["fields"], (query, answer.body)
        assert time.perf_counter() - started < 0.5, query


def test_a_write_that_fails_mid_batch_reports_its_records_and_the_rest_is_kept(
    ddb, api, workspace, monkeypatch
):
    """Three counters in one batch; the second one's bucket writes fail: its records are reported
    (Lambda resumes from the first of them), the others' buckets are written."""
    ws, key = workspace
    for name in ("a", "b", "c"):
        api("GET", f"/v2/{ws}/{name}/up", key=key)
    records = stream_records(ddb)
    client = aws.dynamodb()
    update_item = client.update_item

    def failing_for_b(**params):
        if params["Key"]["series"]["S"].startswith(f"{ws}/b/"):
            raise ClientError({"Error": {"Code": "InternalServerError"}}, "UpdateItem")
        return update_item(**params)

    monkeypatch.setattr(client, "update_item", failing_for_b)
    answer = STREAM.load()({"Records": records}, LambdaContext(STREAM))
    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    counter_of = {
        r["dynamodb"]["SequenceNumber"]: r["dynamodb"]["Keys"]["counter"]["S"] for r in records
    }
    assert failed and {counter_of[s] for s in failed} == {"b"}
    written = ddb.scan(TableName="HistoryTable")["Items"]
    assert sorted({i["series"]["S"].split("/")[1] for i in written}) == ["a", "c"]


def test_cost_a_history_read_with_a_key_is_one_query_beside_its_rate_limit(api, workspace):
    from tests.conftest import record_calls

    ws, key = workspace
    api("GET", f"/v2/{ws}/c/history?group_by=day", key=key)  # warm: key and workspace cached
    calls = record_calls(tables=True)
    assert api("GET", f"/v2/{ws}/c/history?group_by=day", key=key).status == 200
    assert api("GET", "/account/counters/c/history?group_by=month", key=key).status == 200
    assert calls.pop() == [
        ("UpdateItem", "RateLimitsTable"),
        ("Query", "HistoryTable"),
        ("UpdateItem", "RateLimitsTable"),
        ("UpdateItem", "RateLimitsTable"),  # a new path for this key: its new-paths token
        ("Query", "HistoryTable"),
    ]


def test_days_in_a_zone_follow_its_clock_across_a_dst_change(api, workspace, monkeypatch):
    """Paris falls back on 2026-10-25: that day is 25 hours, and a change at 23:30 local (22:30
    UTC) is still on it."""
    from tally import history
    from tally.items.history import Sums

    ws, key = workspace
    times = ["2026-10-24T22:30:00Z", "2026-10-25T22:30:00Z", "2026-10-25T23:30:00Z"]
    for number, at in enumerate(times, start=1):
        moment = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        change = history.Change(ws, "c", moment, Sums(up=1, value_change=1))
        assert history.absorb([(change, str(number), None)]) == []
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 10, 27, tzinfo=UTC))
    query = "group_by=day&tz=Europe/Paris&from=2026-10-25&to=2026-10-27"
    days = api("GET", f"/v2/{ws}/c/history?{query}", key=key).body["data"]["points"]
    assert [(p["at"], p["up"]) for p in days] == [
        ("2026-10-25T00:00:00+02:00", 2),
        ("2026-10-26T00:00:00+01:00", 1),
    ]
    hourly = query.replace("group_by=day", "group_by=hour")
    hours = api("GET", f"/v2/{ws}/c/history?{hourly}", key=key).body["data"]
    assert len(hours["points"]) == 25 + 24
