"""The billing-due table's item: one mark per counter at or above its billing threshold, holding
what a billing run needs to bill it (tally.billing), so the run reads the mark and nothing else.

Marks are kept by CounterStreamFunction from the counters table's stream, never on the change
path: written when a counter becomes due or its bill changes (a threshold passed, billed, or its
billing setting changed), removed when it is due no more. A mark may lag its counter by a stream
batch; the billing transaction's conditions guard that (tally.items.counter.bill).

Attributes: workspace, counter (the key); v the value, bu the units billed, bt/ba/bd the billing
threshold, amount and description, all as the counter's stream record showed them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tally.items import counter as stored_counter
from tally.items.counter import CounterItem
from tally.items.expression import Attr, Update, decode


@dataclass(frozen=True)
class Mark:
    workspace: str
    counter: str
    value: int
    billed: int
    threshold: int
    amount: int
    description: str
    shards: int = 1  # a sharded counter's value here is its total, as a global operation left it

    def raw(self) -> dict[str, Any]:
        sharded = {"sh": {"N": str(self.shards)}} if self.shards > 1 else {}
        return sharded | {
            **stored_counter.key(self.workspace, self.counter),
            "v": {"N": str(self.value)},
            "bu": {"N": str(self.billed)},
            "bt": {"N": str(self.threshold)},
            "ba": {"N": str(self.amount)},
            "bd": {"S": self.description},
        }


def of_counter(
    workspace: str, name: str, item: CounterItem, total: int | None = None
) -> Mark | None:
    """The mark a counter in this state needs, or None if it is not due. `total`: a sharded
    counter's value (its shard 0 holds a part of it)."""
    setting, value = item.billing, item.value if total is None else total
    if setting is None or value < setting[0]:
        return None
    threshold, amount, description = setting
    return Mark(
        workspace, name, value, item.billed_units, threshold, amount, description, item.shards
    )


def of(raw: dict[str, Any]) -> Mark:
    fields = {name: decode(cell) for name, cell in raw.items()}
    return Mark(
        workspace=fields["workspace"],
        counter=fields["counter"],
        value=fields["v"],
        billed=fields["bu"],
        threshold=fields["bt"],
        amount=fields["ba"],
        description=fields["bd"] or "",
        shards=fields.get("sh") or 1,
    )


def key(workspace: str, name: str) -> dict[str, Any]:
    return stored_counter.key(workspace, name)


def scan() -> dict[str, Any]:
    """A Scan of every mark, strongly consistent (the table holds marks and nothing else)."""
    return {"ConsistentRead": True}


def unchanged(mark: Mark) -> Update:
    """The condition for dropping a mark a run found stale: it is still the mark the run read
    (the stream may have written a newer one since)."""
    return Update().require(Attr("bu").eq(mark.billed) & Attr("v").eq(mark.value))
