"""The events tally publishes on its EventBridge bus, derived from the tables' streams by
PublishEventsFunction: off the change path, from the one place that sees every change.

A change that was refused, or a transaction that was cancelled, wrote nothing, so it has no
stream record and publishes nothing. Each event's `id` is derived from the stream record that
caused it (and the level it crossed): a batch redelivered after a failure publishes the same ids
again, and consumers (tally's webhooks among them) deduplicate on it.

The `detail` of every event: {"id", "type", "timestamp", "workspace", "data"}; its JSON Schema per
type is in schemas/events/. The webhook body is the same object.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tally import aws, clock, invoices
from tally.config import settings
from tally.items import counter as stored_counter
from tally.items import invoice_item

SOURCE = "tally"
THRESHOLD_CROSSED = "tally.counter.threshold_crossed"
BOUND_REACHED = "tally.counter.bound_reached"
ALERT = "tally.counter.alert"
INVOICE_ITEM_CREATED = "tally.invoice_item.created"
TYPES = (THRESHOLD_CROSSED, BOUND_REACHED, ALERT, INVOICE_ITEM_CREATED)

_PUT_EVENTS_BATCH = 10  # the most entries one PutEvents takes


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    timestamp: str
    workspace: str
    data: dict[str, Any]

    def detail(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "timestamp": self.timestamp,
            "workspace": self.workspace,
            "data": self.data,
        }


def _id(record: dict[str, Any], *parts: Any) -> str:
    seed = "\n".join([record["eventID"], *map(str, parts)])
    return "evt_" + hashlib.sha256(seed.encode()).hexdigest()[:26]


def _upward(old: int, new: int, level: int) -> bool:
    return old < level <= new


def derive(record: dict[str, Any]) -> list[Event]:
    """The events one stream record (in Lambda's shape) publishes, from either table."""
    if record.get("eventName") not in ("INSERT", "MODIFY"):
        return []
    images = record["dynamodb"]
    if "counter" in images["Keys"]:
        return _counter_events(record, images)
    if record["eventName"] == "INSERT":
        item = invoice_item.of(images["NewImage"])
        return [
            Event(
                _id(record, INVOICE_ITEM_CREATED),
                INVOICE_ITEM_CREATED,
                item.timestamp,
                item.workspace,
                {"invoice_item": invoices.render(item)},
            )
        ]
    return []


def _counter_events(record: dict[str, Any], images: dict[str, Any]) -> list[Event]:
    old = stored_counter.item(images.get("OldImage"))
    new = stored_counter.item(images.get("NewImage"))
    workspace, name, shard = stored_counter.identity(images["Keys"])
    if new.global_op is not None and new.global_op != old.global_op:
        if shard:
            return []
        before, after = new.summary()[:2]  # a sharded counter's total (tally.shards)
    elif shard or old.sharded or new.sharded:
        return []  # a change on one shard stays within its band: it crosses no level
    else:
        before, after = old.value, new.value
    if before == after:
        return []  # settings, first writes of keys alone: no value moved
    at_ms = stored_counter.changed_at_s(old, new, images["ApproximateCreationDateTime"]) * 1000
    base = {"counter": name, "value": after, "previous_value": before}
    found: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    if new.billing and _upward(before, after, threshold := new.billing[0]):
        found.append((THRESHOLD_CROSSED, (), {"threshold": threshold}))
    hi, lo = new.upper_bound, new.lower_bound
    if hi is not None and _upward(before, after, hi):
        found.append((BOUND_REACHED, ("upper",), {"bound": "upper", "at": hi}))
    if lo is not None and _upward(-before, -after, -lo):
        found.append((BOUND_REACHED, ("lower",), {"bound": "lower", "at": lo}))
    for alert, level in new.alert_levels():
        if _upward(before, after, level):
            found.append((ALERT, (level,), {"alert": alert, "level": level}))
    return [
        Event(_id(record, kind, *parts), kind, clock.iso_of_ms(at_ms), workspace, {**base, **data})
        for kind, parts, data in found
    ]


def publish(events: list[Event], *, client: Any = None) -> list[int]:
    """Put the events on the bus, ten to a call. Returns the indexes of those not accepted."""
    client = client or aws.events()
    bus = settings().event_bus
    failed: list[int] = []
    for start in range(0, len(events), _PUT_EVENTS_BATCH):
        chunk = events[start : start + _PUT_EVENTS_BATCH]
        try:
            answer = client.put_events(Entries=_entries(bus, chunk))
        except (ClientError, BotoCoreError):  # none of the chunk is known to be on the bus
            failed += range(start, start + len(chunk))
            continue
        failed += [start + i for i, entry in enumerate(answer["Entries"]) if "ErrorCode" in entry]
    return failed


def _entries(bus: str, events: list[Event]) -> list[dict[str, Any]]:
    return [
        {
            "EventBusName": bus,
            "Source": SOURCE,
            "DetailType": event.type,
            "Detail": json.dumps(event.detail(), separators=(",", ":")),
        }
        for event in events
    ]
