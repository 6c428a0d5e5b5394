"""Usage over time, kept off the change path: the counters table's stream is read by
CounterStreamFunction, which adds what each change did to its counter's hourly, daily and monthly
buckets in the history table (tally.items.history), one write per bucket per batch.

What a change did comes from the stream record's two images: up and down are usage (the totals'
growth), `value_change` the value's net change (a set or reset, and billing, move it too), and
`billed` the units a billing run took off. Settings changes and billing marks change none of them
and are skipped.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from tally import aws
from tally.config import settings
from tally.items import counter as stored_counter
from tally.items import history as stored
from tally.items.history import Sums


@dataclass(frozen=True)
class Change:
    workspace: str
    counter: str
    at_s: float  # when it happened, epoch seconds
    sums: Sums


def derive(raw: dict[str, Any]) -> Change | None:
    """What one stream record of the counters table did, or None if it did nothing to count."""
    if raw.get("eventName") not in ("INSERT", "MODIFY"):
        return None  # counters are never deleted; a REMOVE has nothing to add
    images = raw["dynamodb"]
    old = stored_counter.item(images.get("OldImage"))
    new = stored_counter.item(images.get("NewImage"))
    sums = Sums(
        up=new.up_count - old.up_count,
        down=new.down_count - old.down_count,
        value_change=new.value - old.value,
        billed=new.billed_units - old.billed_units,
    )
    if not sums:
        return None
    # A change or a set stamps its time on the counter; billing does not, and is placed when
    # the stream recorded it.
    if new.updated_ms != old.updated_ms:
        at_s = new.updated_ms / 1000
    else:
        at_s = float(images["ApproximateCreationDateTime"])
    workspace, counter = stored_counter.names(images["Keys"])
    return Change(workspace, counter, at_s, sums)


@dataclass
class _Bucket:
    sums: Sums = field(default_factory=Sums)
    last_sequence: str = ""
    sources: list[Any] = field(default_factory=list)


def absorb(changes: Iterable[tuple[Change, str, Any]], *, client: Any = None) -> list[tuple]:
    """Add a batch's changes ((change, its record's sequence number, the record)) to their
    buckets: one conditional UpdateItem per bucket. Returns (record, error) for every record
    whose bucket could not be written, so that the batch is retried from the first of them; a
    bucket that absorbed these records already is left as it is."""
    buckets: dict[tuple[str, str, str, int], _Bucket] = {}
    for change, sequence, record in changes:
        for grain in ("h", "d", "m"):
            at = stored.bucket_start(change.at_s, grain)
            bucket = buckets.setdefault((change.workspace, change.counter, grain, at), _Bucket())
            bucket.sums.add(change.sums)
            bucket.last_sequence = max(bucket.last_sequence, sequence, key=_sequence_order)
            bucket.sources.append(record)
    client = client or aws.dynamodb()
    failed = []
    for (workspace, counter, grain, at), bucket in buckets.items():
        update = stored.absorb(bucket.sums, bucket.last_sequence, grain, at)
        try:
            client.update_item(
                TableName=settings().history_table,
                Key=stored.key(workspace, counter, grain, at),
                **update.params(),
            )
        except ClientError as err:
            if aws.condition_failed(err):
                continue  # absorbed before: a batch delivered again
            failed += [(record, err) for record in bucket.sources]
    return failed


def _sequence_order(sequence: str) -> tuple[int, str]:
    return len(sequence), sequence  # decimal strings: the longer one is the larger


# ------------------------------------------------------------------ reading


GROUPS = ("hour", "day", "week", "month")
MAX_POINTS = 1000


@dataclass(frozen=True)
class Window:
    """The buckets a history request asks for: `group_by` in `tz`, from `start` (inclusive) to
    `end` (exclusive), both on bucket boundaries in that zone."""

    group_by: str
    tz: ZoneInfo
    start: datetime
    end: datetime

    def starts(self) -> list[datetime]:
        """Every bucket's start, in the zone (wall-clock steps: a DST day is 23 or 25 hours)."""
        out, at = [], self.start
        while at < self.end:
            out.append(at)
            at = _next(at, self.group_by)
        return out


def _next(at: datetime, group_by: str) -> datetime:
    if group_by == "hour":  # an hour is an hour of real time, across a DST change too
        return (at.astimezone(UTC) + timedelta(hours=1)).astimezone(at.tzinfo)
    if group_by == "day":
        return _wall(at.date() + timedelta(days=1), at.tzinfo)
    if group_by == "week":
        return _wall(at.date() + timedelta(days=7), at.tzinfo)
    month = at.month % 12 + 1
    return _wall(at.date().replace(year=at.year + (at.month == 12), month=month, day=1), at.tzinfo)


def _wall(day: Any, tz: Any) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def floor(moment: datetime, group_by: str, tz: ZoneInfo) -> datetime:
    """The start, in `tz`, of the bucket `moment` falls in (weeks start on Monday)."""
    local = moment.astimezone(tz)
    if group_by == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.date()
    if group_by == "week":
        day -= timedelta(days=day.weekday())
    elif group_by == "month":
        day = day.replace(day=1)
    return _wall(day, tz)


def points(workspace: str, counter: str, window: Window, *, client: Any = None) -> list[dict]:
    """Every bucket of the window, zeros included, from one Query in the common case: UTC days,
    weeks and months read daily (or monthly) buckets; hours, and days in another zone, hourly
    ones (kept 14 days)."""
    starts = window.starts()
    utc = window.tz.key == "UTC"
    grain = "h"
    if utc and window.group_by in ("day", "week"):
        grain = "d"
    elif utc and window.group_by == "month":
        grain = "m"
    begin = int(window.start.timestamp())
    query = stored.range_query(workspace, counter, grain, begin, int(window.end.timestamp()))
    pages = (
        (client or aws.dynamodb())
        .get_paginator("query")
        .paginate(TableName=settings().history_table, **query)
    )
    totals = {start: Sums() for start in starts}
    epochs = [int(s.timestamp()) for s in starts]
    for page in pages:
        for raw in page["Items"]:
            at, sums = stored.decoded(raw)
            totals[starts[_index(epochs, at)]].add(sums)
    return [
        {
            "at": _iso(start),
            "up": sums.up,
            "down": sums.down,
            "value_change": sums.value_change,
            "billed": sums.billed,
        }
        for start, sums in totals.items()
    ]


def _index(epochs: list[int], at: int) -> int:
    """The bucket a stored bucket starting at `at` belongs to (the last start at or before it)."""
    return max(0, bisect.bisect_right(epochs, at) - 1)


def _iso(moment: datetime) -> str:
    text = moment.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if moment.utcoffset() == timedelta(0) else text
