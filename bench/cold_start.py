"""Cold start: median time to import each handler module and create its DynamoDB client (what
its first request pays before any work) in a fresh interpreter,
against the floor every boto3 function pays (`import boto3; boto3.client("dynamodb")`), measured
in the same run, each handler paired with a floor run. A benchmark, not a test.

    .venv/bin/python bench/cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a script run from anywhere: find tally_local

from tally_local.template import Template  # noqa: E402

FLOOR = 'import boto3; boto3.client("dynamodb")'


def _probe(code: str, env: dict[str, str]) -> float:
    """CPU seconds to run `code` in a fresh interpreter, timed inside it (Python's own startup
    excluded; CPU time, not wall time, so that other load on the machine does not count)."""
    wrapped = f"import time; t = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", wrapped], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _handler_code(fn) -> str:
    module = fn.handler.rsplit(".", 1)[0]
    # As Lambda does: the function's code directory on the path, then import the handler module;
    # then what its first request adds before any work: the DynamoDB client (created lazily).
    return (
        f"import sys; sys.path.insert(0, {str(fn.code_uri)!r}); import {module}\n"
        "from tally import aws; aws.dynamodb()"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    template = Template()
    env = {
        **os.environ,
        **template.environment(),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
    }
    floor = statistics.median(_probe(FLOOR, env) for _ in range(args.runs))
    rows = []
    for fn in sorted(template.functions.values(), key=lambda f: f.logical_id):
        median = statistics.median(_probe(_handler_code(fn), env) for _ in range(args.runs))
        rows.append((fn.logical_id, median))
    print(f"floor (import boto3 + DynamoDB client): {floor * 1000:.0f} ms, median of {args.runs}")
    print("| function | import + init | x floor |")
    print("| --- | ---: | ---: |")
    for name, median in rows:
        print(f"| {name} | {median * 1000:.0f} ms | {median / floor:.2f} |")
    print(
        json.dumps(
            {"floor_ms": round(floor * 1000), "worst": round(max(m for _, m in rows) / floor, 2)}
        )
    )


if __name__ == "__main__":
    main()
