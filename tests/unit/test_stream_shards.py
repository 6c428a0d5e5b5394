"""`tally serve`'s stream poller across shards (tally_local.streams), on a fake DynamoDB Streams
API: neither moto nor DynamoDB Local ever closes a shard or splits one, DynamoDB does."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from tally_local.streams import StreamPoller, Streams
from tally_local.template import StreamSource
from tests.conftest import TEMPLATE

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2026-01-01T00:00:00.000"


def _record(number: int) -> dict:
    return {
        "eventID": f"e{number}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 1, 1, tzinfo=UTC),
            "Keys": {"k": {"S": str(number)}},
            "NewImage": {"k": {"S": str(number)}},
            "SequenceNumber": f"{number:021d}",
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


class FakeStreams:
    """A stream whose shards are listed over two pages, children before their parents; a
    closed shard's last GetRecords has no NextShardIterator. `expire` makes the iterators given
    out so far expire once (GetRecords refuses the next one)."""

    def __init__(self, shards: dict[str, tuple[str | None, bool, list[int]]]) -> None:
        self.shards = shards  # id -> (parent, closed, the records' numbers)
        self.expire_next = False

    def describe_table(self, TableName):
        return {"Table": {"TableName": TableName, "LatestStreamArn": ARN}}

    def describe_stream(self, StreamArn, ExclusiveStartShardId=None):
        listed = [
            {
                "ShardId": sid,
                **({"ParentShardId": parent} if parent else {}),
                "SequenceNumberRange": {
                    "StartingSequenceNumber": f"{numbers[0]:021d}",
                    **({"EndingSequenceNumber": f"{numbers[-1]:021d}"} if closed else {}),
                },
            }
            for sid, (parent, closed, numbers) in self.shards.items()
        ]
        if ExclusiveStartShardId is None:
            return {"StreamDescription": {"Shards": listed[:1], "LastEvaluatedShardId": "x"}}
        return {"StreamDescription": {"Shards": listed[1:]}}

    def get_shard_iterator(self, StreamArn, ShardId, ShardIteratorType, SequenceNumber=None):
        numbers = self.shards[ShardId][2]
        if ShardIteratorType == "TRIM_HORIZON":
            at = 0
        elif ShardIteratorType == "AFTER_SEQUENCE_NUMBER":
            at = numbers.index(int(SequenceNumber)) + 1
        else:  # LATEST
            at = len(numbers)
        return {"ShardIterator": f"{ShardId}|{at}|fresh"}

    def get_records(self, ShardIterator, Limit):
        sid, at, _ = ShardIterator.split("|")
        if self.expire_next:
            self.expire_next = False
            error = {"Error": {"Code": "ExpiredIteratorException", "Message": "expired"}}
            raise ClientError(error, "GetRecords")
        _, closed, numbers = self.shards[sid]
        start = int(at)
        taken = numbers[start : start + min(Limit, 2)]  # two at a time: several reads a batch
        end = start + len(taken)
        done = closed and end == len(numbers)
        return {
            "Records": [_record(n) for n in taken],
            **({} if done else {"NextShardIterator": f"{sid}|{end}|next"}),
        }


def _run(fake: FakeStreams, expected: int, **source) -> tuple[list[list[int]], str]:
    seen: list[list[int]] = []
    enough = threading.Event()

    def handler(event):
        seen.append([int(r["dynamodb"]["Keys"]["k"]["S"]) for r in event["Records"]])
        if len(seen) == 1:
            fake.expire_next = True  # mid-stream: a new iterator must pick up after the batch
        if sum(map(len, seen)) >= expected:
            enough.set()

    settings = {"batch_size": 4, "starting_position": "TRIM_HORIZON", **source}
    log = io.StringIO()
    poller = StreamPoller("Fn", StreamSource(table="T", **settings), "unused", handler, log=log)
    poller.ddb = poller.streams = fake
    poller.poll_s = 0.01
    poller.start()
    try:
        assert enough.wait(10), seen
    finally:
        poller.stop()
    return seen, log.getvalue()


def test_a_parent_shard_is_read_to_its_end_before_its_children():
    fake = FakeStreams(
        {
            "shardId-1-child": ("shardId-9-parent", False, [7, 8, 9]),
            "shardId-9-parent": (None, True, [1, 2, 3, 4, 5, 6]),
        }
    )

    seen, log = _run(fake, expected=9)

    delivered = [n for batch in seen for n in batch]
    assert delivered == [1, 2, 3, 4, 5, 6, 7, 8, 9], seen  # none twice, none lost
    assert all(len(batch) <= 4 for batch in seen)
    assert "cannot read" not in log  # an expired iterator is replaced, quietly


def test_latest_starts_at_the_open_shards_ends_and_skips_closed_ones():
    fake = FakeStreams(
        {
            "shardId-1-old": (None, True, [1, 2]),
            "shardId-2-open": ("shardId-1-old", False, [3, 4]),
        }
    )
    seen: list = []
    poller = StreamPoller(
        "Fn",
        StreamSource(table="T", starting_position="LATEST"),
        "unused",
        seen.append,
        log=io.StringIO(),
    )
    poller.ddb = poller.streams = fake

    poller.cycle()
    fake.shards["shardId-2-open"][2].append(5)  # written after the poller started
    for _ in range(3):
        poller.cycle()

    assert [[r["dynamodb"]["Keys"]["k"]["S"] for r in e["Records"]] for e in seen] == [["5"]]


def test_serve_starts_at_the_templates_position_and_says_so():
    """Each time it starts, also on a table that was there before: history takes again-delivered
    records at most once (tests/api/test_history.py), and nothing made meanwhile is skipped."""
    (poller,) = Streams([TEMPLATE.functions["CounterStreamFunction"]], "unused").pollers
    assert poller.starting_position == "TRIM_HORIZON"
    assert "(TRIM_HORIZON, batch 1000, 5s (capped to 1s locally))" in poller.describe()
