"""Request bodies checked against tally.bodies; a failure is a 400 naming each bad field."""

from __future__ import annotations

from typing import Any

from tally.errors import BadRequest

_UNKNOWN = "not a field of this call"


def parse(schema: Any, data: Any) -> dict[str, Any]:
    """`data` validated by `schema` (a tally.bodies validator), or a 400 naming each bad field."""
    from pydantic_core import ValidationError  # imported with the schemas: body parsers only

    try:
        return schema.validate_python(data)
    except ValidationError as err:
        fields = {
            ".".join(str(part) for part in error["loc"]) or "body": _UNKNOWN
            if error["type"] == "extra_forbidden"
            else error["msg"]
            for error in err.errors(include_url=False)
        }
        raise invalid(fields) from None


def known_fields(data: dict[str, Any], *names: str) -> dict[str, Any]:
    """Refuse fields the call does not take, naming each and the ones it takes."""
    unknown = sorted(set(data) - set(names))
    if unknown:
        takes = f"{_UNKNOWN}, which takes {', '.join(names)}"
        raise invalid(dict.fromkeys(unknown, takes))
    return data


def invalid(fields: dict[str, str]) -> BadRequest:
    """The 400 for a body with bad fields: each in `fields`, the first also in the message, so
    that a caller reading only the message knows what to fix."""
    first, why = next(iter(fields.items()))
    more = f" (and {len(fields) - 1} more in fields)" if len(fields) > 1 else ""
    return BadRequest(f"the request body is invalid: {first}: {why}{more}", fields=fields)
