"""The cost of one million `up` calls on AWS, from measured figures and public list prices.
A benchmark, not a test.

    .venv/bin/python bench/cost.py [--dynamodb-ms 5]

Measured here: the handler's own compute per warm `up` (moto's time excluded: DynamoDB calls are
timed at the client and subtracted), the DynamoDB calls and write units per `up`
(bench/dynamodb_calls.py, bench/write_cost.py). Assumed: DynamoDB's latency per call
(--dynamodb-ms; AWS quotes single-digit milliseconds).
"""

from __future__ import annotations

import argparse
import time

from common import ADMIN, in_process_api

# AWS list prices, us-east-1, as published in 2025 (this machine cannot reach the web to check
# them again; see aws.amazon.com/lambda/pricing, /api-gateway/pricing, /dynamodb/pricing/on-demand,
# /cloudwatch/pricing, /xray/pricing).
LAMBDA_REQUEST = 0.20 / 1e6  # per invocation
LAMBDA_ARM_GB_S = 0.0000133334  # per GB-second, arm64
HTTP_API_REQUEST = 1.00 / 1e6  # first 300 M a month
DYNAMODB_WRITE_UNIT = 0.625 / 1e6  # on-demand, per write request unit (after Nov 2024 cut)
LOGS_PER_GB = 0.50  # CloudWatch Logs ingestion
XRAY_TRACE = 5.00 / 1e6  # per trace recorded
MEMORY_GB = 256 / 1024  # template.yaml Globals MemorySize
LOG_BYTES_PER_CALL = 700  # EMF line + Lambda START/END/REPORT lines
XRAY_SAMPLED = 0.05  # default sampling: 1 a second, then 5%


def measure_compute_ms(calls: int = 300) -> float:
    with in_process_api() as (call, _):
        from tally import aws

        _, made = call("POST", "/admin/workspaces", ADMIN, {"workspace": "cost"})
        key = made["api_key"]
        call("PUT", "/admin/workspaces/cost/rate-limit", ADMIN, {"quota": 10**6, "window": 60})
        spent = [0.0]
        started: dict[int, float] = {}
        events = aws.dynamodb().meta.events
        events.register(
            "before-call.dynamodb.*", lambda **kw: started.__setitem__(0, time.perf_counter())
        )
        events.register(
            "after-call.dynamodb.*",
            lambda **kw: spent.__setitem__(0, spent[0] + time.perf_counter() - started[0]),
        )
        for _ in range(20):
            call("GET", "/v2/cost/c/up", key)  # warm
        spent[0] = 0.0
        begin = time.perf_counter()
        for _ in range(calls):
            call("GET", "/v2/cost/c/up", key)
        total = time.perf_counter() - begin
        return (total - spent[0]) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dynamodb-ms",
        type=float,
        default=5.0,
        help="DynamoDB's latency per call, assumed (default 5)",
    )
    args = parser.parse_args()
    compute_ms = measure_compute_ms()
    duration_ms = compute_ms + 2 * args.dynamodb_ms  # two calls: the bucket and the counter
    million = 1e6
    rows = [
        ("Lambda requests ($0.20 / M)", million * LAMBDA_REQUEST),
        (
            f"Lambda duration ({duration_ms:.1f} ms: {compute_ms:.1f} ms measured compute + "
            f"2 calls x {args.dynamodb_ms:g} ms assumed, at 256 MB arm64, "
            f"${LAMBDA_ARM_GB_S:.10f} / GB-s)",
            million * duration_ms / 1000 * MEMORY_GB * LAMBDA_ARM_GB_S,
        ),
        ("HTTP API requests ($1.00 / M)", million * HTTP_API_REQUEST),
        (
            "DynamoDB writes (2 write units: bucket + counter, $0.625 / M)",
            2 * million * DYNAMODB_WRITE_UNIT,
        ),
        (
            "CloudWatch Logs (~0.7 KB a call, $0.50 / GB)",
            million * LOG_BYTES_PER_CALL / 1e9 * LOGS_PER_GB,
        ),
        ("X-Ray (5% sampled, $5.00 / M traces)", million * XRAY_SAMPLED * XRAY_TRACE),
    ]
    print("| one million `up` calls | USD |")
    print("| --- | ---: |")
    for name, usd in rows:
        print(f"| {name} | {usd:.2f} |")
    print(f"| **total** | **{sum(u for _, u in rows):.2f}** |")


if __name__ == "__main__":
    main()
