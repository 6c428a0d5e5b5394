"""The one clock. Tests move time by patching `tally.clock.now`."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def now_us() -> int:
    return int(now().timestamp() * 1_000_000)
