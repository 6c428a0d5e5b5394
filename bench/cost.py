"""The cost of one million `up` calls on AWS, for two callers, from measured figures, the
template's settings and public list prices. A benchmark, not a test.

    .venv/bin/python bench/cost.py [--dynamodb-ms 5] [--function-rps 50]

The callers (bench/common.py) run through the local gateway over moto, on simulated time:
  busy    one key, one path, 50 requests/s (its workspace allows 6,000 a minute)
  sparse  one key, 60 paths, each once a minute
Measured here, per warm `up`: the DynamoDB calls (counted as they are made, as
bench/dynamodb_calls.py shows them), the handler's CPU time (moto's subtracted), and the bytes
it logs (its EMF line as Powertools prints it; the sampled "invocation" line, measured by
writing it, times the template's TALLY_LOG_SAMPLE_RATE).
Read from template.yaml: MemorySize, Tracing, LoggingConfig.SystemLogLevel.
Assumed: DynamoDB's latency per call (--dynamodb-ms); Lambda's CPU share, memory / 1,769 MB of
a vCPU, with this machine's core standing for one (bench/lambda_memory.py measures it under a
CPU quota); the traffic of the function X-Ray samples (--function-rps); Lambda's START and
REPORT lines, when the template keeps them, as AWS documents their JSON shape (built here: no
Lambda runs on this machine).
"""

from __future__ import annotations

import argparse
import json
import math
import uuid

from common import CALLERS, ROOT, Measured, measure_caller

# AWS list prices, us-east-1, as published in 2025 (this machine cannot reach the web to check
# them again; see aws.amazon.com/lambda/pricing, /api-gateway/pricing, /dynamodb/pricing/on-demand,
# /cloudwatch/pricing, /xray/pricing).
LAMBDA_REQUEST = 0.20 / 1e6  # per invocation
LAMBDA_ARM_GB_S = 0.0000133334  # per GB-second, arm64
HTTP_API_REQUEST = 1.00 / 1e6  # first 300 M a month
DYNAMODB_WRITE_UNIT = 0.625 / 1e6  # on-demand, per write request unit (after the Nov 2024 cut)
DYNAMODB_READ_UNIT = 0.125 / 1e6  # on-demand, per read request unit
LOGS_PER_GB = 0.50  # CloudWatch Logs ingestion (standard class)
XRAY_TRACE = 5.00 / 1e6  # per trace recorded
VCPU_MB = 1769  # Lambda gives a function one vCPU at 1,769 MB, in proportion below
# Lambda's own sampling with active tracing (it cannot be set): the first request each second,
# then 5% of the rest.
XRAY_RESERVOIR_PER_S, XRAY_RATE = 1, 0.05


def template_settings() -> dict:
    from tally_local.template import Template

    doc = Template(ROOT / "template.yaml").doc
    function = doc["Globals"]["Function"]
    variables = function.get("Environment", {}).get("Variables", {})
    return {
        "memory_mb": int(function["MemorySize"]),
        "tracing": function.get("Tracing", "PassThrough"),
        "system_log_level": function.get("LoggingConfig", {}).get("SystemLogLevel", "INFO"),
        "log_sample_rate": float(variables.get("TALLY_LOG_SAMPLE_RATE") or 0),
    }


def platform_lines(memory_mb: int) -> list[str]:
    """Lambda's START and REPORT lines in the JSON log format (platform.start, platform.report,
    with active tracing's trace header), as AWS documents them, with ids of their real length."""
    request_id = str(uuid.uuid4())
    tracing = {
        "spanId": uuid.uuid4().hex[:16],
        "type": "X-Amzn-Trace-Id",
        "value": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};"
        f"Parent={uuid.uuid4().hex[:16]};Sampled=0",
    }
    time_ = "2026-11-24T01:02:03.456Z"
    start = {
        "time": time_,
        "type": "platform.start",
        "record": {"requestId": request_id, "version": "$LATEST", "tracing": tracing},
    }
    report = {
        "time": time_,
        "type": "platform.report",
        "record": {
            "requestId": request_id,
            "metrics": {
                "durationMs": 12.345,
                "billedDurationMs": 13,
                "memorySizeMB": memory_mb,
                "maxMemoryUsedMB": 88,
            },
            "tracing": tracing,
            "status": "success",
        },
    }
    return [json.dumps(line, separators=(",", ":")) for line in (start, report)]


def xray_share(tracing: str, function_rps: float) -> float:
    if tracing != "Active":
        return 0.0
    first = min(function_rps, XRAY_RESERVOIR_PER_S)
    return (first + XRAY_RATE * (function_rps - first)) / function_rps


def rows(measured: Measured, settings: dict, dynamodb_ms: float, function_rps: float) -> list:
    """(line, what it counts, USD) for one million `up`s of a caller."""
    memory = settings["memory_mb"]
    duration_ms = measured.handler_cpu_ms * VCPU_MB / memory + measured.dynamodb_calls * dynamodb_ms
    billed_ms = math.ceil(duration_ms)  # each invocation is billed by the started millisecond
    platform = (
        sum(len(line) for line in platform_lines(memory))
        if settings["system_log_level"] in ("INFO", "DEBUG")
        else 0
    )
    log_bytes = (
        measured.emf_and_warning_bytes
        + settings["log_sample_rate"] * measured.summary_bytes
        + platform
    )
    xray = xray_share(settings["tracing"], function_rps)
    bucket = measured.calls.get(("UpdateItem", "RateLimitsTable"), 0.0)
    million = 1e6
    return [
        ("Lambda requests", "", million * LAMBDA_REQUEST),
        (
            "Lambda duration (arm64)",
            f"{billed_ms} ms billed at {memory} MB",
            million * billed_ms / 1000 * memory / 1024 * LAMBDA_ARM_GB_S,
        ),
        ("HTTP API requests", "", million * HTTP_API_REQUEST),
        (
            "DynamoDB writes",
            f"{bucket:.2f} rate-limit + {measured.write_units - bucket:.2f} counter write units",
            million * measured.write_units * DYNAMODB_WRITE_UNIT,
        ),
        (
            "DynamoDB reads (keys, workspaces)",
            f"{measured.read_units:.3f} read units",
            million * measured.read_units * DYNAMODB_READ_UNIT,
        ),
        (
            "CloudWatch Logs",
            f"{log_bytes:.0f} bytes a call",
            million * log_bytes / 1e9 * LOGS_PER_GB,
        ),
        ("X-Ray", f"{xray:.1%} traced", million * xray * XRAY_TRACE),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dynamodb-ms", type=float, default=5.0, help="latency per call")
    parser.add_argument(
        "--function-rps",
        type=float,
        default=50.0,
        help="requests/s the up function serves in all (X-Ray's sampling depends on it)",
    )
    args = parser.parse_args()
    settings = template_settings()
    measured = {caller.name: measure_caller(caller) for caller in CALLERS}
    tables = {
        name: rows(m, settings, args.dynamodb_ms, args.function_rps) for name, m in measured.items()
    }
    print(
        f"template: {settings['memory_mb']} MB, Tracing {settings['tracing']}, "
        f"SystemLogLevel {settings['system_log_level']}, "
        f"TALLY_LOG_SAMPLE_RATE {settings['log_sample_rate']:g}; "
        f"DynamoDB assumed {args.dynamodb_ms:g} ms a call; "
        f"X-Ray at {args.function_rps:g} requests/s to the function"
    )
    for caller in CALLERS:
        m = measured[caller.name]
        print(
            f"{caller.name} ({caller.described}): {m.dynamodb_calls:.2f} DynamoDB calls, "
            f"handler CPU {m.handler_cpu_ms:.2f} ms (moto's excluded), log bytes: "
            f"{m.emf_and_warning_bytes:.0f} every call + {m.summary_bytes:.0f} when sampled"
        )
    names = [caller.name for caller in CALLERS]
    print(f"| one million `up` calls | {' | '.join(names)} |")
    print("| --- |" + " ---: |" * len(names))
    for i, (label, _, _) in enumerate(tables[names[0]]):
        cells = [tables[name][i] for name in names]
        shown = [f"{usd:.2f} ({what})" if what else f"{usd:.2f}" for _, what, usd in cells]
        print(f"| {label} | " + " | ".join(shown) + " |")
    totals = [sum(usd for _, _, usd in tables[name]) for name in names]
    print("| **total** | " + " | ".join(f"**{total:.2f}**" for total in totals) + " |")


if __name__ == "__main__":
    main()
