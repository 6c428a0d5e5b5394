"""Validation of what callers name and send: workspaces, counters and signed 64-bit values."""

from __future__ import annotations

import re

from tally.errors import BadRequest

_WORKSPACE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_COUNTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def workspace(value: str | None, field: str = "workspace") -> str:
    if not isinstance(value, str) or not _WORKSPACE.fullmatch(value):
        raise BadRequest(
            f"{field} must match ^[a-z0-9][a-z0-9_-]{{0,62}}$",
            fields={field: "1-63 of a-z 0-9 _ -, starting with a letter or digit"},
        )
    return value


def counter(value: str | None, field: str = "name") -> str:
    if not isinstance(value, str) or not _COUNTER.fullmatch(value):
        raise BadRequest(
            f"{field} must match ^[A-Za-z0-9][A-Za-z0-9_.-]{{0,127}}$",
            fields={field: "1-128 of A-Z a-z 0-9 _ . -, starting with a letter or digit"},
        )
    return value


_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")


def int64(text: str | None, field: str) -> int:
    """A signed decimal integer within 64 bits; anything else (1.5, 1e3, 0x10, --1, '') is a 400."""
    if text is None or not _INTEGER.fullmatch(text):
        raise BadRequest(
            f"{field} must be a signed decimal integer such as 42 or -7 (no decimals, exponents "
            "or hex)",
            fields={field: "a signed 64-bit integer"},
        )
    number = int(text)
    if not INT64_MIN <= number <= INT64_MAX:
        raise BadRequest(f"{field} is outside signed 64-bit", fields={field: "out of range"})
    return number
