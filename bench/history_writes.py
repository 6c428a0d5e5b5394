"""History writes per 1,000 changes at the template's batching (BatchSize 1,000, a 5 s window):
changes are made through the API on moto, their stream records read back and handed to
CounterStreamFunction in the batches Lambda would form at a given arrival rate. A benchmark,
not a test.

    .venv/bin/python bench/history_writes.py
"""

from __future__ import annotations

import argparse

from common import ADMIN, in_process_api

BATCH_SIZE, WINDOW_S, CHANGES = 1000, 5, 1000


def records_of(client) -> list[dict]:
    import boto3

    from tally_local.streams import read_all

    streams = boto3.client(  # moto answers on the classic endpoint only
        "dynamodbstreams",
        region_name="us-east-1",
        endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com",
    )
    return read_all(client, streams, "CountersTable")


def measure(counters: int, rate: float) -> tuple[int, int, int]:
    """(changes, batches, history writes) for CHANGES changes spread over `counters`."""
    from tally import aws
    from tally_local.gateway import LambdaContext
    from tally_local.template import Template

    with in_process_api() as (call, client):
        _, made = call("POST", "/admin/workspaces", key=ADMIN, body={"workspace": "bench"})
        key = made["api_key"]
        limit = {"quota": 1_000_000, "window": 60}
        call("PUT", "/admin/workspaces/bench/rate-limit", key=ADMIN, body=limit)
        for n in range(CHANGES):
            assert call("GET", f"/v2/bench/c{n % counters}/up", key=key)[0] == 200
        records = [r for r in records_of(client) if "v" in r["dynamodb"].get("NewImage", {})]
        fn = Template().functions["CounterStreamFunction"]
        handler = fn.load()
        writes = []
        aws.dynamodb().meta.events.register(
            "before-parameter-build.dynamodb.UpdateItem",
            lambda params, **_: writes.append(params["TableName"]),
        )
        per_batch = max(1, min(BATCH_SIZE, int(rate * WINDOW_S)))
        batches = [records[i : i + per_batch] for i in range(0, len(records), per_batch)]
        for batch in batches:
            assert handler({"Records": batch}, LambdaContext(fn))["batchItemFailures"] == []
        return len(records), len(batches), writes.count("HistoryTable")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    print(f"BatchSize {BATCH_SIZE}, window {WINDOW_S} s, {CHANGES} changes within one hour")
    print(
        "| counters | changes/s | records per batch | batches | history writes | per 1,000 changes |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for counters, rate in ((1, 50), (1, 500), (10, 50), (100, 50), (1000, 50)):
        changes, batches, writes = measure(counters, rate)
        per = writes * 1000 / changes
        size = min(BATCH_SIZE, int(rate * WINDOW_S))
        print(f"| {counters} | {rate} | {size} | {batches} | {writes} | {per:.0f} |", flush=True)


if __name__ == "__main__":
    main()
