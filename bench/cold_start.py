"""Cold start: the time to import each handler module and create its DynamoDB client (what its
first request pays before any work) in a fresh interpreter, against the floor every boto3
function pays (`import boto3; boto3.client("dynamodb")`), each handler run paired with a floor
run. A benchmark, not a test.

    .venv/bin/python bench/cold_start.py [--runs 3] [--all | --functions ID ...] [--from-source]

Everything is imported from the layer as `sam build` makes it (shared/Makefile, built here for
this machine's Python), the way Lambda sees it: the function's code and the layer first on the
path, and no bytecode written while it runs (Lambda's /opt is read-only). The floor uses the
same layer's boto3. `--from-source` strips the layer's bytecode from the handlers' side, as
`BuildMethod: python3.13` shipped it, to show what the bytecode saves.

By default two functions (the hot V2UpFunction, and AccountPutCounterSettingsFunction, which
parses a body) in about 15 s with the layer's build; the README's table: --all --runs 9 (minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT  # also puts the project on sys.path

from tally_local.template import Template

FLOOR = 'import boto3; boto3.client("dynamodb")'


def build_layer(into: Path) -> Path:
    """The shared layer, built by its own Makefile for the Python running this script."""
    runtime = "{}.{}".format(*sys.version_info[:2])
    built = subprocess.run(
        [
            "make",
            "--silent",
            "-C",
            str(ROOT / "shared"),
            "build-SharedLayer",
            f"ARTIFACTS_DIR={into}",
            f"PYTHON={sys.executable}",
            f"RUNTIME={runtime}",
            "PLATFORM=",
        ],
        capture_output=True,
        text=True,
    )
    if built.returncode:
        sys.exit(f"building the layer failed:\n{built.stdout}{built.stderr}")
    return into / "python"


def _probe(code: str, path: list[str], env: dict[str, str]) -> float:
    """CPU seconds to run `code` in a fresh interpreter with `path` first on sys.path and no
    bytecode written (-B), timed inside it (Python's own startup excluded; CPU time, not wall
    time, so that other load on the machine counts less)."""
    wrapped = (
        f"import sys; sys.path[:0] = {path!r}\n"
        f"import time; t = time.process_time()\n{code}\nprint(time.process_time() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-B", "-c", wrapped], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _handler_code(fn) -> str:
    # As Lambda does: import the handler module; then what its first request adds before any
    # work: the DynamoDB client (created lazily).
    module = fn.handler.rsplit(".", 1)[0]
    return f"import {module}\nfrom tally import aws; aws.dynamodb()"


DEFAULT_FUNCTIONS = ["V2UpFunction", "AccountPutCounterSettingsFunction"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="pairs per function (default 3)")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--all", action="store_true", help="every function of template.yaml")
    chosen.add_argument(
        "--functions",
        nargs="+",
        metavar="ID",
        default=DEFAULT_FUNCTIONS,
        help=f"functions by logical id (default {' '.join(DEFAULT_FUNCTIONS)})",
    )
    parser.add_argument("--from-source", action="store_true", help="handlers without bytecode")
    args = parser.parse_args()
    template = Template()
    unknown = sorted(set(args.functions) - set(template.functions))
    if unknown and not args.all:
        parser.error(f"no function {', '.join(unknown)} in template.yaml")
    functions = (
        template.functions.values()
        if args.all
        else [template.functions[name] for name in args.functions]
    )
    env = {
        **os.environ,
        **template.environment(),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "LAMBDA_TASK_ROOT": str(ROOT),  # as in Lambda (the Tracer would be active if sampled)
    }
    with tempfile.TemporaryDirectory() as tmp:
        layer = build_layer(Path(tmp) / "layer")
        handler_layer = layer
        if args.from_source:
            handler_layer = Path(tmp) / "source" / "python"
            shutil.copytree(layer, handler_layer, ignore=shutil.ignore_patterns("__pycache__"))
        rows, floors = [], []
        for fn in sorted(functions, key=lambda f: f.logical_id):
            # Floor and handler back to back, so that both see the same load on the machine.
            code, path = _handler_code(fn), [str(fn.code_uri), str(handler_layer)]
            pairs = [
                (_probe(FLOOR, [str(layer)], env), _probe(code, path, env))
                for _ in range(args.runs)
            ]
            floors += [f for f, _ in pairs]
            handler = [h for _, h in pairs]
            rows.append(
                (
                    fn.logical_id + (" (from source)" if args.from_source else ""),
                    statistics.median(handler),
                    statistics.median(f for f, _ in pairs),
                    statistics.median(h / f for f, h in pairs),
                )
            )
    print(
        "| function | import + init (median) | its floor runs (median) | x floor (median of pairs) |"
    )
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| floor: import boto3 + DynamoDB client ({len(floors)} runs) | "
        f"| {statistics.median(floors) * 1000:.0f} ms | 1.00 |"
    )
    for name, seconds, floor, ratio in rows:
        print(f"| {name} | {seconds * 1000:.0f} ms | {floor * 1000:.0f} ms | {ratio:.2f} |")


if __name__ == "__main__":
    main()
