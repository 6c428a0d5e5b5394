"""The one clock. Tests move time by patching `tally.clock.now`."""

from __future__ import annotations

from dataclasses import dataclass
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


def iso_of_ms(epoch_ms: float) -> str:
    return iso(datetime.fromtimestamp(epoch_ms / 1000, UTC))


@dataclass(frozen=True)
class Moment:
    """The stats buckets one instant falls into (UTC): day yyyymmdd, ISO week yyyyww, hour of
    day, weekday (0 = Monday), quarter (1-4)."""

    epoch_ms: int
    day: int
    week: int
    hour: int
    weekday: int
    quarter: int

    @classmethod
    def of(cls, moment: datetime | None = None) -> Moment:
        moment = (moment or now()).astimezone(UTC)
        week = moment.isocalendar()
        return cls(
            epoch_ms=int(moment.timestamp() * 1000),
            day=moment.year * 10000 + moment.month * 100 + moment.day,
            week=week.year * 100 + week.week,
            hour=moment.hour,
            weekday=moment.weekday(),
            quarter=(moment.month - 1) // 3 + 1,
        )
