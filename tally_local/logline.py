"""tally serve's own log lines: every thread of it (requests, stream pollers, schedules, the
event bus) writes to one stream."""

from __future__ import annotations

from typing import Any


def write(log: Any, line: str) -> None:
    """`line` and its newline in one write, flushed. print() writes the text and the newline
    separately, so two threads printing at once could run their lines together: a request's line
    and a stream delivery's were once one line, under load."""
    log.write(line + "\n")
    log.flush()
