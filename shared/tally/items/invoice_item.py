"""The invoice items table's item: one charge (or offset) on a workspace's next invoice.

Keyed by (workspace, item_id), so an id can be chosen to make a write happen exactly once;
`created` ("<timestamp>#<item_id>") is the sort key of the local index `by_time`, which lists a
workspace's items newest first, strongly consistent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tally.items import expression
from tally.items.expression import decode

BY_TIME = "by_time"


@dataclass(frozen=True)
class InvoiceItem:
    workspace: str
    item_id: str
    amount: int
    description: str
    timestamp: str
    source: str  # "api" or "billing"
    invoice_id: str | None = None

    @property
    def created(self) -> str:
        return f"{self.timestamp}#{self.item_id}"  # the index's sort key: time, then id

    def raw(self) -> dict[str, Any]:
        return {
            "workspace": {"S": self.workspace},
            "item_id": {"S": self.item_id},
            "amount": {"N": str(self.amount)},
            "description": {"S": self.description},
            "timestamp": {"S": self.timestamp},
            "source": {"S": self.source},
            "created": {"S": self.created},
        }


def of(raw: dict[str, Any]) -> InvoiceItem:
    fields = {name: decode(cell) for name, cell in raw.items()}
    return InvoiceItem(
        workspace=fields["workspace"],
        item_id=fields["item_id"],
        amount=fields["amount"],
        description=fields["description"],
        timestamp=fields["timestamp"],
        source=fields["source"],
        invoice_id=fields.get("invoice_id"),
    )


def put_once(table: str, item: InvoiceItem) -> dict[str, Any]:
    """A Put (of a transaction) that only a new id passes."""
    return {
        "TableName": table,
        "Item": item.raw(),
        "ConditionExpression": "attribute_not_exists(item_id)",
    }


def put_for_operation(table: str, item: InvoiceItem) -> dict[str, Any]:
    """A PutItem that passes for a new id, or for the very same item (a put resent after its
    answer was lost); refused otherwise, with the item as it is."""
    return {
        "TableName": table,
        "Item": item.raw(),
        "ConditionExpression": "attribute_not_exists(item_id) OR created = :created",
        "ExpressionAttributeValues": {":created": {"S": item.created}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


PAGE_KEY = ("item_id", "created")  # where a page ends: the item's own key, the index's sort key


def newest_first(workspace: str, limit: int, after: tuple[str, str] | None) -> dict[str, Any]:
    """A Query of one page of a workspace's items, newest first; `after` is the last page's end
    as `cursor_of` gave it."""
    return expression.newest_first(
        workspace, limit, after, index=BY_TIME, key=PAGE_KEY, consistent=True
    )


def count_query(workspace: str) -> dict[str, Any]:
    return expression.count_of(workspace, index=None, consistent=True)


def cursor_of(last_key: dict[str, Any]) -> tuple[str, str]:
    """The end of a page (its LastEvaluatedKey): PAGE_KEY's values."""
    return expression.position(last_key, PAGE_KEY)
