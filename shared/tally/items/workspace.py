"""The workspaces table's item: a workspace's choices for all its counters.

workspace   its name (the key)          created_at  ISO time
dv          default visibility of its counters ("private" or "public")
rl_quota / rl_window  its rate limit, when an operator set one (requests per window seconds)
"""

from __future__ import annotations

from typing import Any

from tally.items.expression import Attr, Update, decode

WORKSPACE = Attr("workspace")
READ = "workspace, dv, rl_quota, rl_window"  # the ProjectionExpression a lookup needs


def key(name: str) -> dict[str, Any]:
    return {"workspace": {"S": name}}


def new(name: str, created_at: str, default_visibility: str) -> dict[str, Any]:
    return {
        "workspace": {"S": name},
        "created_at": {"S": created_at},
        "dv": {"S": default_visibility},
    }


def create_only() -> str:
    """The condition of a Put that creates a workspace (never replaces one)."""
    return "attribute_not_exists(workspace)"


def update(
    *, default_visibility: str | None = None, rate_limit: tuple[int, int] | None = None
) -> Update:
    """SET what is given of an existing workspace: its default visibility, its rate limit
    (quota, window seconds)."""
    change = Update()
    if default_visibility is not None:
        change.set("#dv = :dv", dv=default_visibility)
    if rate_limit is not None:
        change.set(
            "#rl_quota = :quota, #rl_window = :window", quota=rate_limit[0], window=rate_limit[1]
        )
    return change.require(WORKSPACE.exists())


def decoded(raw: dict[str, Any]) -> tuple[str, str, tuple[int, int] | None]:
    """(name, default visibility, rate limit as (quota, window) or None)."""
    fields = {name: decode(cell) for name, cell in raw.items()}
    quota = fields.get("rl_quota")
    rate_limit = (quota, fields["rl_window"]) if quota else None
    return fields["workspace"], fields.get("dv") or "private", rate_limit
