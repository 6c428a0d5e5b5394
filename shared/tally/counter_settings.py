"""Counter settings ("set up in the dashboard"): visibility, description, bounds, billing,
alerts, shards.

They live on the counter's own item, so a change checks its bounds in the same atomic write. On a
sharded counter (or one a change shards) they are a global operation (tally.shards): the bounds
checked against the exact total, the room split again for them.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tally import aws, clock, counters, shards
from tally.config import settings
from tally.errors import Conflict
from tally.items import counter as stored


def read(counter: counters.Counter | None, default_visibility: str = "private") -> dict[str, Any]:
    """The settings as the API shows them: `visibility` is what applies (the counter's own, else
    its workspace's default)."""
    item = counter.stored if counter else stored.item(None)
    billing = item.billing
    return {
        "visibility": item.own_visibility or default_visibility,
        "description": item.description,
        "lower_bound": item.lower_bound,
        "upper_bound": item.upper_bound,
        "billing": (
            {"threshold": billing[0], "amount": billing[1], "description": billing[2]}
            if billing
            else None
        ),
        "alerts": item.alerts,
        "shards": item.shards,
    }


def put(
    workspace: str,
    name: str,
    change: dict[str, Any],
    *,
    default_visibility: str = "private",
    client: Any = None,
) -> dict:
    """Apply a settings change (a body validated by tally.bodies.SETTINGS_CHANGE: the fields
    given, `None` to clear; a cleared visibility follows the workspace's default) in one
    conditional UpdateItem: refused (409, nothing changed) if the counter's current value is
    outside the new bounds."""
    client = client or aws.dynamodb()
    now_ms = clock.now_ms()
    if "shards" in change or shards.known(workspace, name) > 1:
        done = _global(client, workspace, name, change, now_ms)
        if done is not None:
            return read(counters.Counter(workspace, name, done), default_visibility)
    update = stored.settings(change, now_ms)
    try:
        answer = client.update_item(
            TableName=settings().counters_table,
            Key=stored.key(workspace, name),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **update.params(),
        )
    except ClientError as err:
        if not aws.condition_failed(err):
            raise
        if update.refusal(err.response.get("Item")) is stored.Refusal.SHARDED:
            shards.learn(workspace, name, stored.item(err.response.get("Item")).shards)
            return put(
                workspace, name, change, default_visibility=default_visibility, client=client
            )
        value = stored.item(err.response.get("Item")).value
        raise Conflict(
            f"the new bounds would exclude the counter's value {value} or cross its other bound",
            fields={"lower_bound" if "lower_bound" in change else "upper_bound": "violated"},
        ) from err
    item = stored.item(answer["Attributes"])
    return read(counters.Counter(workspace, name, item), default_visibility)


def _global(
    client: Any, workspace: str, name: str, change: dict[str, Any], now_ms: int
) -> stored.CounterItem | None:
    """A settings change as a global operation: the counter after it, or None if the counter is
    unsharded and stays so (the one UpdateItem above then does it)."""
    if change.get("shards") is None and "shards" in change:
        change = {**change, "shards": 1}
    outcome = shards.run(client, workspace, name, shards.Settings(change, now_ms))
    if outcome is None:
        shards.learn(workspace, name, 1)
        return None
    return outcome.item
