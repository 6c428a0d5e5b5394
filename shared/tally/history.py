"""Usage over time, kept off the change path: the counters table's stream is read by
CounterStreamFunction, which adds what each change did to its counter's hourly, daily and monthly
buckets in the history table (tally.items.history), one write per bucket per batch.

What a change did comes from the stream record's two images: up and down are usage (the totals'
growth), `value_change` the value's net change (a set or reset, and billing, move it too), and
`billed` the units a billing run took off. Settings changes move none of them and are skipped.

A sharded counter (tally.shards) has a record per shard item: a change on a shard is that
shard's growth, added to the counter's buckets; a global operation (a set, a settings change,
resharding, a change that crossed a level) is told once, by shard 0's summary, and the other
items it wrote (values moved between shards, rooms split again) are skipped. Each bucket keeps
the last record it took from each shard, since sequence numbers grow per item's stream shard.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import BotoCoreError, ClientError

from tally import aws
from tally.config import settings
from tally.errors import BadRequest
from tally.items import counter as stored_counter
from tally.items import history as stored
from tally.items.history import Sums


@dataclass(frozen=True)
class Change:
    workspace: str
    counter: str
    at_s: float  # when it happened, epoch seconds
    sums: Sums
    shard: int = 0  # the shard item whose record it is (tally.shards)


def derive(raw: dict[str, Any]) -> Change | None:
    """What one stream record of the counters table did, or None if it did nothing to count."""
    if raw.get("eventName") not in ("INSERT", "MODIFY"):
        return None  # counters are never deleted; a REMOVE has nothing to add
    images = raw["dynamodb"]
    old = stored_counter.item(images.get("OldImage"))
    new = stored_counter.item(images.get("NewImage"))
    workspace, counter, shard = stored_counter.identity(images["Keys"])
    if new.global_op is not None and new.global_op != old.global_op:
        if shard:
            return None  # told by shard 0's summary
        before, after, up, down = new.summary()
        billed = new.billed_units - old.billed_units  # a billing run's bill, on shard 0
        sums = Sums(up=up, down=down, value_change=after - before, billed=billed)
    else:
        sums = Sums(
            up=new.up_count - old.up_count,
            down=new.down_count - old.down_count,
            value_change=new.value - old.value,
            billed=new.billed_units - old.billed_units,
        )
    if not sums:
        return None
    at_s = stored_counter.changed_at_s(old, new, images["ApproximateCreationDateTime"])
    return Change(workspace, counter, at_s, sums, shard)


def absorb(changes: Iterable[tuple[Change, str, Any]], *, client: Any = None) -> list[tuple]:
    """Add a batch's changes ((change, its record's sequence number, the record)) to their
    buckets: one conditional UpdateItem per bucket. Returns (record, error) for every record
    whose bucket could not be written, so that the batch is retried from the first of them.
    Records a bucket took before are never added again (tally.items.history: `seq`)."""
    buckets: dict[tuple[str, str, str, int, int], list[tuple[str, Sums, Any]]] = {}
    for change, number, record in changes:
        for grain in ("h", "d", "m"):
            at = stored.bucket_start(change.at_s, grain)
            where = (change.workspace, change.counter, grain, at, change.shard)
            buckets.setdefault(where, []).append((stored.sequence(number), change.sums, record))
    client = client or aws.dynamodb()
    failed = []
    for (workspace, counter, grain, at, shard), records in buckets.items():
        try:
            _add(client, stored.key(workspace, counter, grain, at), grain, at, records, shard)
        except (ClientError, BotoCoreError) as err:  # unreachable, throttled, or applied with
            failed += [(record, err) for _, _, record in records]  # its answer lost: resent
    return failed


def _add(
    client: Any, key: dict, grain: str, at: int, records: list[tuple[str, Sums, Any]], shard: int
):
    records = sorted(records, key=lambda r: r[0])
    for _ in range(3):
        if not records:
            return  # every one taken before: a batch delivered again
        total = Sums()
        for _, sums, _ in records:
            total.add(sums)
        update = stored.absorb(total, records[0][0], records[-1][0], grain, at, shard)
        try:
            client.update_item(
                TableName=settings().history_table,
                Key=key,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **update.params(),
            )
            return
        except ClientError as err:
            if not aws.condition_failed(err):
                raise
            last = stored.last_taken(err.response.get("Item"), shard)
            records = [r for r in records if r[0] > last]  # the ones it has not taken
    raise RuntimeError("a history bucket kept moving under one consumer")  # one per shard


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
        # (compared as instants: two aware times of one zone compare by wall clock, so the
        # repeated hour of a DST change would look like the hour before it)
        out, at, end = [], self.start, self.end.timestamp()
        while at.timestamp() < end:
            if len(out) == MAX_POINTS:
                raise BadRequest(
                    f"at most {MAX_POINTS} points: narrow the range or group by a longer period",
                    fields={"from": f"at most {MAX_POINTS} {self.group_by}s before to"},
                )
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
    epochs = [int(s.timestamp()) for s in starts]
    totals = [Sums() for _ in starts]
    for page in pages:
        for raw in page["Items"]:
            at, sums = stored.decoded(raw)
            totals[_index(epochs, at)].add(sums)
    return [
        {
            "at": _iso(start),
            "up": sums.up,
            "down": sums.down,
            "value_change": sums.value_change,
            "billed": sums.billed,
        }
        for start, sums in zip(starts, totals, strict=True)
    ]


def _index(epochs: list[int], at: int) -> int:
    """The bucket a stored bucket starting at `at` belongs to (the last start at or before it)."""
    return max(0, bisect.bisect_right(epochs, at) - 1)


def _iso(moment: datetime) -> str:
    text = moment.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if moment.utcoffset() == timedelta(0) else text


# ------------------------------------------------------------------ a request's window

_DEFAULT_SPAN = {"hour": 24, "day": 30, "week": 12, "month": 12}  # buckets, ending now
KEPT = {"hour": timedelta(days=14), "day": timedelta(days=400)}  # older buckets are gone (TTL)


def window(query: dict[str, str], now: datetime) -> Window:
    """?group_by=hour|day|week|month (hour) &from= &to= (ISO 8601 dates or times, `to`
    exclusive; a time without an offset is in `tz`) &tz= (an IANA zone, UTC): every refusal a
    400 naming its field."""
    group_by = query.get("group_by") or "hour"
    if group_by not in GROUPS:
        raise BadRequest(
            "group_by must be hour, day, week or month", fields={"group_by": "|".join(GROUPS)}
        )
    tz = _zone(query.get("tz") or "UTC")
    end = _moment(query["to"], tz, "to") if query.get("to") else now
    end_floor = floor(end, group_by, tz)
    end = end_floor if end_floor == end.astimezone(tz) else _next(end_floor, group_by)
    hourly = group_by == "hour" or tz.key != "UTC"  # made of hourly buckets
    kept = KEPT["hour"] if hourly else KEPT.get("day" if group_by == "week" else group_by)
    if query.get("from"):
        start = floor(_moment(query["from"], tz, "from"), group_by, tz)
    else:  # the last few buckets, as many as are kept
        start = end
        for _ in range(_DEFAULT_SPAN[group_by]):
            start = floor(start - timedelta(seconds=1), group_by, tz)
        while kept is not None and start < now - kept:
            start = _next(start, group_by)
        if (
            start.timestamp() >= end.timestamp()
        ):  # not one whole bucket is kept (a month in another zone)
            raise _not_kept(hourly, group_by, kept)
    if start.timestamp() >= end.timestamp():
        raise BadRequest("from must be before to", fields={"from": "before to"})
    found = Window(group_by, tz, start, end)
    found.starts()  # at most MAX_POINTS of them, or a 400
    if kept is not None and start < now - kept:
        raise _not_kept(hourly, group_by, kept)
    if hourly and any(_offset_minutes(moment) % 60 for moment in (start, end)):
        raise BadRequest(
            f"history is kept in UTC hours; {tz.key} is not a whole number of hours from UTC",
            fields={"tz": "a zone a whole number of hours from UTC"},
        )
    return found


def _not_kept(hourly: bool, group_by: str, kept: timedelta) -> BadRequest:
    what = "hourly history" if hourly else "daily history"
    zone = " (a grouping in a zone other than UTC is made of hours)" if group_by != "hour" else ""
    return BadRequest(
        f"{what} is kept {kept.days} days{zone}: ask for a later from, or group in UTC",
        fields={"from": f"within {kept.days} days"},
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name) if len(name) <= 64 else ZoneInfo("")
    except (ValueError, KeyError, ZoneInfoNotFoundError, IsADirectoryError):
        raise BadRequest(
            "tz must be an IANA time zone such as Europe/Paris", fields={"tz": "an IANA time zone"}
        ) from None


def _moment(text: str, tz: ZoneInfo, field_name: str) -> datetime:
    try:
        if len(text) > 40:
            raise ValueError
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{field_name} must be an ISO 8601 date or time, e.g. 2026-11-23 or 2026-11-23T10:00:00Z",
            fields={field_name: "ISO 8601"},
        ) from None
    if not 1970 <= moment.year <= 2200:
        raise BadRequest(
            f"{field_name} must be between 1970 and 2200", fields={field_name: "1970-2200"}
        )
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)


def _offset_minutes(moment: datetime) -> int:
    offset = moment.utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


def csv(points: list[dict]) -> str:
    lines = ["at,up,down,value_change,billed"]
    lines += [f"{p['at']},{p['up']},{p['down']},{p['value_change']},{p['billed']}" for p in points]
    return "\n".join(lines) + "\n"


def answer(request: Any, workspace: str, name: str, now: datetime) -> tuple[str, Any]:
    """A history request's points, as ("json", data) or ("csv", text) by its Accept header."""
    found = window(request.query, now)
    data = {
        "name": name,
        "group_by": found.group_by,
        "tz": found.tz.key,
        "from": _iso(found.start),
        "to": _iso(found.end),
        "points": points(workspace, name, found),
    }
    if "text/csv" in request.headers.get("accept", ""):
        return "csv", csv(data["points"])
    return "json", data
