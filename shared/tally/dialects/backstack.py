"""Backstack account dialect: {"error": {"type", "code", "message", "fields"}}."""

from __future__ import annotations

from typing import Any

from tally.errors import TallyError


def error_body(err: TallyError) -> dict[str, Any]:
    return {
        "error": {
            "type": err.kind,
            "code": err.status,
            "message": err.message,
            "fields": err.fields,
        }
    }
