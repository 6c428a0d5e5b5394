"""Local throughput: requests per second and latency of `tally serve` for `up` under 16
concurrent connections, with the embedded DynamoDB endpoint. A benchmark, not a test.

    .venv/bin/python bench/throughput.py [--seconds 30] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, method: str = "GET", key: str | None = None, body=None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, json.loads(answer.read())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    port, ddb_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["TALLY_ADMIN_TOKEN"] = admin = "bench"
    log = open(os.devnull, "w")  # noqa: SIM115
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("tally")),
            "serve",
            "--port",
            str(port),
            "--dynamodb-port",
            str(ddb_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                _call(base + "/nowhere")
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.05)
        _, made = _call(base + "/admin/workspaces", "POST", admin, {"workspace": "bench"})
        key = made["api_key"]
        _call(
            base + "/admin/workspaces/bench/rate-limit",
            "PUT",
            admin,
            {"quota": 1_000_000, "window": 60},
        )
        latencies: list[float] = []
        errors = [0]
        stop = time.monotonic() + args.seconds

        def worker() -> None:
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    _call(base + "/v2/bench/hits/up", key=key)
                    latencies.append(time.perf_counter() - started)
                except OSError:
                    errors[0] += 1

        threads = [threading.Thread(target=worker) for _ in range(args.connections)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        value = _call(base + "/v2/bench/hits", key=key)[1]["data"]["value"]
    finally:
        server.terminate()
        server.wait(timeout=10)
    cuts = statistics.quantiles(latencies, n=100)
    print("| connections | seconds | requests | req/s | p50 | p99 | errors | counter |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.connections} | {elapsed:.1f} | {len(latencies)} | {len(latencies) / elapsed:.0f} "
        f"| {cuts[49] * 1000:.1f} ms | {cuts[98] * 1000:.1f} ms | {errors[0]} | {value} |"
    )


if __name__ == "__main__":
    main()
