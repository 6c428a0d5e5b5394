"""Write cost of a change: the size of a counter item after a year of stats buckets, and the
write units one change therefore costs (DynamoDB bills an UpdateItem by the larger of the item
before and after, per started 1 KB). moto's ConsumedCapacity does not follow that rule, so the
size is computed here by DynamoDB's item-size rules. A benchmark, not a test.

    .venv/bin/python bench/write_cost.py
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from common import in_process_api


def attribute_size(value: dict) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":  # 1 byte per two significant digits, plus 1
        digits = Decimal(raw).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    raise ValueError(kind)


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def main() -> None:
    with in_process_api():
        from tally import bodies, counter_settings, counters

        # The heaviest counter validation allows: the longest names and descriptions, settings
        # of every kind, and a busy year of changes.
        workspace, name = "w" * 63, "c" * 128
        counter_settings.put(
            workspace,
            name,
            bodies.SETTINGS_CHANGE.validate_python(
                {
                    "visibility": "public",
                    "description": "d" * bodies.MAX_DESCRIPTION,
                    "lower_bound": -(2**62),
                    "upper_bound": 2**62,
                    "billing": {
                        "threshold": 1000,
                        "amount": 500,
                        "description": "b" * bodies.MAX_DESCRIPTION,
                    },
                }
            ),
        )
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for day in range(365):
            for hour in (day % 24, (day * 7) % 24):  # every hour bucket, up and down
                at = start + timedelta(days=day, hours=hour)
                counters.change(workspace, name, 2_738_000, now=at)
                counters.change(workspace, name, -1_369_000, now=at)
        item = counters.get(workspace, name).item
        size = item_size(item)
        print(
            "| the largest counter item after a year (every bucket, ~1e9 per total, all settings) | bytes |"
        )
        print("| --- | ---: |")
        print(f"| attributes | {len(item)} |")
        print(f"| item size | {size} |")
        print(f"| write units per change (ceil(size / 1 KB)) | {math.ceil(size / 1024)} |")
        print(f"| headroom left under 1 KB | {1024 - size} |")


if __name__ == "__main__":
    main()
