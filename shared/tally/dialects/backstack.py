"""Backstack account dialect: {"error": {"type", "code", "message", "fields"}}."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tally import counter_settings, names
from tally.errors import BadRequest, TallyError


def error_body(err: TallyError) -> dict[str, Any]:
    return {
        "error": {
            "type": err.kind,
            "code": err.status,
            "message": err.message,
            "fields": err.fields,
        }
    }


def counter_answer(name: str, value: int) -> tuple[int, dict[str, Any]]:
    return 200, {"id": name, "value": value}


def counter_details(counter: Any, now: datetime, *, settings: bool) -> dict[str, Any]:
    """What a dashboard's table shows of a counter: totals, today's usage, visibility; and with
    `settings` (an admin caller's) its bounds and billing, as its settings route shows them."""
    stats = counter.stats(now)
    details = {
        "value": counter.value,
        "up_count": counter.up_count,
        "down_count": counter.down_count,
        "today": stats["today"],
        "visibility": counter.visibility,
        "description": counter.description,
        "updated_at": counter.updated_at,
    }
    if settings:
        shown = counter_settings.read(counter, counter.default_visibility)
        details |= {name: shown[name] for name in ("lower_bound", "upper_bound", "billing")}
    return details


def page_params(request: Any) -> tuple[int, str | None]:
    """?limit=1..100 (default 50) and ?cursor= from the previous page's next_cursor."""
    raw = request.query.get("limit")
    limit = 50 if raw is None else names.int64(raw, "limit")
    if not 1 <= limit <= 100:
        raise BadRequest("limit must be between 1 and 100", fields={"limit": "1-100"})
    return limit, request.query.get("cursor") or None


def flag(request: Any, name: str) -> bool:
    """?name=true or ?name=false (absent: false); anything else is a 400 naming it."""
    raw = request.query.get(name, "false")
    if raw not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false", fields={name: "true or false"})
    return raw == "true"
