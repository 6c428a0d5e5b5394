"""Backstack account dialect: {"error": {"type", "code", "message", "fields"}}."""

from __future__ import annotations

from typing import Any

from tally import names
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


def page_params(request: Any) -> tuple[int, str | None]:
    """?limit=1..100 (default 50) and ?cursor= from the previous page's next_cursor."""
    raw = request.query.get("limit")
    limit = 50 if raw is None else names.int64(raw, "limit")
    if not 1 <= limit <= 100:
        raise BadRequest("limit must be between 1 and 100", fields={"limit": "1-100"})
    return limit, request.query.get("cursor") or None
