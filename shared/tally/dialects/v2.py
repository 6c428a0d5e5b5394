"""CounterAPI V2 dialect: {"code": "200", "data": {...}} and {"code": "<status>", "message"}."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tally import badges, clock, counters, names
from tally.counters import Counter
from tally.documents import Document
from tally.errors import BadRequest, TallyError


def error_body(err: TallyError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": str(err.status), "message": err.message}
    if err.fields:
        body["fields"] = err.fields
    return body


def counter_data(counter: Counter) -> dict[str, Any]:
    return {
        "id": f"{counter.workspace}/{counter.name}",
        "name": counter.name,
        "workspace_slug": counter.workspace,
        "value": counter.value,
        "up_count": counter.up_count,
        "down_count": counter.down_count,
        "description": counter.description,
        "visibility": counter.visibility,
        "created_at": counter.created_at,
        "updated_at": counter.updated_at,
    }


def counter_answer(counter: Counter) -> tuple[int, dict[str, Any]]:
    return 200, {"code": "200", "data": counter_data(counter)}


def stats_answer(counter: Counter, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    data = counter_data(counter)
    data["stats"] = counter.stats(now or clock.now())
    return 200, {"code": "200", "data": data}


def takes_no_value(request: Any, route: str, does: str) -> None:
    """up, down, reset and the up badge change a counter by a fixed rule (`does`: "adds 1").
    `value` is set's parameter: sent to one of them (reset?value=5, read in CounterAPI's words
    as "sets a counter to a specific value"), it would be ignored and the counter changed
    otherwise than the caller meant. Refused instead, before anything changes, naming set."""
    if "value" in request.query:
        workspace, name = target(request)
        raise BadRequest(
            f"{route} {does} and takes no value: to set the counter to N, send "
            f"/v2/{workspace}/{name}/set?value=N (with a write key)",
            fields={"value": f"not taken by {route}"},
        )


def change(grant: Any, name: str, delta: int) -> Counter:
    """up, down and the up badge: a change anyone may make to a counter open to anyone."""

    return counters.change(
        grant.workspace,
        name,
        delta,
        refuse_private=grant.refusal,
        default_visibility=grant.default_visibility,
    )


def target(request: Any) -> tuple[str, str]:
    """The (workspace, counter name) of a /v2/{workspace}/{name}/... request, validated."""

    params = request.path_params
    return names.workspace(params.get("workspace")), names.counter(params.get("name"))


# ------------------------------------------------------------------ badges (image routes)

# Image proxies (GitHub's camo) and browsers would otherwise keep showing an old count.
NO_STORE = "no-cache, no-store, must-revalidate"
_SVG = "image/svg+xml"
_ERROR_MESSAGES = {
    401: "private",
    403: "forbidden",
    404: "not found",
    409: "conflict",
    422: "conflict",
    429: "rate limited",
}


def badge_look(request: Any, name: str) -> tuple[str, str | None]:
    """?label= (default: the counter's name) and ?color=, validated: a 400 names the bad one."""

    try:
        label = badges.label(request.query.get("label"), name)
    except ValueError as err:
        raise BadRequest(str(err), fields={"label": "1-64 printable characters"}) from None
    color = request.query.get("color")
    try:
        badges.color(color)
    except ValueError as err:
        raise BadRequest(str(err), fields={"color": "a shields.io colour name or hex"}) from None
    return label, color


def badge_answer(request: Any, counter: Counter) -> tuple[int, Any]:

    label, color = badge_look(request, counter.name)
    svg = badges.render_svg(label, badges.format_value(counter.value), badges.color(color))
    return 200, Document(_SVG, svg)


def badge_error(request: Any, err: TallyError) -> Any:
    """An image route's refusal, as an image (the status says what it is)."""

    try:
        label = badges.label(request.query.get("label"), request.path_params.get("name") or "")
    except ValueError:
        label = "counter"
    message = _ERROR_MESSAGES.get(err.status, "error" if err.status >= 500 else "bad request")
    return Document(_SVG, badges.render_svg(label, message, badges.color("lightgrey")))


def shield_answer(request: Any, counter: Counter) -> tuple[int, dict[str, Any]]:

    label, color = badge_look(request, counter.name)
    return 200, badges.shield_json(label, badges.format_value(counter.value), color)
