"""The webhooks table's items: a workspace's webhooks, their count, and each delivery.

  pk = <workspace>            sk = wh_<id>       a webhook: url, events (list), desc, ca (created ms)
  pk = <workspace>            sk = #count        n: how many webhooks it has (at most MAX)
  pk = <workspace>/<wh id>    sk = <ms>/<evt id> a delivery of one event to one webhook: type, body,
       st (pending|delivered|failed), att (attempts), first (ms), last (ms), code (last HTTP
       status), err (last error), next (ms, while pending), retry ("due", while pending: the
       sparse index `retry` lists exactly the deliveries waiting for another attempt), expires (TTL)

No signing secret is stored: each is derived from the stack's signing key (tally.webhooks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tally.items.expression import Attr, Update, decode

PK, SK = Attr("pk"), Attr("sk")
URL, EVENTS, DESCRIPTION, CREATED, COUNT = (
    Attr("url"),
    Attr("events"),
    Attr("desc"),
    Attr("ca"),
    Attr("n"),
)
STATUS, ATTEMPTS, LAST, CODE, ERROR, NEXT, RETRY = (
    Attr("st"),
    Attr("att"),
    Attr("last"),
    Attr("code"),
    Attr("err"),
    Attr("next"),
    Attr("retry"),
)
RETRY_INDEX = "retry"
_DUE = "due"
_COUNT_SK = "#count"
KEEP_DELIVERIES_S = 30 * 86400


@dataclass(frozen=True)
class Webhook:
    workspace: str
    id: str
    url: str
    events: tuple[str, ...]
    description: str
    created_ms: int


@dataclass(frozen=True)
class Delivery:
    workspace: str
    webhook_id: str
    event_id: str
    type: str
    body: str
    status: str
    attempts: int
    first_ms: int
    last_ms: int | None
    code: int | None
    error: str | None
    next_ms: int | None


def key(workspace: str, webhook_id: str) -> dict[str, Any]:
    return {"pk": {"S": workspace}, "sk": {"S": webhook_id}}


def _count_key(workspace: str) -> dict[str, Any]:
    return {"pk": {"S": workspace}, "sk": {"S": _COUNT_SK}}


def delivery_key(workspace: str, webhook_id: str, first_ms: int, event_id: str) -> dict:
    return {"pk": {"S": f"{workspace}/{webhook_id}"}, "sk": {"S": f"{first_ms:013d}/{event_id}"}}


def webhook(raw: dict[str, Any]) -> Webhook:
    return Webhook(
        workspace=raw["pk"]["S"],
        id=raw["sk"]["S"],
        url=raw["url"]["S"],
        events=tuple(kind["S"] for kind in raw["events"]["L"]),
        description=decode(raw.get("desc")) or "",
        created_ms=int(raw["ca"]["N"]),
    )


def delivery(raw: dict[str, Any]) -> Delivery:
    workspace, webhook_id = raw["pk"]["S"].rsplit("/", 1)
    first, event_id = raw["sk"]["S"].split("/", 1)
    return Delivery(
        workspace=workspace,
        webhook_id=webhook_id,
        event_id=event_id,
        type=raw["type"]["S"],
        body=raw["body"]["S"],
        status=raw["st"]["S"],
        attempts=int(raw["att"]["N"]),
        first_ms=int(first),
        last_ms=decode(raw.get("last")),
        code=decode(raw.get("code")),
        error=decode(raw.get("err")),
        next_ms=decode(raw.get("next")),
    )


# ------------------------------------------------------------------ webhooks


def create(table: str, hook: Webhook, most: int) -> list[dict[str, Any]]:
    """The transaction that adds a webhook: its item, and the workspace's count kept under
    `most` (two concurrent creations cannot both pass it)."""
    item = {
        **key(hook.workspace, hook.id),
        "url": {"S": hook.url},
        "events": {"L": [{"S": e} for e in hook.events]},
        "desc": {"S": hook.description},
        "ca": {"N": str(hook.created_ms)},
    }
    count = Update().add(COUNT, 1).require(COUNT.missing() | (COUNT < most))
    return [
        {
            "Put": {
                "TableName": table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {"Update": {"TableName": table, "Key": _count_key(hook.workspace), **count.params()}},
    ]


def delete(table: str, workspace: str, webhook_id: str) -> list[dict[str, Any]]:
    """The transaction that removes a webhook (refused if it does not exist) and its count."""
    return [
        {
            "Delete": {
                "TableName": table,
                "Key": key(workspace, webhook_id),
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
        {
            "Update": {
                "TableName": table,
                "Key": _count_key(workspace),
                **Update().add(COUNT, -1).params(),
            }
        },
    ]


def of_workspace(workspace: str) -> dict[str, Any]:
    """A Query for every webhook of a workspace (its count item sorts before them, and is left out)."""
    return {
        "KeyConditionExpression": "pk = :ws AND begins_with(sk, :wh)",
        "ExpressionAttributeValues": {":ws": {"S": workspace}, ":wh": {"S": "wh_"}},
        "ConsistentRead": True,
    }


# ------------------------------------------------------------------ deliveries


def new_delivery(
    workspace: str, hook_id: str, event: dict[str, Any], body: str, now_ms: int, lease_ms: int
) -> dict[str, Any]:
    """A PutItem that records a delivery once per (webhook, event): a republished event meets
    the same key and is refused. Its first attempt is leased (`next`) to whoever put it."""
    first = _ms_of(event["timestamp"])
    return {
        "Item": {
            **delivery_key(workspace, hook_id, first, event["id"]),
            "type": {"S": event["type"]},
            "body": {"S": body},
            "st": {"S": "pending"},
            "att": {"N": "0"},
            "next": {"N": str(now_ms + lease_ms)},
            "retry": {"S": _DUE},
            "expires": {"N": str(now_ms // 1000 + KEEP_DELIVERIES_S)},
        },
        "ConditionExpression": "attribute_not_exists(pk)",
    }


def _ms_of(timestamp: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def lease(attempts: int, seen_next_ms: int, until_ms: int) -> Update:
    """Take a waiting delivery for one attempt: only the caller that saw it as it is wins."""
    update = Update().set("#next = :until", until=until_ms)
    return update.require(ATTEMPTS.eq(attempts) & NEXT.eq(seen_next_ms) & STATUS.eq("pending"))


def attempted(
    attempts: int, now_ms: int, code: int | None, error: str | None, next_ms: int | None
) -> Update:
    """Record an attempt (the `attempts`-th + 1): delivered (2xx), waiting for the next attempt
    at `next_ms`, or failed for good (`next_ms` None)."""
    update = Update().set("#att = :att, #last = :now", att=attempts + 1, now=now_ms)
    if code is not None:
        update.set("#code = :code", code=code)
    if error is None and code is not None and 200 <= code < 300:
        update.set("#st = :st", st="delivered").remove(ERROR, NEXT, RETRY)
    elif next_ms is None:
        update.set("#st = :st, #err = :err", st="failed", err=error or "").remove(NEXT, RETRY)
    else:
        update.set("#err = :err, #next = :next", err=error or "", next=next_ms)
    return update.require(ATTEMPTS.eq(attempts))


def waiting(now_ms: int, limit: int) -> dict[str, Any]:
    """A Query of the deliveries due another attempt by now, oldest first."""
    return {
        "IndexName": RETRY_INDEX,
        "KeyConditionExpression": "#retry = :due AND #next <= :now",
        "ExpressionAttributeNames": {"#retry": "retry", "#next": "next"},
        "ExpressionAttributeValues": {":due": {"S": _DUE}, ":now": {"N": str(now_ms)}},
        "Limit": limit,
    }


def newest_first(workspace: str, webhook_id: str, limit: int, after: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"{workspace}/{webhook_id}"}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if after:
        query["ExclusiveStartKey"] = {"pk": {"S": f"{workspace}/{webhook_id}"}, "sk": {"S": after}}
    return query
