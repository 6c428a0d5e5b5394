"""Workspaces: created with their first admin key, and what a workspace has chosen for all its
counters. Its rate limit (set by the
operator, tally.rate_limit) and its counters' default visibility (set with an admin key).

One item per workspace, read on nearly every request (the rate limiter needs its policy) and so
cached while warm: a change reaches every container within TALLY_KEY_CACHE_SECONDS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tally import aws, keys
from tally.config import settings
from tally.errors import BadRequest, Conflict, NotFound
from tally.items import api_key as stored_key
from tally.items import workspace as stored
from tally.warm_cache import WarmCache

VISIBILITIES = ("private", "public")


@dataclass(frozen=True)
class Workspace:
    name: str
    # What a counter without a visibility of its own is. Private unless the workspace chose
    # public: a workspace is also a Backstack account whose counters gate features and bill.
    default_visibility: str = "private"
    rate_limit: tuple[int, int] | None = None  # (quota, window s), when an operator set one

    def settings(self) -> dict[str, Any]:
        quota, window = self.rate_limit or (None, None)
        return {
            "workspace": self.name,
            "default_visibility": self.default_visibility,
            "rate_limit": {"quota": quota, "window": window} if quota else None,
        }


def visibility(value: Any, field: str = "default_visibility") -> str:
    if value not in VISIBILITIES:
        raise BadRequest(
            f"{field} must be 'private' or 'public'", fields={field: "'private' or 'public'"}
        )
    return value


_cache = WarmCache()


def get(name: str, *, fresh: bool = False, client: Any = None) -> Workspace | None:
    """The workspace, or None when there is none of that name: as this container remembers it
    (absence too), or, `fresh`, as it is now (a strongly consistent read)."""

    def load() -> Workspace | None:
        item = (
            (client or aws.dynamodb())
            .get_item(
                TableName=settings().workspaces_table,
                Key=stored.key(name),
                ProjectionExpression=stored.READ,
                ConsistentRead=fresh,
            )
            .get("Item")
        )
        return _of(item) if item else None

    if fresh:
        _cache.put(name, load(), settings().key_cache_seconds)
    return _cache.get_or_load(name, load, settings().key_cache_seconds)


def default_visibility(name: str) -> str:
    found = get(name)
    return found.default_visibility if found else "private"


def update(
    name: str,
    *,
    default_visibility: str | None = None,
    rate_limit: tuple[int, int] | None = None,
    client: Any = None,
) -> Workspace:
    """Set what is given of an existing workspace (404 if there is none): its counters' default
    visibility, its rate limit (quota, window seconds)."""
    try:
        answer = (client or aws.dynamodb()).update_item(
            TableName=settings().workspaces_table,
            Key=stored.key(name),
            ReturnValues="ALL_NEW",
            **stored.update(default_visibility=default_visibility, rate_limit=rate_limit).params(),
        )
    except ClientError as err:
        if aws.condition_failed(err):
            raise NotFound(f"no workspace '{name}'") from err
        raise
    forget(name)
    return _of(answer["Attributes"])


def create(
    workspace: str,
    *,
    default_visibility: str = "private",
    client: Any = None,
    key_id: str | None = None,
    secret: str | None = None,
) -> keys.IssuedKey:
    """Create a workspace and its first admin key, both or neither (409 if it exists)."""
    client = client or aws.dynamodb()
    cfg = settings()
    issued, key = keys.new_key(workspace, ("admin",), key_id, secret)
    new_workspace = {
        "TableName": cfg.workspaces_table,
        "Item": stored.new(workspace, issued.created_at, default_visibility),
        "ConditionExpression": stored.create_only(),
    }
    try:
        client.transact_write_items(
            TransactItems=[
                {"Put": new_workspace},
                {"Put": stored_key.put_new(cfg.api_keys_table, key)},
            ]
        )
    except ClientError as err:
        reasons = err.response.get("CancellationReasons") or []
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            raise Conflict(f"workspace '{workspace}' already exists: choose another name") from err
        raise
    forget(workspace)  # this container may remember it as absent
    return issued


def forget(name: str) -> None:
    """Drop what this container remembers of the workspace (after a change made here)."""
    _cache.pop(name)


def _of(raw: dict[str, Any]) -> Workspace:
    return Workspace(*stored.decoded(raw))
