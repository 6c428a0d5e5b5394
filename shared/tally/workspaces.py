"""Workspaces: what a workspace has chosen for all its counters. Its rate limit (set by the
operator, tally.rate_limit) and its counters' default visibility (set with an admin key).

One item per workspace, read on nearly every request (the rate limiter needs its policy) and so
cached while warm: a change reaches every container within TALLY_KEY_CACHE_SECONDS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tally import aws
from tally.config import settings
from tally.errors import BadRequest, NotFound
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
                Key={"workspace": {"S": name}},
                ProjectionExpression="workspace, dv, rl_quota, rl_window",
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


def update(name: str, *, client: Any = None, **attributes: Any) -> Workspace:
    """SET the given attributes of an existing workspace (404 if there is none)."""
    names = {f"#{k}": k for k in attributes}
    values = {
        f":{k}": {"N": str(v)} if isinstance(v, int) else {"S": v} for k, v in attributes.items()
    }
    try:
        answer = (client or aws.dynamodb()).update_item(
            TableName=settings().workspaces_table,
            Key={"workspace": {"S": name}},
            UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in attributes),
            ConditionExpression="attribute_exists(workspace)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
    except ClientError as err:
        if aws.condition_failed(err):
            raise NotFound(f"no workspace '{name}'") from err
        raise
    forget(name)
    return _of(answer["Attributes"])


def forget(name: str) -> None:
    """Drop what this container remembers of the workspace (after a change made here)."""
    _cache.pop(name)


def item(name: str, created_at: str, default: str) -> dict[str, Any]:
    """A new workspace's item."""
    return {"workspace": {"S": name}, "created_at": {"S": created_at}, "dv": {"S": default}}


def _of(item: dict[str, Any]) -> Workspace:
    quota = item.get("rl_quota")
    return Workspace(
        name=item["workspace"]["S"],
        default_visibility=item.get("dv", {}).get("S", "private"),
        rate_limit=(int(quota["N"]), int(item["rl_window"]["N"])) if quota else None,
    )
