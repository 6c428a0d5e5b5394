"""Write cost: the write units each of tally's writes consumes, as DynamoDB Local counts them
(ReturnConsumedCapacity, asked by this script only), beside the size of the largest counter
item computed by DynamoDB's item-size rules (DynamoDB bills an UpdateItem per started 1 KB of
the larger of the item before and after, each index the write touches too, and a transaction
twice). A benchmark, not a test.

DynamoDB Local needs Java 17+ and `make dynamodb-local`; without it (or with --moto) only the
size is computed, on moto, whose consumed capacity follows none of these rules.

    .venv/bin/python bench/write_cost.py [--moto]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from common import ADMIN, in_process_api


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


def densified(item: dict) -> dict:
    """The item with each number's digits all significant (1,998,740,017 for 1,998,740,000), the
    same length: DynamoDB stores a number in 1 byte per two significant digits, so round totals
    are smaller than real ones."""
    return {
        name: {"N": re.sub(r"[0-9]", "7", value["N"])} if "N" in value else value
        for name, value in item.items()
    }


def largest_counter(units: list | None) -> tuple[dict, list]:
    """The heaviest counter validation allows: the longest names and descriptions, settings of
    every kind, and a busy year of changes. The item, and what one more change consumed."""
    from tally import bodies, counter_settings, counters

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
    # Every tenth day of the year (every weekday and quarter), two hours each (every hour), up
    # and down: every stats bucket filled, each total near 2e9 after 148 changes.
    for i, day in enumerate(range(0, 365, 10)):
        for hour in (i % 24, (i + 12) % 24):
            at = start + timedelta(days=day, hours=hour)
            counters.change(workspace, name, 27_380_000, now=at)
            counters.change(workspace, name, -13_690_000, now=at)
    if units is not None:
        units.pop()
    counters.change(workspace, name, 1, now=start + timedelta(days=364, hours=23))
    return counters.get(workspace, name).stored.raw, units.pop() if units is not None else []


def operations(call: Callable, units: list) -> list[tuple[str, list]]:
    """(operation, its writes) for each kind of write tally makes, through the API. Each request
    is measured on a path its container has seen (warm), but for the rows that show what a new
    path adds: a token from the key's bucket of new paths."""
    from tally import billing

    rows = []

    def measure(label: str, action: Callable[[], object]) -> None:
        units.pop()
        action()
        rows.append((label, units.pop()))

    def request(label: str, method: str, path: str, bearer: str, body=None, *, warm=True):
        send = lambda: call(method, path, bearer, body() if callable(body) else body)  # noqa: E731
        if warm:
            send()
        measure(label, send)

    names = iter(f"w{i}" for i in range(100))
    request(
        "POST /admin/workspaces: the workspace and its first key, one transaction",
        *("POST", "/admin/workspaces", ADMIN, lambda: {"workspace": next(names)}),
    )
    key = call("POST", "/admin/workspaces", ADMIN, {"workspace": "acme"})[1]["api_key"]
    request("POST /account/api-keys", "POST", "/account/api-keys", key, {"scopes": ["read"]})
    request(
        "GET /v2/acme/c/up: a new counter, on a path new to the container",
        *("GET", "/v2/acme/c/up", key),
        warm=False,
    )
    request("GET /v2/acme/c/up: a change", "GET", "/v2/acme/c/up", key)
    request("POST /account/counters/c/1: a change", "POST", "/account/counters/c/1", key)
    measure(
        "GET /v2/acme/c/up with a new Idempotency-Key: claim, change, answer stored",
        lambda: call("GET", "/v2/acme/c/up", key, headers={"Idempotency-Key": "once"}),
    )
    billed = {"billing": {"threshold": 100, "amount": 7, "description": "per 100"}}
    request("PUT /account/counters/c/settings", "PUT", "/account/counters/c/settings", key, billed)
    call("POST", "/account/counters/c/90", key)
    streamed = _stream_reader()
    streamed()
    request(
        "POST /account/counters/c/90: the change that reaches the threshold",
        *("POST", "/account/counters/c/90", key),
        warm=False,
    )
    measure("CounterStreamFunction: its history buckets and the counter's billing mark", streamed)
    measure("billing run: one counter billed, reading its mark (a transaction)", billing.run)
    measure("CounterStreamFunction: the billing's history, the mark dropped", streamed)
    invoice = {"amount": 500, "description": "setup fee"}
    request("POST /account/invoice-items", "POST", "/account/invoice-items", key, invoice)
    doomed = call("POST", "/account/api-keys", key, {"scopes": ["read"]})[1]["key_id"]
    request(
        "DELETE /account/api-keys/{id}: one transaction (each id is a new path)",
        *("DELETE", f"/account/api-keys/{doomed}", key),
        warm=False,
    )
    limit = {"quota": 1000, "window": 60}
    request(
        "PUT /admin/workspaces/acme/rate-limit",
        *("PUT", "/admin/workspaces/acme/rate-limit", ADMIN, limit),
    )
    return rows


def _stream_reader() -> Callable[[], None]:
    """Hand the counters' stream records not yet handed to CounterStreamFunction, as Lambda."""
    import boto3

    from tally import aws
    from tally_local.gateway import LambdaContext
    from tally_local.streams import read_all
    from tally_local.template import Template

    function = Template().functions["CounterStreamFunction"]
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    streams = boto3.client(  # moto answers on the classic endpoint only
        "dynamodbstreams",
        endpoint_url=endpoint or "https://streams.dynamodb.us-east-1.amazonaws.com",
    )
    done = [0]

    def deliver() -> None:
        records = read_all(aws.dynamodb(), streams, "CountersTable")[done[0] :]
        done[0] += len(records)
        if records:
            function.load()({"Records": records}, LambdaContext(function))

    return deliver


def described(writes: list) -> str:
    return " + ".join(
        f"{table} {units:g}" + (" (transaction)" if op == "TransactWriteItems" else "")
        for op, table, units in writes
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--moto", action="store_true", help="compute the size on moto; no consumed capacity"
    )
    args = parser.parse_args(argv)

    from tally_local import dynamodb_local

    local, reason = None, None
    if not args.moto:
        reason = dynamodb_local.unavailable_reason()  # said in the table: the size only, on moto
        if not reason:
            local = dynamodb_local.DynamoDBLocal()
    try:
        endpoint = local.start() if local else None
        # Powertools prints EMF lines once 100 metrics pile up, even with metrics disabled.
        with contextlib.redirect_stdout(io.StringIO()), in_process_api(endpoint) as (call, _):
            from tally import aws

            units = dynamodb_local.record_write_units(aws.dynamodb()) if local else None
            rows = operations(call, units) if units is not None else []
            item, consumed = largest_counter(units)
            dense_consumed = []
            if units is not None:  # the dense item written whole, beside it: what it consumes
                from tally.config import settings

                twin = {**densified(item), "counter": {"S": "d" * 128}}
                aws.dynamodb().put_item(TableName=settings().counters_table, Item=twin)
                dense_consumed = units.pop()
    finally:
        if local:
            local.stop()

    size, dense = item_size(item), item_size(densified(item))
    print(
        "| the largest counter item after a year (every bucket, ~1e9 per total, all settings) | bytes |"
    )
    print("| --- | ---: |")
    print(f"| attributes | {len(item)} |")
    print(f"| item size (this run's totals: multiples of 10,000) | {size} |")
    print(f"| write units per change (ceil(size / 1 KB)) | {math.ceil(size / 1024)} |")
    if local:
        print(
            f"| write units per change, consumed on DynamoDB Local | {sum(u for *_, u in consumed):g} |"
        )
    print(f"| headroom left under 1 KB | {1024 - size} |")
    print(f"| item size with every digit of every number significant | {dense} |")
    print(f"| write units per change then (ceil(size / 1 KB)) | {math.ceil(dense / 1024)} |")
    if local:
        print(
            "| write units to put that item, consumed on DynamoDB Local | "
            f"{sum(u for *_, u in dense_consumed):g} |"
        )
    if not local:
        why = reason if not args.moto else "--moto"
        print(f"| consumed write units | not measured ({why}) |")
    if rows:
        print()
        print(
            "| operation (DynamoDB Local, ReturnConsumedCapacity) | writes: table, units | write units |"
        )
        print("| --- | --- | ---: |")
        for label, writes in rows:
            print(f"| {label} | {described(writes)} | {sum(u for *_, u in writes):g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
