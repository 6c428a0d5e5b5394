"""Counter settings ("set up in the dashboard"): visibility, description, bounds, billing.

They live on the counter's own item, so a change checks its bounds in the same atomic write.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tally import aws, clock, counters
from tally.config import settings
from tally.errors import Conflict
from tally.names import INT64_MAX, INT64_MIN


def read(counter: counters.Counter | None, default_visibility: str = "private") -> dict[str, Any]:
    """The settings as the API shows them: `visibility` is what applies (the counter's own, else
    its workspace's default)."""
    item = counter.item if counter else {}
    counter = counters.Counter("", "", item, default_visibility)

    def number(attr: str) -> int | None:
        return int(item[attr]["N"]) if attr in item else None

    billing = None
    if "bt" in item:
        billing = {
            "threshold": number("bt"),
            "amount": number("ba"),
            "description": item["bd"]["S"],
        }
    return {
        "visibility": counter.visibility,
        "description": item.get("desc", {}).get("S", ""),
        "lower_bound": number("lo"),
        "upper_bound": number("hi"),
        "billing": billing,
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
    given = change.keys()
    update = counters.Update()
    removes: list[str] = []
    if "visibility" in given and change["visibility"] is None:
        removes.append("#vis")
    elif "visibility" in given:
        update.set("#vis = :vis", vis=change["visibility"])
    if "description" in given:
        update.set("#desc = :desc", desc=change["description"] or "")
    if "billing" in given:
        billing = change["billing"]
        if billing is None:
            removes += ["#bt", "#ba", "#bd", "#due"]
        else:
            update.set(
                "#bt = :bt, #ba = :ba, #bd = :bd",
                bt=billing["threshold"],
                ba=billing["amount"],
                bd=billing["description"],
            )
    # Each new bound comes with the room the change path checks (ru = hi - v, rd = v - lo),
    # computed by DynamoDB from the value it holds at that moment.
    if "upper_bound" in given:
        hi = change["upper_bound"]
        if hi is None:
            removes.append("#hi")
            update.set("#ru = :max - if_not_exists(#v, :zero)", max=INT64_MAX, zero=0)
        else:
            update.set("#hi = :hi, #ru = :hi - if_not_exists(#v, :zero)", hi=hi, zero=0)
            update.require(_holds("#v <= :hi", zero_ok=hi >= 0))
            if "lower_bound" not in given:  # never below the lower bound already stored
                update.require("(attribute_not_exists(#lo) OR #lo <= :hi)")
    if "lower_bound" in given:
        lo = change["lower_bound"]
        if lo is None:
            removes.append("#lo")
            update.set("#rd = if_not_exists(#v, :zero) - :min", min=INT64_MIN, zero=0)
        else:
            update.set("#lo = :lo, #rd = if_not_exists(#v, :zero) - :lo", lo=lo, zero=0)
            update.require(_holds("#v >= :lo", zero_ok=lo <= 0))
            if "upper_bound" not in given:  # never above the upper bound already stored
                update.require("(attribute_not_exists(#hi) OR #hi >= :lo)")
    update.set("#ca = if_not_exists(#ca, :now)", now=clock.now_ms())
    update.remove(*removes)
    try:
        answer = (client or aws.dynamodb()).update_item(
            TableName=settings().counters_table,
            Key=counters.key(workspace, name),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **update.params(),
        )
    except ClientError as err:
        if not aws.condition_failed(err):
            raise
        value = int(err.response.get("Item", {}).get("v", {}).get("N", "0"))
        raise Conflict(
            f"the new bounds would exclude the counter's value {value} or cross its other bound",
            fields={"lower_bound" if "lower_bound" in given else "upper_bound": "violated"},
        ) from err
    counters.mark_if_due(workspace, name, answer["Attributes"], client=client)
    return read(counters.Counter(workspace, name, answer["Attributes"]), default_visibility)


def _holds(check: str, *, zero_ok: bool) -> str:
    """The bound holds for the stored value; a counter never changed has the value 0."""
    if zero_ok:
        return f"(attribute_not_exists(#v) OR {check})"
    return f"(attribute_exists(#v) AND {check})"
