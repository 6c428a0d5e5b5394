"""Invoice items: one item per charge (or offset) on a workspace's next invoice.

Items are keyed by id, so an id can be chosen to make a write happen exactly once (billing
derives it from what it bills); they are listed newest first, strongly consistent
(tally.items.invoice_item).
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from tally import aws, clock, operation, pages
from tally.config import settings
from tally.errors import Conflict
from tally.items import invoice_item as stored
from tally.items.invoice_item import InvoiceItem

MAX_AMOUNT = 10**12


def create(workspace: str, amount: int, description: str, *, client: Any = None) -> dict:
    """Put one item, once per operation (tally.operation): its id is the operation's, so every
    attempt of one request meets the same item. A put resent after a lost answer finds its own
    record (the same `created`) and passes; a later attempt (its answer was never stored)
    answers the item the first one made. An item older than an operation id lives was made by
    an earlier request that used the same Idempotency-Key before its record expired: this one
    is new, and takes the next id in that key's line, so its own retries find it in turn."""
    client = client or aws.dynamodb()
    item_id = f"ivi_{operation.current()}"
    stale = clock.iso(clock.now() - timedelta(milliseconds=operation.REPEAT_WINDOW_MS))
    for _ in range(_GENERATIONS):
        record = record_of(workspace, amount, description, "api", item_id)
        try:
            client.put_item(**stored.put_for_operation(settings().invoice_items_table, record))
            return render(record)
        except ClientError as err:
            if not aws.condition_failed(err):
                raise
            old = stored.of(err.response["Item"]) if err.response.get("Item") else None
        if old is None or old.workspace != workspace:
            break
        if old.timestamp >= stale:
            return render(old)
        item_id = "ivi_" + hashlib.sha256(old.item_id.encode()).hexdigest()[:20]
    raise Conflict(f"invoice item {item_id} exists; send this request with a new Idempotency-Key")


_GENERATIONS = 100  # times one Idempotency-Key can be reused, a day or more apart each time


def record_of(
    workspace: str, amount: int, description: str, source: str, item_id: str
) -> InvoiceItem:
    return InvoiceItem(workspace, item_id, amount, description, clock.iso(), source)


def render(item: InvoiceItem) -> dict[str, Any]:
    return {
        "id": item.item_id,
        "account_id": item.workspace,
        "amount": item.amount,
        "description": item.description,
        "timestamp": item.timestamp,
        "invoice_id": item.invoice_id,
        "source": item.source,
    }


# Newest first; a cursor holds the last item's id and its index key ("<time>#<id>").
_LIST = pages.Listing(
    table=lambda: settings().invoice_items_table,
    query=stored.newest_first,
    count=stored.count_query,
    position=stored.cursor_of,
    cursor={"i": re.compile(r"ivi_[0-9a-z_]{1,64}"), "c": re.compile(r"(?s).{1,100}")},
)


def page(
    workspace: str, *, limit: int = 50, cursor: str | None = None, client: Any = None
) -> dict[str, Any]:
    """One page of items, newest first, with the workspace's item count and the next cursor."""
    return _LIST.read(
        client or aws.dynamodb(), workspace, limit, cursor, lambda raw: render(stored.of(raw))
    )
