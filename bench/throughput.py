"""Local throughput: requests per second and latency of `tally serve` for `up` under 16
concurrent connections, with the embedded DynamoDB endpoint. A benchmark, not a test.

    .venv/bin/python bench/throughput.py [--seconds 30] [--connections 16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a script run from anywhere

from tests.serve import ADMIN, Server  # the end-to-end tests' server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), schedule_interval=None)
        try:
            _, made = server.call(
                "/admin/workspaces", method="POST", key=ADMIN, body={"workspace": "bench"}
            )
            key = made["api_key"]
            server.call(
                "/admin/workspaces/bench/rate-limit",
                method="PUT",
                key=ADMIN,
                body={"quota": 1_000_000, "window": 60},
            )
            latencies: list[float] = []
            errors = [0]
            stop = time.monotonic() + args.seconds

            def worker() -> None:
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    try:
                        status, _ = server.call("/v2/bench/hits/up", key=key)
                    except OSError:
                        status = 0
                    if status == 200:
                        latencies.append(time.perf_counter() - started)
                    else:
                        errors[0] += 1

            threads = [threading.Thread(target=worker) for _ in range(args.connections)]
            began = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - began
            value = server.call("/v2/bench/hits", key=key)[1]["data"]["value"]
        finally:
            server.stop()
    cuts = statistics.quantiles(latencies, n=100)
    print("| connections | seconds | requests | req/s | p50 | p99 | errors | counter |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.connections} | {elapsed:.1f} | {len(latencies)} | {len(latencies) / elapsed:.0f} "
        f"| {cuts[49] * 1000:.1f} ms | {cuts[98] * 1000:.1f} ms | {errors[0]} | {value} |"
    )


if __name__ == "__main__":
    main()
