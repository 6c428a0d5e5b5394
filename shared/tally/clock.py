"""The one clock. Tests move time by patching `tally.clock.now`."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def now_ms() -> int:
    return int(now().timestamp() * 1000)


def now_us() -> int:
    return int(now().timestamp() * 1_000_000)


def iso(moment: datetime | None = None) -> str:
    """`moment` (now by default) as every answer shows a time: UTC, milliseconds, a Z."""
    return (moment or now()).isoformat(timespec="milliseconds").replace("+00:00", "Z")
