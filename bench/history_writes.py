"""History writes per 1,000 changes at the template's batching (BatchSize 1,000, a 5 s window):
changes are made on moto by tally's own change (counters.change, what every up and down runs),
their stream records read back and handed to CounterStreamFunction in the batches Lambda would
form at a given arrival rate. A benchmark, not a test.

    .venv/bin/python bench/history_writes.py [--changes 250] [--counters 1 100] [--rates 50]

A batch holds min(1,000, rate x 5 s) records, and costs 3 writes (hour, day, month) for each
counter it touches. The README's table: --changes 1000 --counters 1 10 100 1000 --rates 50 500.
"""

from __future__ import annotations

import argparse

from common import in_process_api

BATCH_SIZE, WINDOW_S = 1000, 5


def records_of(client) -> list[dict]:
    import boto3

    from tally_local.streams import read_all

    streams = boto3.client(  # moto answers on the classic endpoint only
        "dynamodbstreams",
        region_name="us-east-1",
        endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com",
    )
    return read_all(client, streams, "CountersTable")


def measure(counters: int, changes: int, rates: list[float]) -> list[tuple[float, int, int, int]]:
    """(rate, records per batch, batches, history writes) for `changes` changes spread over
    `counters` counters, at each arrival rate: the same changes, batched as that rate makes."""
    from tally import aws
    from tally import counters as domain
    from tally_local import dynamodb
    from tally_local.gateway import LambdaContext
    from tally_local.template import Template

    template = Template()
    with in_process_api() as (_, client):
        for n in range(changes):
            domain.change("bench", f"c{n % counters}", +1)
        records = [r for r in records_of(client) if "v" in r["dynamodb"].get("NewImage", {})]
        fn = template.functions["CounterStreamFunction"]
        handler = fn.load()
        writes: list[str] = []
        aws.dynamodb().meta.events.register(
            "before-parameter-build.dynamodb.UpdateItem",
            lambda params, **_: writes.append(params["TableName"]),
        )
        rows = []
        for rate in rates:
            client.delete_table(TableName="HistoryTable")  # each rate on empty buckets
            dynamodb.ensure_tables(client, template)
            writes.clear()
            per_batch = max(1, min(BATCH_SIZE, int(rate * WINDOW_S)))
            batches = [records[i : i + per_batch] for i in range(0, len(records), per_batch)]
            for batch in batches:
                assert handler({"Records": batch}, LambdaContext(fn))["batchItemFailures"] == []
            rows.append((rate, per_batch, len(batches), writes.count("HistoryTable")))
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--changes", type=int, default=250, help="changes per row, within one hour (250)"
    )
    parser.add_argument(
        "--counters",
        type=int,
        nargs="+",
        default=[1, 100],
        help="how many counters the changes are spread over, one row each (1 100)",
    )
    parser.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[50],
        help="arrival rates, changes/s, one row each (50)",
    )
    args = parser.parse_args()
    print(
        "| counters | changes/s | records per batch | batches | history writes | per 1,000 changes |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for counters in args.counters:
        for rate, per_batch, batches, writes in measure(counters, args.changes, args.rates):
            per = writes * 1000 / args.changes
            print(
                f"| {counters} | {rate:g} | {per_batch} | {batches} | {writes} | {per:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
