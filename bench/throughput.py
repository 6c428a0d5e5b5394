"""Local throughput: `up` requests per second through `tally serve` beside what its DynamoDB
endpoint does alone, both with 32 concurrent connections. A benchmark, not a test.

    .venv/bin/python bench/throughput.py [--seconds 20] [--connections 32] [--dynamodb moto]

Two figures per backend: the endpoint's own `UpdateItem ADD` calls/s (32 threads calling it
directly), and `up`/s through tally serve (32 connections, one key, one counter). A warm keyed
`up` makes 2 DynamoDB calls (its rate-limit bucket and the change, pinned by the cost tests), so
`up/s x 2 / endpoint calls/s` is the share of the endpoint's capacity that tally serve uses.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a script run from anywhere

from tally_local import dynamodb
from tally_local.dynamodb_local import DynamoDBLocal
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
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "errors": errors,
        "exact": value == ups,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--dynamodb",
        action="append",
        choices=["moto", "dynamodb-local"],
        help="the backend(s) to measure (default: both)",
    )
    args = parser.parse_args()
    print(f"{args.connections} connections, {args.seconds:g} s each")
    print(
        "| DynamoDB | endpoint ADD calls/s | `up`/s | (up/s x 2) / endpoint | p50 | p99 "
        "| non-200 | value = 200s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for backend in args.dynamodb or ["moto", "dynamodb-local"]:
        r = measure(backend, args.seconds, args.connections)
        print(
            f"| {r['backend']} | {r['endpoint']:.0f} | {r['ups']:.0f} | {r['ratio']:.2f} "
            f"| {r['p50']:.1f} ms | {r['p99']:.1f} ms | {r['errors']} "
            f"| {'yes' if r['exact'] else 'NO'} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
