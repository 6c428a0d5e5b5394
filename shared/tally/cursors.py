"""Page cursors: where a list's page ended, as an opaque string the caller gives back as
`cursor` for the next page.

A cursor names a position only, never a workspace: the list reads the workspace of the caller's
key, so a cursor given to one workspace reads nothing of another's. What a cursor holds is
bounded and checked field by field before it reaches DynamoDB (an empty or malformed key would
be DynamoDB's 400, not ours)."""

from __future__ import annotations

import base64
import json
import re

from tally.errors import BadRequest

MAX_LENGTH = 512  # the cursors this API gives are ~150 characters


def encode(**fields: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


def decode(cursor: str, rules: dict[str, re.Pattern[str]]) -> dict[str, str]:
    """The fields of a cursor this API gave, each matching its rule; anything else is a 400."""
    if len(cursor) > MAX_LENGTH:  # bounded before it is decoded or parsed (nesting included)
        raise _invalid()
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        fields = {name: str(plain[name]) for name in rules}
    except (ValueError, KeyError, TypeError) as err:
        raise _invalid() from err
    if not all(rule.fullmatch(fields[name]) for name, rule in rules.items()):
        raise _invalid()
    return fields


def _invalid() -> BadRequest:
    return BadRequest("cursor is not one this API gave", fields={"cursor": "invalid"})
