"""The template's Schedule events, fired by `tally serve` as EventBridge would."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from tally_local import logline
from tally_local.gateway import invoke
from tally_local.template import ACCOUNT, REGION, Function

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def interval_of(expression: str) -> float | None:
    """Seconds between runs of `rate(N unit)`; None for cron(...), which serve does not fire."""
    found = re.fullmatch(r"rate\((\d+) (\w+)\)", expression.strip())
    if not found or found.group(2) not in _UNITS:
        return None
    return int(found.group(1)) * _UNITS[found.group(2)]


def scheduled_event(fn: Function) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{fn.logical_id}Schedule"],
        "detail": {},
    }


class Scheduler:
    """One thread per scheduled function; runs of one function never overlap."""

    def __init__(self, functions: list[Function], override_s: float | None, log: Any = sys.stderr):
        self.plan = []
        for fn in functions:
            for expression in fn.schedules:
                interval = override_s or interval_of(expression)
                if interval is None:
                    print(
                        f"tally serve: {fn.logical_id}: {expression} is not fired locally "
                        "(use --schedule-interval)",
                        file=log,
                        flush=True,
                    )
                    continue
                self.plan.append((fn, interval))
        self.log = log
        self.stopping = threading.Event()

    def start(self) -> None:
        for fn, interval in self.plan:
            threading.Thread(target=self._loop, args=(fn, interval), daemon=True).start()

    def describe(self) -> str:
        return ", ".join(f"{fn.logical_id} every {interval:g}s" for fn, interval in self.plan)

    def _loop(self, fn: Function, interval: float) -> None:
        while not self.stopping.wait(interval):
            started = time.perf_counter()
            try:
                result = json.dumps(invoke(fn, scheduled_event(fn)), default=str)
            except Exception as err:  # a failed run is reported, and the schedule goes on
                result = f"failed: {err!r}"
            elapsed = (time.perf_counter() - started) * 1000
            logline.write(self.log, f"schedule {fn.logical_id} {result} {elapsed:.1f}ms")

    def stop(self) -> None:
        self.stopping.set()
