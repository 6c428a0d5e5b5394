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
    wrapped = f"import time; t = time.process_time()\n{code}\nprint(time.process_time() - t)"
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
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    template = Template()
    env = {
        **os.environ,
        **template.environment(),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "LAMBDA_TASK_ROOT": str(ROOT),  # as in Lambda (the Tracer would be active if sampled)
    }
    rows, floors = [], []
    for fn in sorted(template.functions.values(), key=lambda f: f.logical_id):
        # Floor and handler back to back, so that both see the same load on the machine.
        pairs = [(_probe(FLOOR, env), _probe(_handler_code(fn), env)) for _ in range(args.runs)]
        floors += [f for f, _ in pairs]
        # Import cost is CPU work that noise only adds to: each side's best is the stable figure.
        best = min(h for _, h in pairs) / min(f for f, _ in pairs)
        median = statistics.median(h / f for f, h in pairs)
        rows.append((fn.logical_id, min(h for _, h in pairs), best, median))
    print(
        f"floor (import boto3 + DynamoDB client): best {min(floors) * 1000:.0f} ms, "
        f"median {statistics.median(floors) * 1000:.0f} ms, of {len(floors)} runs"
    )
    print("| function | import + init (best) | x floor (best) | x floor (median of pairs) |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds, best, median in rows:
        print(f"| {name} | {seconds * 1000:.0f} ms | {best:.2f} | {median:.2f} |")
    print(json.dumps({"worst_best": round(max(r[2] for r in rows), 2)}))


if __name__ == "__main__":
    main()
