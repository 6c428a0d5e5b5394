"""The API's lists, a page at a time: a Query of one page, the count of all, and a cursor, an
opaque string naming where the page ended, which the caller gives back for the next.

A cursor names a position only, never a workspace: the list reads the workspace of the caller's
key, so a cursor given to one workspace reads nothing of another's. What a cursor holds is
bounded and checked field by field before it reaches DynamoDB (an empty or malformed key would
be DynamoDB's 400, not ours)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tally import aws
from tally.errors import BadRequest

MAX_CURSOR = 512  # the cursors this API gives are ~150 characters
Position = tuple[str, str]  # the two key attributes a page ends at, as its cursor holds them


@dataclass(frozen=True)
class Listing:
    """One list: its table, its queries (tally.items builds them) and its cursor's two fields,
    each with the rule it must match."""

    table: Callable[[], str]
    query: Callable[[str, int, Position | None], dict[str, Any]]  # (workspace, limit, after)
    count: Callable[[str], dict[str, Any]]
    position: Callable[[dict[str, Any]], Position]  # a page's LastEvaluatedKey -> its end
    cursor: dict[str, re.Pattern[str]]

    def read(
        self,
        client: Any,
        workspace: str,
        limit: int,
        cursor: str | None,
        render: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> dict[str, Any]:
        """{"list": the page's items rendered, "total": all of them, "next_cursor"}."""
        table = self.table()
        after = tuple(decode(cursor, self.cursor).values()) if cursor else None
        answer = client.query(TableName=table, **self.query(workspace, limit, after))
        last = answer.get("LastEvaluatedKey")
        next_cursor = None
        if last:
            next_cursor = encode(**dict(zip(self.cursor, self.position(last), strict=True)))
        return {
            "list": [render(raw) for raw in answer["Items"]],
            "total": aws.query_count(client, TableName=table, **self.count(workspace)),
            "next_cursor": next_cursor,
        }


def encode(**fields: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


def decode(cursor: str, rules: dict[str, re.Pattern[str]]) -> dict[str, str]:
    """The fields of a cursor this API gave, each matching its rule; anything else is a 400."""
    if len(cursor) > MAX_CURSOR:  # bounded before it is decoded or parsed (nesting included)
        raise _invalid()
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        fields = {name: str(plain[name]) for name in rules}
    except (ValueError, KeyError, TypeError) as err:
        raise _invalid() from err
    if not all(rule.fullmatch(fields[name]) for name, rule in rules.items()):
        raise _invalid()
    return fields


CURSOR_REFUSAL = (
    "cursor is not one this API gave: pass back a page's next_cursor as it is, or leave cursor "
    "out for the first page"
)


def _invalid() -> BadRequest:
    return BadRequest(CURSOR_REFUSAL, fields={"cursor": "invalid"})
