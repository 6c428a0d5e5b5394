"""The API keys table's item: one key of a workspace, its secret stored only as a hash.

key_id  the key's id (the table's key; a secret names it)   workspace  whose key it is
secret_sha256  SHA-256 of the secret, hex    scopes  a string set of read / write / admin
created_at / revoked_at  ISO times (revoked_at present once revoked)

The global index `by_workspace` lists a workspace's keys by `created_at`. It projects the
scopes and revoked_at, never the secret's hash: what reads the index cannot read a hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tally.items import expression
from tally.items.expression import decode


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    workspace: str
    secret_sha256: str
    scopes: frozenset[str]
    created_at: str
    revoked_at: str | None = None


BY_WORKSPACE = "by_workspace"


@dataclass(frozen=True)
class ListedKey:
    """A key as the workspace's index holds it: no secret, no hash."""

    key_id: str
    scopes: frozenset[str]
    created_at: str
    revoked_at: str | None = None


def key(key_id: str) -> dict[str, Any]:
    return {"key_id": {"S": key_id}}


def of(raw: dict[str, Any]) -> StoredKey:
    fields = {name: decode(cell) for name, cell in raw.items()}
    return StoredKey(
        key_id=fields["key_id"],
        workspace=fields["workspace"],
        secret_sha256=fields["secret_sha256"],
        scopes=fields["scopes"],
        created_at=fields.get("created_at", ""),
        revoked_at=fields.get("revoked_at"),
    )


def raw(stored: StoredKey) -> dict[str, Any]:
    return {
        "key_id": {"S": stored.key_id},
        "workspace": {"S": stored.workspace},
        "secret_sha256": {"S": stored.secret_sha256},
        "scopes": {"SS": sorted(stored.scopes)},
        "created_at": {"S": stored.created_at},
    }


def put_new(table: str, stored: StoredKey, *, or_same_secret: bool = False) -> dict[str, Any]:
    """A Put of a new key: refused if the id is taken (unless, `or_same_secret`, by this very
    key: a put resent after its answer was lost)."""
    put: dict[str, Any] = {
        "TableName": table,
        "Item": raw(stored),
        "ConditionExpression": "attribute_not_exists(key_id)",
    }
    if or_same_secret:
        put["ConditionExpression"] += " OR secret_sha256 = :mine"
        put["ExpressionAttributeValues"] = {":mine": {"S": stored.secret_sha256}}
    return put


def revoke(table: str, key_id: str, workspace: str, now: str) -> dict[str, Any]:
    """A transaction's Update revoking a key of `workspace` not revoked yet (refused, with the
    key as it is, otherwise)."""
    return {
        "TableName": table,
        "Key": key(key_id),
        "UpdateExpression": "SET revoked_at = :now",
        "ConditionExpression": "workspace = :ws AND attribute_not_exists(revoked_at)",
        "ExpressionAttributeValues": {":now": {"S": now}, ":ws": {"S": workspace}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def unrevoked(table: str, key_id: str) -> dict[str, Any]:
    """A transaction's ConditionCheck: the key is not revoked."""
    return {
        "TableName": table,
        "Key": key(key_id),
        "ConditionExpression": "attribute_not_exists(revoked_at)",
    }


PAGE_KEY = ("key_id", "created_at")  # where a page ends: the key's own key, the index's sort key


def newest_first(workspace: str, limit: int, after: tuple[str, str] | None) -> dict[str, Any]:
    """A Query of one page of a workspace's keys, newest first; `after` is the last page's end
    as `cursor_of` gave it."""
    return expression.newest_first(
        workspace, limit, after, index=BY_WORKSPACE, key=PAGE_KEY, consistent=False
    )


def count_query(workspace: str) -> dict[str, Any]:
    return expression.count_of(workspace, index=BY_WORKSPACE, consistent=False)


def listed(raw: dict[str, Any]) -> ListedKey:
    """An index entry (key, scopes, times: the index holds nothing else)."""
    fields = expression.decoded(raw)
    return ListedKey(
        fields["key_id"], fields["scopes"], fields["created_at"], fields.get("revoked_at")
    )


def cursor_of(last_key: dict[str, Any]) -> tuple[str, str]:
    """The end of a page (its LastEvaluatedKey): PAGE_KEY's values."""
    return expression.position(last_key, PAGE_KEY)
