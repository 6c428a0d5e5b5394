"""Billing run cost against the number of counters: seeds N billed counters of which n are due
(each due one with its mark, as CounterStreamFunction writes it), runs billing once, and prints
the items it read, its DynamoDB calls and the time it took. A benchmark, not a test.

    .venv/bin/python bench/billing.py [--sizes 100 200 400] [--due 50]

The README's table: --sizes 1000 2000 4000 --due 100 (minutes: moto's time grows with N times n).

Runs against moto in-process (timings are moto's, not DynamoDB's; the items read are what
DynamoDB would bill for).
"""

from __future__ import annotations

import argparse
import time

from common import in_process_api

THRESHOLD = 1000


def seed(client, total: int, due: int) -> None:
    batch, marks = [], []
    for i in range(total):
        is_due = i < due
        item = {
            "workspace": {"S": f"ws{i % 50:02d}"},
            "counter": {"S": f"c{i:06d}"},
            "v": {"N": str(THRESHOLD + 5 if is_due else i % THRESHOLD)},
            "ru": {"N": str(2**63 - 1)},
            "rd": {"N": str(2**63)},
            "bt": {"N": str(THRESHOLD)},
            "ba": {"N": "500"},
            "bd": {"S": "API calls over 1000"},
        }
        batch.append({"PutRequest": {"Item": item}})
        if is_due:
            fields = ("workspace", "counter", "v", "bt", "ba", "bd")
            mark = {name: item[name] for name in fields}
            marks.append({"PutRequest": {"Item": {**mark, "bu": {"N": "0"}}}})
    for table, items in (("CountersTable", batch), ("BillingDueTable", marks)):
        for start in range(0, len(items), 25):
            client.batch_write_item(RequestItems={table: items[start : start + 25]})


def measure(total: int, due: int) -> dict[str, float]:
    with in_process_api() as (_, client):
        from tally import billing

        seed(client, total, due)
        read = {"items": 0, "calls": 0}

        def count(parsed, model, **_):
            read["calls"] += 1
            if model.name in ("Query", "Scan"):
                read["items"] += parsed.get("Count", 0)
            elif model.name == "GetItem" and "Item" in parsed:
                read["items"] += 1

        client.meta.events.register("after-call.dynamodb.*", count)
        started = time.perf_counter()
        report = billing.run(client=client)
        elapsed = time.perf_counter() - started
        assert report.items_created == due, report.summary()
        return {"read": read["items"], "calls": read["calls"], "ms": elapsed * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[100, 200, 400],
        metavar="N",
        help="billed counters per run (default 100 200 400)",
    )
    parser.add_argument(
        "--due", type=int, default=50, help="of which due, at or past their threshold (50)"
    )
    args = parser.parse_args()
    print("| counters N | due n | items read | DynamoDB calls | run time (moto) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for total in args.sizes:
        figures = measure(total, args.due)
        print(
            f"| {total:,} | {args.due} | {figures['read']:,} | {figures['calls']:,} "
            f"| {figures['ms'] / 1000:.1f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
