"""Counters. Every change is one atomic DynamoDB UpdateItem: ADD to the value, the up/down
totals and the stats buckets, with the bounds checked in the same write (the item and each write
are in tally.items.counter; this module decides what to send and what an answer means).
A sharded counter's changes, reads and sets go through tally.shards; an unsharded one (the
default) never does, and costs what it always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from tally import aws, clock, operation, shards
from tally.clock import Moment
from tally.config import settings
from tally.errors import Conflict, TallyError, Unavailable
from tally.items import counter as stored
from tally.items.counter import CounterItem, Refusal
from tally.items.expression import Update
from tally.names import INT64_MAX
from tally.telemetry import count

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ROLLOVER_TRIES = 4


@dataclass(frozen=True)
class Counter:
    workspace: str
    name: str
    stored: CounterItem
    default_visibility: str = "private"  # its workspace's, for a counter with none of its own

    @classmethod
    def unborn(cls, workspace: str, name: str, default_visibility: str = "private") -> Counter:
        """A counter never created: 0, with its workspace's visibility and no settings."""
        return cls(workspace, name, stored.item(None), default_visibility)

    @property
    def value(self) -> int:
        return self.stored.value

    @property
    def up_count(self) -> int:
        return self.stored.up_count

    @property
    def down_count(self) -> int:
        return self.stored.down_count

    @property
    def visibility(self) -> str:
        """ "public" or "private": its own, else its workspace's default."""
        return self.stored.own_visibility or self.default_visibility

    @property
    def billed(self) -> bool:
        return self.stored.billing is not None

    @property
    def open_to_anyone(self) -> bool:
        """Whether a caller without a key of the workspace may change it: public, and never a
        counter with a billing setting (anyone could run up the account's invoice)."""
        return self.visibility == "public" and not self.billed

    @property
    def description(self) -> str:
        return self.stored.description

    @property
    def created_at(self) -> str:
        return _iso(self.stored.created_ms)

    @property
    def updated_at(self) -> str:
        return _iso(self.stored.updated_ms or self.stored.created_ms)  # never changed: created

    def stats(self, now: datetime) -> dict[str, Any]:
        at = Moment.of(now)

        def pair(up_down: tuple[int, int]) -> dict[str, int]:
            return {"up": up_down[0], "down": up_down[1]}

        def bucket(kind: str, slot: int) -> dict[str, int]:
            return pair(self.stored.all_time(kind, slot))

        return {
            "today": pair(self.stored.today(at)),
            "this_week": pair(self.stored.this_week(at)),
            "temporal": {
                "hours": {f"{h:02d}": bucket("hour", h) for h in range(24)},
                "weekdays": {name: bucket("weekday", i) for i, name in enumerate(WEEKDAYS)},
                "quarters": {f"q{q}": bucket("quarter", q) for q in range(1, 5)},
            },
        }


def get(
    workspace: str, name: str, *, default_visibility: str = "private", client: Any = None
) -> Counter | None:
    """The counter as it is now (strongly consistent), or None if it was never created: one
    GetItem; a sharded counter's shards in one BatchGetItem (after the GetItem that finds it
    sharded, unless this container knew)."""
    client = client or aws.dynamodb()
    known = shards.known(workspace, name)
    if known > 1:
        item = shards.total(client, workspace, name, known)
    else:
        item = _read(client, workspace, name)
        if item.sharded:
            item = shards.total(client, workspace, name, item.shards, given={0: item})
    return Counter(workspace, name, item, default_visibility) if item.exists else None


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
    at = Moment.of(now or clock.now())
    open_to = default_visibility if refuse_private is not None else None
    client = client or aws.dynamodb()
    try:
        return _change(
            client, workspace, name, delta, at, open_to, refuse_private, default_visibility
        )
    except ClientError as err:
        if aws.error_code(err) in aws.THROTTLES:  # its items take no more: spread it further
            shards.grow(client, workspace, name)
        raise


def _change(
    client: Any,
    workspace: str,
    name: str,
    delta: int,
    at: Moment,
    open_to: str | None,
    refuse_private: TallyError | None,
    default_visibility: str,
) -> Counter:
    if shards.known(workspace, name) > 1:
        done = _sharded(client, workspace, name, delta, at, open_to, refuse_private)
        if done is not None:
            return Counter(workspace, name, done, default_visibility)
    # Guess "same day"; a wrong guess returns the old item (no extra read) and tells the right one.
    rollover = "same_day"
    for _ in range(_ROLLOVER_TRIES):
        update = stored.change(delta, at, rollover, open_to=open_to)
        item, refusal = _write(client, workspace, name, update, at)
        if refusal in (Refusal.STALE_DAY, Refusal.RACED):
            rollover = item.rollover(at)
            continue
        if refusal is Refusal.SHARDED:  # sharded since this container last saw it
            shards.learn(workspace, name, item.shards)
            done = _sharded(client, workspace, name, delta, at, open_to, refuse_private)
            if done is not None:
                return Counter(workspace, name, done, default_visibility)
            continue
        if refusal is not None and refusal is not Refusal.APPLIED:
            raise _error(refusal, item, delta, refuse_private)
        return Counter(workspace, name, item, default_visibility)
    raise Unavailable("the counter is changing too fast to record; retry", retry_after=1)


def _sharded(
    client: Any,
    workspace: str,
    name: str,
    delta: int,
    at: Moment,
    open_to: str | None,
    refuse_private: TallyError | None,
) -> CounterItem | None:
    """A change to a sharded counter (tally.shards): the counter after it, or None if it is not
    sharded after all."""

    def send(shard: int, update: Update) -> tuple[CounterItem, Refusal | None]:
        return _write(client, workspace, name, update, at, shard=shard)

    with operation.begin(operation.running()) as op:  # one operation, outside a request too
        outcome = shards.change(
            client,
            workspace,
            name,
            delta,
            at,
            open_to=open_to,
            op=op,
            shards=shards.known(workspace, name),
            send=send,
        )
    if outcome is None:
        return None
    if outcome.refusal is not None:
        raise _error(outcome.refusal, outcome.item, delta, refuse_private)
    return outcome.item


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
    at = Moment.of(now or clock.now())
    client = client or aws.dynamodb()
    if shards.known(workspace, name) == 1:
        item, refusal = _write(client, workspace, name, stored.set_value(value, at), at)
    else:
        item, refusal = stored.item(None), Refusal.SHARDED
    if refusal is Refusal.SHARDED:  # exact on the sum: a global operation (tally.shards)
        outcome = shards.run(
            client, workspace, name, shards.SetValue(value, at, operation.current())
        )
        if outcome is None:  # not sharded after all
            shards.learn(workspace, name, 1)
            return set_value(
                workspace,
                name,
                value,
                default_visibility=default_visibility,
                now=now,
                client=client,
            )
        return Counter(workspace, name, outcome.item, default_visibility)
    if refusal is Refusal.OUTSIDE_BOUNDS:
        raise Conflict(
            f"{value} is outside the counter's bounds", fields={"value": "outside bounds"}
        )
    if refusal not in (None, Refusal.APPLIED):
        raise Unavailable("the counter changed while being set; retry", retry_after=1)
    return Counter(workspace, name, item, default_visibility)


def values(workspace: str, *, client: Any = None) -> dict[str, int]:
    """Every counter of a workspace and its value: one strongly consistent Query, paged (shard
    items are keyed outside the workspace, so it never meets them); a sharded counter's other
    shards then in one BatchGetItem with every other's."""
    client = client or aws.dynamodb()
    pages = client.get_paginator("query").paginate(
        TableName=settings().counters_table, **stored.values_query(workspace)
    )
    found = [stored.item(raw) for page in pages for raw in page["Items"]]
    return {stored.name(item.raw): item.value for item in _summed(client, workspace, found)}


def every(
    workspace: str, *, default_visibility: str = "private", client: Any = None
) -> list[Counter]:
    """Every counter of a workspace, whole (settings and stats): one strongly consistent Query,
    paged. A dashboard's table; a client wanting values only asks `values`, which reads less."""
    client = client or aws.dynamodb()
    pages = client.get_paginator("query").paginate(
        TableName=settings().counters_table, **stored.every_query(workspace)
    )
    found = [stored.item(raw) for page in pages for raw in page["Items"]]
    return [
        Counter(workspace, stored.name(item.raw), item, default_visibility)
        for item in _summed(client, workspace, found)
    ]


def _summed(client: Any, workspace: str, found: list[CounterItem]) -> list[CounterItem]:
    """Counters as a Query listed them (shard 0 each), the sharded ones summed over their other
    shards, read for all of them at once (BatchGetItem, 100 keys a call)."""
    sharded = [item for item in found if item.sharded]
    if not sharded:
        return found
    keys = [
        stored.key(workspace, stored.name(item.raw), i)
        for item in sharded
        for i in range(1, item.shards)
    ]
    parts: dict[str, dict[int, CounterItem]] = {}
    for raw in shards.batch_get(client, keys):
        _, name, shard = stored.identity(raw)
        parts.setdefault(name, {})[shard] = stored.item(raw)
    return [
        shards.checked(client, workspace, stored.name(item.raw), item, parts)
        if item.sharded
        else item
        for item in found
    ]


def _error(
    refusal: Refusal, old: CounterItem, delta: int, refuse_private: TallyError | None
) -> TallyError:
    """What a refused change answers, from the condition that failed."""
    if refusal is Refusal.NOT_OPEN and refuse_private is not None:
        return refuse_private
    if refusal in (Refusal.ABOVE_UPPER, Refusal.BELOW_LOWER):
        count("BoundRefusals")
        up = refusal is Refusal.ABOVE_UPPER
        limit = old.upper_bound if up else old.lower_bound
        what = f"adding {delta}" if up else f"subtracting {-delta}"
        side = "above its upper" if up else "below its lower"
        return Conflict(
            f"{what} would take the counter {side} bound"
            + (f" {limit}" if limit is not None else " (signed 64-bit)"),
            fields={"value": "above upper bound" if up else "below lower bound"},
        )
    if refusal in (Refusal.UP_TOTAL_FULL, Refusal.DOWN_TOTAL_FULL):
        total = "up" if refusal is Refusal.UP_TOTAL_FULL else "down"
        return Conflict(
            f"the counter's {total}_count would pass signed 64-bit",
            fields={"value": "total out of range"},
        )
    return Unavailable(f"the change was refused: {refusal.value}; retry", retry_after=1)


# ------------------------------------------------------------------ sending a change


def _write(
    client: Any, workspace: str, name: str, update: Update, at: Moment, *, shard: int = 0
) -> tuple[CounterItem, Refusal | None]:
    """Send a change stamped with the running operation: (the counter as it left it, None), or
    when refused, (the counter as it was, the refusal its failed condition names); APPLIED when
    an earlier attempt of this operation went through."""
    client = client or aws.dynamodb()
    op = operation.current()
    stored.stamp(update, op, at.epoch_ms, operation.REPEAT_WINDOW_MS)
    try:
        answer = _send(client, workspace, name, update, op, at.epoch_ms, shard)
    except ClientError as err:
        if not aws.condition_failed(err):
            raise
        old = stored.item(err.response.get("Item"))
        return old, update.refusal(err.response.get("Item")) or Refusal.RACED
    item = stored.item(answer["Attributes"])
    count("CounterChanges")
    return item, None


def _send(
    client: Any, workspace: str, name: str, update: Update, op: str, now_ms: int, shard: int
) -> dict:
    """The change, never applied twice (tally.aws.send_additive): a lost answer is confirmed
    by reading the counter (the shard), whose last operation is this one if it was applied."""

    def applied() -> dict[str, Any] | None:
        item = _read(client, workspace, name, shard)
        return item.raw if item.applied(op, now_ms, operation.REPEAT_WINDOW_MS) else None

    return aws.send_additive(
        lambda: _update(
            client,
            workspace,
            name,
            update,
            shard,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        applied,
        context={"operation": op, "counter": name, "workspace": workspace},
    )


def _read(client: Any, workspace: str, name: str, shard: int = 0) -> CounterItem:
    answer = client.get_item(
        TableName=settings().counters_table,
        Key=stored.key(workspace, name, shard),
        ConsistentRead=True,
    )
    return stored.item(answer.get("Item"))


def _update(
    client: Any, workspace: str, name: str, update: Update, shard: int = 0, **extra: Any
) -> Any:
    return client.update_item(
        TableName=settings().counters_table,
        Key=stored.key(workspace, name, shard),
        **update.params(),
        **extra,
    )


def _iso(epoch_ms: int) -> str:
    return clock.iso(datetime.fromtimestamp(epoch_ms / 1000, UTC))
