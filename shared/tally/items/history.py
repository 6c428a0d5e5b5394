"""The history table's item: what one counter did in one hour, day or month (UTC).

  series   "<workspace>/<counter>/<grain>", grain h (hour), d (day) or m (month): the key
  at       the bucket's start, epoch seconds (the sort key)
  up / down  usage in the bucket (never billing)     vc  the value's net change (billing too)
  billed   units billing took off the value           seq  the last stream record absorbed
  seq<i>   the same, of a sharded counter's shard i >= 1 (tally.shards): each shard item's records
           come in order on a stream shard of their own
  expires  epoch seconds, DynamoDB's TTL: hours are kept 14 days, days 400, months for good

`seq` makes a bucket exact under at-least-once delivery: a counter's stream records arrive in
order with growing sequence numbers, so a bucket takes a sum of records only if the first of them
is past the last record it took. A resent batch can mix records taken and new ones: refused, the
writer sees `seq` (ALL_OLD) and sends again the sum of the records past it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tally.items.expression import Attr, Update, decode

GRAINS = {"h": 3600, "d": 86400}  # and "m": calendar months
KEEP_S = {"h": 14 * 86400, "d": 400 * 86400}  # after the bucket ends; months are kept
SEQ = Attr("seq")
_SEQ_WIDTH = 40  # stream sequence numbers are decimal strings of up to 40 digits


def series(workspace: str, counter: str, grain: str) -> str:
    return f"{workspace}/{counter}/{grain}"  # neither name may hold a "/"


def bucket_start(epoch_s: float, grain: str) -> int:
    if grain == "m":
        moment = datetime.fromtimestamp(epoch_s, UTC)
        return calendar.timegm((moment.year, moment.month, 1, 0, 0, 0))
    size = GRAINS[grain]
    return int(epoch_s // size) * size


def key(workspace: str, counter: str, grain: str, at: int) -> dict[str, Any]:
    return {"series": {"S": series(workspace, counter, grain)}, "at": {"N": str(at)}}


@dataclass
class Sums:
    up: int = 0
    down: int = 0
    value_change: int = 0
    billed: int = 0

    def add(self, other: Sums) -> None:
        self.up += other.up
        self.down += other.down
        self.value_change += other.value_change
        self.billed += other.billed

    def __bool__(self) -> bool:
        return any((self.up, self.down, self.value_change, self.billed))


def sequence(number: str) -> str:
    """A stream sequence number as the bucket keeps it: compared as text, in number order."""
    return number.zfill(_SEQ_WIDTH)


def _seq(shard: int) -> Attr:
    return SEQ if shard == 0 else Attr(f"{SEQ.name}{shard}")


def absorb(sums: Sums, first: str, last: str, grain: str, at: int, shard: int = 0) -> Update:
    """Add the sums of records `first`..`last` (sequence numbers, of one shard item) to a
    bucket, only if it has taken none of them (its last record of that item is before `first`)."""
    seq, taken = sequence(last), _seq(shard)
    update = Update()
    for name, amount in (
        ("up", sums.up),
        ("down", sums.down),
        ("vc", sums.value_change),
        ("billed", sums.billed),
    ):
        update.add(Attr(name), amount)
    update.set(f"{taken.ref} = :seq", seq=seq)
    if grain in KEEP_S:
        end = at + GRAINS[grain]  # hours and days: the grains that expire
        update.set("#expires = :expires", expires=end + KEEP_S[grain])
    return update.require(taken.missing() | (taken < sequence(first)))


def last_taken(raw: dict[str, Any] | None, shard: int = 0) -> str:
    """The sequence number of the last record a bucket took of a shard item ("" if none)."""
    return decode((raw or {}).get(_seq(shard).name)) or ""


def range_query(workspace: str, counter: str, grain: str, start: int, end: int) -> dict:
    """The Query of one series' buckets with start <= at < end, oldest first."""
    return {
        "KeyConditionExpression": "#series = :series AND #at BETWEEN :start AND :last",
        "ExpressionAttributeNames": {"#series": "series", "#at": "at"},
        "ExpressionAttributeValues": {
            ":series": {"S": series(workspace, counter, grain)},
            ":start": {"N": str(start)},
            ":last": {"N": str(end - 1)},
        },
        "ConsistentRead": True,
    }


def decoded(raw: dict[str, Any]) -> tuple[int, Sums]:
    """(the bucket's start, its sums)."""
    fields = {name: decode(cell) for name, cell in raw.items()}
    sums = Sums(
        fields.get("up") or 0,
        fields.get("down") or 0,
        fields.get("vc") or 0,
        fields.get("billed") or 0,
    )
    return fields["at"], sums
