"""Counters. Every change is one atomic DynamoDB UpdateItem: ADD to the value, the up/down
totals and the stats buckets, with the bounds checked in the same write.

Item attributes (short names keep a busy counter under 1 KB, i.e. one write unit a change):
  v            value                       uc / dc      up / down totals over the counter's life
  ru / rd      room to the upper / lower bound (hi - v, v - lo). Condition expressions cannot do
               arithmetic, so the bound check `v + d <= hi` is kept as `ru >= d` on stored room.
  hi / lo      bounds, absent = signed 64-bit  vis / desc   visibility (absent: the workspace's), description
  ca / ua      created / updated, epoch ms   lop  the last change's operation id (see _send)
  dy, dyu, dyd  UTC day (yyyymmdd) and its up/down; wk, wku, wkd  ISO week (yyyyww) and its up/down
  bt, ba, bd   billing threshold, amount, description   bu  units billed over its life
  due          present while the counter is at or above its billing threshold (see billing.py)
  all-time buckets (UTC), two-byte names (bucket_attr): hour of day x<h>/y<h> (h in 0-9a-n),
               weekday p<d>/q<d> (0=Monday), quarter r<n>/s<n> (1-4); first letter up, second down
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
)

from tally import aws, clock, operation
from tally.config import settings
from tally.errors import Conflict, OutcomeUnknown, TallyError, Unavailable
from tally.names import INT64_MAX, INT64_MIN
from tally.telemetry import count, logger

DUE = "due"  # the mark of a counter at or above its billing threshold (a sparse index's key)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ROLLOVER_TRIES = 4


@dataclass(frozen=True)
class Moment:
    """The stats buckets one instant falls into (UTC)."""

    epoch_ms: int
    day: int
    week: int
    hour: int
    weekday: int
    quarter: int

    @classmethod
    def of(cls, now: datetime) -> Moment:
        now = now.astimezone(UTC)
        iso = now.isocalendar()
        return cls(
            epoch_ms=int(now.timestamp() * 1000),
            day=now.year * 10000 + now.month * 100 + now.day,
            week=iso.year * 100 + iso.week,
            hour=now.hour,
            weekday=now.weekday(),
            quarter=(now.month - 1) // 3 + 1,
        )


@dataclass(frozen=True)
class Counter:
    workspace: str
    name: str
    item: dict[str, Any]
    default_visibility: str = "private"  # its workspace's, for a counter with none of its own

    def _n(self, attr: str) -> int:
        cell = self.item.get(attr)
        return int(cell["N"]) if cell else 0

    @property
    def value(self) -> int:
        return self._n("v")

    @property
    def up_count(self) -> int:
        return self._n("uc")

    @property
    def down_count(self) -> int:
        return self._n("dc")

    @property
    def visibility(self) -> str:
        """ "public" or "private": its own, else its workspace's default."""
        return self.item.get("vis", {}).get("S", self.default_visibility)

    @property
    def billed(self) -> bool:
        return "bt" in self.item

    @property
    def open_to_anyone(self) -> bool:
        """Whether a caller without a key of the workspace may change it: public, and never a
        counter with a billing setting (anyone could run up the account's invoice)."""
        return self.visibility == "public" and not self.billed

    @property
    def description(self) -> str:
        return self.item.get("desc", {}).get("S", "")

    @property
    def created_at(self) -> str:
        return _iso(self._n("ca"))

    @property
    def updated_at(self) -> str:
        return _iso(self._n("ua") or self._n("ca"))  # set up, never changed: its creation

    def stats(self, now: datetime) -> dict[str, Any]:
        at = Moment.of(now)
        today = self._n("dy") == at.day
        this_week = self._n("wk") == at.week

        def pair(prefix: str, live: bool = True) -> dict[str, int]:
            if not live:
                return {"up": 0, "down": 0}
            return {"up": self._n(prefix + "u"), "down": self._n(prefix + "d")}

        def bucket(kind: str, slot: int) -> dict[str, int]:
            return {side: self._n(bucket_attr(kind, slot, side)) for side in ("up", "down")}

        return {
            "today": pair("dy", today),
            "this_week": pair("wk", this_week),
            "temporal": {
                "hours": {f"{h:02d}": bucket("hour", h) for h in range(24)},
                "weekdays": {name: bucket("weekday", i) for i, name in enumerate(WEEKDAYS)},
                "quarters": {f"q{q}": bucket("quarter", q) for q in range(1, 5)},
            },
        }


_SLOTS = "0123456789abcdefghijklmn"  # hour 0-23 in one character
_LETTERS = {"hour": ("x", "y"), "weekday": ("p", "q"), "quarter": ("r", "s")}


def bucket_attr(kind: str, slot: int, side: str) -> str:
    """The item attribute of an all-time stats bucket: two bytes, since a busy counter carries
    70 of them and every change rewrites the item (one write unit up to 1 KB)."""
    up, down = _LETTERS[kind]
    return (up if side == "up" else down) + _SLOTS[slot]


def get(
    workspace: str, name: str, *, default_visibility: str = "private", client: Any = None
) -> Counter | None:
    """The counter as it is now (strongly consistent), or None if it was never created."""
    item = (
        (client or aws.dynamodb())
        .get_item(
            TableName=settings().counters_table, Key=key(workspace, name), ConsistentRead=True
        )
        .get("Item")
    )
    return Counter(workspace, name, item, default_visibility) if item else None


def change(
    workspace: str,
    name: str,
    delta: int,
    *,
    refuse_private: TallyError | None = None,
    default_visibility: str = "private",
    now: datetime | None = None,
    client: Any = None,
) -> Counter:
    """Add `delta` (signed) in one UpdateItem. Refused as a whole, changing nothing, when the result
    would leave the counter's bounds (409) or, with `refuse_private` (a caller without a key of
    the workspace), when it is not open to anyone: not public (its own visibility, else
    `default_visibility`, its workspace's), or billed.
    The running operation (tally.operation) is stamped on the item: the same operation is never
    applied twice in a row."""
    if abs(delta) > INT64_MAX:  # a total could never hold it (only -2**63 gets here)
        raise Conflict(
            f"{delta} is beyond what a counter's totals can hold", fields={"value": "too large"}
        )
    client = client or aws.dynamodb()
    op = operation.current()
    at = Moment.of(now or clock.now())
    # The first change of a UTC day (or ISO week) resets that bucket: a different expression.
    # Guess "same day"; a failed guess returns the old item (no extra read) and we retry once.
    rollover = "same_day"
    for _ in range(_ROLLOVER_TRIES):
        anyone = default_visibility if refuse_private is not None else None
        update = _change_update(delta, at, rollover, open_to=anyone)
        _stamp(update, op, at.epoch_ms)
        try:
            answer = _send(client, workspace, name, update, op, at.epoch_ms)
        except ClientError as err:
            if not aws.condition_failed(err):
                raise
            old = err.response.get("Item")
            # An earlier attempt of this very operation went through.
            if _applied(old, op, at.epoch_ms):
                return Counter(workspace, name, old, default_visibility)
            _raise_refusal(old, delta, refuse_private, default_visibility)
            rollover = _rollover_for(old, at)
            continue
        mark_if_due(workspace, name, answer["Attributes"], client=client)
        count("CounterChanges")
        return Counter(workspace, name, answer["Attributes"], default_visibility)
    raise Unavailable("the counter is changing too fast to record; retry", retry_after=1)


def mark_if_due(workspace: str, name: str, item: dict[str, Any], *, client: Any = None) -> None:
    """Given a counter as a write left it: mark it due if it reached its billing threshold and
    is not marked yet. The only extra write on the change path, once per crossing. The change
    has happened whatever this does: if marking fails, the counter's next change marks it."""
    if "bt" not in item or "due" in item:
        return
    if int(item.get("v", {}).get("N", "0")) < int(item["bt"]["N"]):
        return
    try:
        (client or aws.dynamodb()).update_item(
            TableName=settings().counters_table,
            Key=key(workspace, name),
            UpdateExpression="SET #due = :due",
            ConditionExpression="attribute_not_exists(#due) AND #v >= #bt",
            ExpressionAttributeNames={"#due": "due", "#v": "v", "#bt": "bt"},
            ExpressionAttributeValues={":due": {"S": DUE}},
        )
    except ClientError as err:
        if not aws.condition_failed(err):
            _log_unmarked(workspace, name, err)
        # the condition failing means marked already, or billed meanwhile: fine
    except BotoCoreError as err:
        _log_unmarked(workspace, name, err)


def _log_unmarked(workspace: str, name: str, err: Exception) -> None:
    logger.warning(
        "could not mark a counter due for billing; its next change will",
        extra={"workspace": workspace, "counter": name, "error": repr(err)},
    )


def values(workspace: str, *, client: Any = None) -> dict[str, int]:
    """Every counter of a workspace and its value: one strongly consistent Query, paged."""
    pages = (
        (client or aws.dynamodb())
        .get_paginator("query")
        .paginate(
            TableName=settings().counters_table,
            KeyConditionExpression="#ws = :ws",
            ProjectionExpression="#c, #v",
            ExpressionAttributeNames={"#ws": "workspace", "#c": "counter", "#v": "v"},
            ExpressionAttributeValues={":ws": {"S": workspace}},
            ConsistentRead=True,
        )
    )
    return {
        item["counter"]["S"]: int(item["v"]["N"]) if "v" in item else 0
        for page in pages
        for item in page["Items"]
    }


def set_value(
    workspace: str,
    name: str,
    value: int,
    *,
    default_visibility: str = "private",
    now: datetime | None = None,
    client: Any = None,
) -> Counter:
    """Set the value outright (reset is value 0). Counts in neither up nor down."""
    client = client or aws.dynamodb()
    op = operation.current()
    at = Moment.of(now or clock.now())
    update = Update()
    update.set("#v = :n", n=value)
    update.set("#ru = if_not_exists(#hi, :max) - :n", max=INT64_MAX)
    update.set("#rd = :n - if_not_exists(#lo, :min)", min=INT64_MIN)
    update.set("#ua = :now", now=at.epoch_ms)
    update.set("#ca = if_not_exists(#ca, :now)")
    update.require("(attribute_not_exists(#hi) OR #hi >= :n)")
    update.require("(attribute_not_exists(#lo) OR #lo <= :n)")
    _stamp(update, op, at.epoch_ms)
    try:
        answer = _send(client, workspace, name, update, op, at.epoch_ms)
    except ClientError as err:
        if not aws.condition_failed(err):
            raise
        if _applied(err.response.get("Item"), op, at.epoch_ms):
            return Counter(workspace, name, err.response["Item"], default_visibility)
        raise Conflict(
            f"{value} is outside the counter's bounds", fields={"value": "outside bounds"}
        ) from err
    mark_if_due(workspace, name, answer["Attributes"], client=client)
    count("CounterChanges")
    return Counter(workspace, name, answer["Attributes"], default_visibility)


# ------------------------------------------------------------------ sending a change


def _stamp(update: Update, op: str, now_ms: int) -> None:
    """Every change records its operation id; the same operation cannot apply twice in a row.
    A stamp older than an operation id lives (`ua`, the last change's time, is the stamp's) was
    another request reusing an expired Idempotency-Key: that one is applied."""
    update.set("#lop = :op", op=op)
    update.require(
        "(attribute_not_exists(#lop) OR #lop <> :op OR #ua < :stale)",
        stale=now_ms - operation.REPEAT_WINDOW_MS,
    )


def _applied(old: dict[str, Any] | None, op: str, now_ms: int) -> bool:
    """Whether `old` is the counter as this very operation left it."""
    return (
        bool(old)
        and old.get("lop", {}).get("S") == op
        and int(old.get("ua", {}).get("N", "0")) >= now_ms - operation.REPEAT_WINDOW_MS
    )


def _send(
    client: Any, workspace: str, name: str, update: Update, op: str, now_ms: int
) -> dict[str, Any]:
    """Send a change (not idempotent: an ADD) without ever applying it twice.

    tally.aws retries it only when DynamoDB refused it (a throttle) or it never left. Any other
    failure (a read timeout, a dropped or cut-off answer, a 5xx) may have been applied: a
    consistent read tells. If the counter's last operation is this one, it was applied; if not,
    it is reported (OutcomeUnknown, a 503) and not sent again, since that could count it twice."""
    try:
        answer = client.update_item(
            TableName=settings().counters_table,
            Key=key(workspace, name),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **update.params(),
        )
    except ClientError as err:
        if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
            return _resolve(client, workspace, name, op, now_ms, err)
        raise
    except aws.NOT_SENT:
        raise
    except BotoCoreError as err:
        return _resolve(client, workspace, name, op, now_ms, err)
    if "Attributes" not in answer:  # a cut-off answer (see tally.aws: checksums)
        lost = ValueError("answer without Attributes")
        return _resolve(client, workspace, name, op, now_ms, lost)
    return answer


def _resolve(
    client: Any, workspace: str, name: str, op: str, now_ms: int, err: Exception
) -> dict[str, Any]:
    try:  # one consistent read (tally.aws retries it), within the function's time
        item = client.get_item(
            TableName=settings().counters_table, Key=key(workspace, name), ConsistentRead=True
        ).get("Item")
    except (ClientError, BotoCoreError):
        item = None
    else:
        if _applied(item, op, now_ms):
            return {"Attributes": item}
    logger.warning(
        "a change's answer was lost and could not be confirmed: answered 503 OutcomeUnknown",
        extra={"operation": op, "counter": name, "workspace": workspace, "error": repr(err)},
    )
    count("OutcomeUnknown")
    raise OutcomeUnknown() from err


# ------------------------------------------------------------------ expression building


class Update:
    """An UpdateItem expression built from named pieces; `#x` names and `:x` values are
    collected as they are used (DynamoDB rejects unused ones)."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.adds: list[str] = []
        self.removes: list[str] = []
        self.conditions: list[str] = []
        self.values: dict[str, int | str] = {}

    def set(self, clause: str, **values: int | str) -> None:
        self.sets.append(clause)
        self.values.update(values)

    def add(self, attr: str, value: int) -> None:
        placeholder = f"a{len(self.adds)}"
        self.adds.append(f"#{attr} :{placeholder}")
        self.values[placeholder] = value

    def remove(self, *names: str) -> None:
        self.removes.extend(names)

    def require(self, condition: str, **values: int | str) -> None:
        self.conditions.append(condition)
        self.values.update(values)

    def params(self) -> dict[str, Any]:
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(self.sets) if self.sets else "",
                "ADD " + ", ".join(self.adds) if self.adds else "",
                "REMOVE " + ", ".join(self.removes) if self.removes else "",
            )
            if part
        )
        condition = " AND ".join(self.conditions)
        text = expression + " " + condition
        params: dict[str, Any] = {
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {f"#{n}": n for n in set(_NAME.findall(text))},
            "ExpressionAttributeValues": {
                f":{k}": {"S": v} if isinstance(v, str) else {"N": str(v)}
                for k, v in self.values.items()
            },
        }
        if condition:
            params["ConditionExpression"] = condition
        return params


_NAME = re.compile(r"#(\w+)")


def _change_update(delta: int, at: Moment, rollover: str, *, open_to: str | None) -> Update:
    """The change's expression; with `open_to` (the workspace's default visibility) only a
    counter open to anyone may take it."""
    update = Update()
    update.add("v", delta)
    update.set("#ru = if_not_exists(#ru, :ru0) - :d", ru0=INT64_MAX, d=delta)
    update.set("#rd = if_not_exists(#rd, :rd0) + :d", rd0=-INT64_MIN)
    update.set("#ua = :now", now=at.epoch_ms)
    update.set("#ca = if_not_exists(#ca, :now)")
    if open_to == "public":  # a counter with no visibility of its own follows the workspace
        update.require("(attribute_not_exists(#vis) OR #vis = :public)", public="public")
    elif open_to is not None:
        update.require("#vis = :public", public="public")
    if open_to is not None:
        update.require("attribute_not_exists(#bt)")
    if delta == 0:
        return update
    # One direction per change: an up touches only the *u buckets, a down only the *d ones.
    amount, side, total = (delta, "u", "uc") if delta > 0 else (-delta, "d", "dc")
    room = "ru" if delta > 0 else "rd"
    update.require(f"(attribute_not_exists(#{room}) OR #{room} >= :amount)", amount=amount)
    update.require(
        f"(attribute_not_exists(#{total}) OR #{total} <= :total_max)", total_max=INT64_MAX - amount
    )
    direction = "up" if delta > 0 else "down"
    for attr in (
        total,
        bucket_attr("hour", at.hour, direction),
        bucket_attr("weekday", at.weekday, direction),
        bucket_attr("quarter", at.quarter, direction),
    ):
        update.add(attr, amount)
    other = "d" if side == "u" else "u"
    if rollover == "same_day":
        update.require("#dy >= :day", day=at.day)
        update.add(f"dy{side}", amount)
        update.add(f"wk{side}", amount)
    else:
        update.set(f"#dy = :day, #dy{side} = :amount, #dy{other} = :zero", day=at.day, zero=0)
        if rollover == "new_day":
            update.require(
                "(attribute_not_exists(#dy) OR #dy < :day) AND #wk >= :week", week=at.week
            )
            update.add(f"wk{side}", amount)
        else:
            update.require("(attribute_not_exists(#wk) OR #wk < :week)", week=at.week)
            update.set(f"#wk = :week, #wk{side} = :amount, #wk{other} = :zero")
    return update


def _rollover_for(old: dict[str, Any] | None, at: Moment) -> str:
    if old and "dy" in old and int(old["dy"]["N"]) >= at.day:
        return "same_day"
    if old and "wk" in old and int(old["wk"]["N"]) >= at.week:
        return "new_day"
    return "new_week"


def _raise_refusal(
    old: dict[str, Any] | None,
    delta: int,
    refuse_private: TallyError | None,
    default_visibility: str,
):
    """Why a conditional change failed, judged on the item as it was (ALL_OLD): raise the refusal,
    or return when only the day/week guess was wrong."""
    if (
        refuse_private is not None
        and not Counter("", "", old or {}, default_visibility).open_to_anyone
    ):
        raise refuse_private
    if old is None or delta == 0:
        return

    def n(attr: str) -> int | None:
        return int(old[attr]["N"]) if attr in old else None

    room, bound = ("ru", "hi") if delta > 0 else ("rd", "lo")
    if room in old and n(room) < abs(delta):
        count("BoundRefusals")
        limit = n(bound)
        what = f"adding {delta}" if delta > 0 else f"subtracting {-delta}"
        side = "above its upper" if delta > 0 else "below its lower"
        raise Conflict(
            f"{what} would take the counter {side} bound"
            + (f" {limit}" if limit is not None else " (signed 64-bit)"),
            fields={"value": "above upper bound" if delta > 0 else "below lower bound"},
        )
    total = "uc" if delta > 0 else "dc"
    if (n(total) or 0) > INT64_MAX - abs(delta):
        raise Conflict(
            f"the counter's {'up' if delta > 0 else 'down'}_count would pass signed 64-bit",
            fields={"value": "total out of range"},
        )


def key(workspace: str, name: str) -> dict[str, Any]:
    return {"workspace": {"S": workspace}, "counter": {"S": name}}


def _iso(epoch_ms: int) -> str:
    return clock.iso(datetime.fromtimestamp(epoch_ms / 1000, UTC))
