"""Request bodies checked against tally.bodies; a failure is a 400 naming each bad field."""

from __future__ import annotations

from typing import Any

from tally.errors import BadRequest


def parse(schema: Any, data: Any) -> dict[str, Any]:
    """`data` validated by `schema` (a tally.bodies validator), or a 400 naming each bad field."""
    from pydantic_core import ValidationError  # imported with the schemas: body parsers only

    try:
        return schema.validate_python(data)
    except ValidationError as err:
        fields = {
            ".".join(str(part) for part in error["loc"]) or "body": error["msg"]
            for error in err.errors(include_url=False)
        }
        raise BadRequest("the request body is invalid", fields=fields) from None


def known_fields(data: dict[str, Any], *names: str) -> dict[str, Any]:
    """Refuse fields the call does not take, naming each, as the schemas' extra="forbid" does."""
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise BadRequest(
            "the request body is invalid",
            fields={name: "Extra inputs are not permitted" for name in unknown},
        )
    return data
