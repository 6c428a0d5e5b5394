"""Request bodies parsed by pydantic; a validation failure is a 400 naming each bad field."""

from __future__ import annotations

from typing import Any

from tally.errors import BadRequest


def parse(model: Any, data: dict[str, Any]) -> Any:
    """`model` (a tally.requests model) validated from `data`, or a 400 naming each bad field."""
    from pydantic import ValidationError  # imported with the models: only body-parsing handlers

    try:
        return model.model_validate(data)
    except ValidationError as err:
        fields = {
            ".".join(str(part) for part in error["loc"]) or "body": error["msg"]
            for error in err.errors(include_url=False)
        }
        raise BadRequest("the request body is invalid", fields=fields) from None


def known_fields(data: dict[str, Any], *names: str) -> dict[str, Any]:
    """Refuse fields the call does not take, naming each, as the models' extra="forbid" does."""
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise BadRequest(
            "the request body is invalid",
            fields={name: "Extra inputs are not permitted" for name in unknown},
        )
    return data
