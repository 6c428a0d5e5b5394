"""Local throughput: `up` requests per second through `tally serve` beside what its DynamoDB
endpoint does alone, both with 32 concurrent connections. A benchmark, not a test.

    .venv/bin/python bench/throughput.py [--seconds 1.5] [--connections 32] [--dynamodb moto]

Per backend: the endpoint's own `UpdateItem ADD v :one` calls/s (32 threads calling it
directly); the same for the two calls a warm keyed `up` makes (its rate-limit bucket and the
change, pinned by the cost tests), sent directly with tally's own expressions; and `up`/s through
tally serve (32 connections, one key, one counter). `up/s x 2 / ADD calls/s` compares tally
serve with the simplest call; `up/s / (2 calls)/s` with what the endpoint can do for the very
calls an `up` needs: the share left to tally serve's own work.

The default (moto, 1.5 s a measure) takes about 10 s and is noisy; the README's table:
--seconds 15 --dynamodb moto --dynamodb dynamodb-local (about two minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a script run from anywhere

from tally.clock import Moment
from tally.items import bucket, counter
from tally_local import dynamodb
from tally_local.dynamodb_local import DynamoDBLocal, unavailable_reason
from tests.serve import ADMIN, Server  # the end-to-end tests' server

CALLS_PER_UP = 2


def _load(seconds: float, connections: int, call: Callable[[], bool]) -> tuple[int, int, list]:
    """Run `call` from `connections` threads for `seconds`: (successes, failures, latencies)."""
    latencies: list[float] = []
    failures = [0]
    stop = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                ok = call()
            except OSError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                failures[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies), failures[0], latencies


def _up_calls(client) -> Callable[[], bool]:
    """The two calls a warm keyed `up` makes, sent straight to the endpoint with tally's own
    expressions: a token from a rate-limit bucket, then the change (with its stamp)."""
    at = Moment.of()
    key = counter.key("bench", "pair")
    first = counter.change(1, at, "new_week", open_to=None)
    client.update_item(TableName="CountersTable", Key=key, **first.params())
    client.update_item(
        TableName="RateLimitsTable", Key=bucket.key("pair"), **bucket.start(0, 1, 2**40).params()
    )
    ops = itertools.count()

    def up() -> bool:
        take = bucket.take(0, 1, 2**62, 2**40)
        client.update_item(
            TableName="RateLimitsTable",
            Key=bucket.key("pair"),
            ReturnValues="UPDATED_NEW",
            **take.params(),
        )
        change = counter.change(1, at, "same_day", open_to=None)
        counter.stamp(change, f"op{next(ops)}", at.epoch_ms, 1000)
        client.update_item(
            TableName="CountersTable",
            Key=key,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **change.params(),
        )
        return True

    return up


def measure(backend: str, seconds: float, connections: int) -> dict:
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        endpoint = stack.enter_context(DynamoDBLocal()) if backend == "dynamodb-local" else None
        server = Server(Path(tmp), schedule_interval=None, endpoint=endpoint)
        try:
            client = dynamodb.client(server.ddb_endpoint)
            key = {"workspace": {"S": "bench"}, "counter": {"S": "direct"}}

            def add() -> bool:
                client.update_item(
                    TableName="CountersTable",
                    Key=key,
                    UpdateExpression="ADD v :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
                return True

            direct, _, _ = _load(seconds, connections, add)
            pairs, _, _ = _load(seconds, connections, _up_calls(client))
            _, made = server.call(
                "/admin/workspaces", method="POST", key=ADMIN, body={"workspace": "bench"}
            )
            secret = made["api_key"]
            server.call(
                "/admin/workspaces/bench/rate-limit",
                method="PUT",
                key=ADMIN,
                body={"quota": 1_000_000, "window": 60},
            )
            ups, errors, latencies = _load(
                seconds,
                connections,
                lambda: server.call("/v2/bench/hits/up", key=secret)[0] == 200,
            )
            value = server.call("/v2/bench/hits", key=secret)[1]["data"]["value"]
        finally:
            server.stop()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "backend": backend,
        "endpoint": direct / seconds,
        "ups": ups / seconds,
        "ratio": ups * CALLS_PER_UP / direct,
        "pairs": pairs / seconds,
        "of_pairs": ups / pairs,
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "errors": errors,
        "exact": value == ups,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=1.5, help="each of the 3 measures per backend (1.5)"
    )
    parser.add_argument("--connections", type=int, default=32, help="concurrent callers (32)")
    parser.add_argument(
        "--dynamodb",
        action="append",
        choices=["moto", "dynamodb-local"],
        help="a backend to measure, repeated for both (default: moto)",
    )
    args = parser.parse_args()
    backends = args.dynamodb or ["moto"]
    print(
        f"| DynamoDB ({args.connections} connections, {args.seconds:g} s each) "
        "| endpoint `ADD v :one`/s | endpoint: an up's 2 calls/s | `up`/s "
        "| (up/s x 2) / ADD/s | up/s / (2 calls)/s | p50 | p99 | non-200 | value = 200s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for backend in backends:
        reason = unavailable_reason() if backend == "dynamodb-local" else None
        if reason:
            print(f"| {backend}: not measured ({reason}) | | | | | | | | | |")
            continue
        r = measure(backend, args.seconds, args.connections)
        print(
            f"| {r['backend']} | {r['endpoint']:.0f} | {r['pairs']:.0f} | {r['ups']:.0f} "
            f"| {r['ratio']:.2f} | {r['of_pairs']:.2f} "
            f"| {r['p50']:.1f} ms | {r['p99']:.1f} ms | {r['errors']} "
            f"| {'yes' if r['exact'] else 'NO'} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
