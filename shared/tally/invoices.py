"""Invoice items: one item per charge (or offset) on a workspace's next invoice.

Items are keyed by id, so an id can be chosen to make a write happen exactly once (billing
derives it from what it bills); they are listed newest first, strongly consistent
(tally.items.invoice_item).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from tally import aws, clock, operation
from tally.config import settings
from tally.errors import BadRequest, Conflict
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


def page(
    workspace: str, *, limit: int = 50, cursor: str | None = None, client: Any = None
) -> dict[str, Any]:
    """One page of items, newest first, with the workspace's item count and the next cursor."""
    client = client or aws.dynamodb()
    table = settings().invoice_items_table
    after = _decode_cursor(cursor) if cursor else None
    answer = client.query(TableName=table, **stored.newest_first(workspace, limit, after))
    last = answer.get("LastEvaluatedKey")
    return {
        "list": [render(stored.of(raw)) for raw in answer["Items"]],
        "total": _count(client, table, workspace),
        "next_cursor": _encode_cursor(*stored.cursor_of(last)) if last else None,
    }


def _count(client: Any, table: str, workspace: str) -> int:
    pages = client.get_paginator("query").paginate(TableName=table, **stored.count_query(workspace))
    return sum(p["Count"] for p in pages)


def _encode_cursor(item_id: str, created: str) -> str:
    plain = {"i": item_id, "c": created}
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


_MAX_CURSOR = 512  # the cursors this API gives are ~150 characters
CURSOR_REFUSAL = (
    "cursor is not one this API gave: pass back a page's next_cursor as it is, or leave cursor "
    "out for the first page"
)


def _decode_cursor(cursor: str) -> tuple[str, str]:
    if len(cursor) > _MAX_CURSOR:  # bounded before it is decoded or parsed (nesting included)
        raise BadRequest(CURSOR_REFUSAL, fields={"cursor": "invalid"})
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        item_id, created = str(plain["i"]), str(plain["c"])
    except (ValueError, KeyError, TypeError) as err:
        raise BadRequest(CURSOR_REFUSAL, fields={"cursor": "invalid"}) from err
    if not _ITEM_ID.fullmatch(item_id) or not 0 < len(created) <= 100:
        raise BadRequest(CURSOR_REFUSAL, fields={"cursor": "invalid"})
    return item_id, created


_ITEM_ID = re.compile(r"ivi_[0-9a-z_]{1,64}")
