"""Counter settings ("set up in the dashboard"): visibility, description, bounds, billing,
alerts.

They live on the counter's own item, so a change checks its bounds in the same atomic write.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tally import aws, clock, counters
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
    update = stored.settings(change, clock.now_ms())
    try:
        answer = (client or aws.dynamodb()).update_item(
            TableName=settings().counters_table,
            Key=stored.key(workspace, name),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **update.params(),
        )
    except ClientError as err:
        if not aws.condition_failed(err):
            raise
        value = stored.item(err.response.get("Item")).value
        raise Conflict(
            f"the new bounds would exclude the counter's value {value} or cross its other bound",
            fields={"lower_bound" if "lower_bound" in change else "upper_bound": "violated"},
        ) from err
    item = stored.item(answer["Attributes"])
    return read(counters.Counter(workspace, name, item), default_visibility)
