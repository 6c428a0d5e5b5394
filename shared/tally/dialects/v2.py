"""CounterAPI V2 dialect: {"code": "200", "data": {...}} and {"code": "<status>", "message"}."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tally import clock
from tally.counters import Counter
from tally.errors import TallyError


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


def target(request: Any) -> tuple[str, str]:
    """The (workspace, counter name) of a /v2/{workspace}/{name}/... request, validated."""
    from tally import names

    params = request.path_params
    return names.workspace(params.get("workspace")), names.counter(params.get("name"))
