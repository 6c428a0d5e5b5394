"""A warm `up` at 128, 256 and 512 MB: its duration where Lambda gives a function memory / 1,769
MB of a vCPU, and what that duration costs. A benchmark, not a test.

    .venv/bin/python bench/lambda_memory.py [--calls 40] [--dynamodb-ms 5] [--memory 128 256 512]

Method. The V2UpFunction handler runs in a child process, called as Lambda calls it (its
handler, an API Gateway event, a context), back to back on one path, as for a busy caller. Its
DynamoDB is DynamoDB Local (moto's server without Java), in a process of its own and uncapped.
After its imports and warm-up, the child moves itself into a cgroup (the v1 cpu controller)
whose CFS quota is memory / 1,769 of one CPU, per 20 ms period, and times its invocations: wall
time, its own CPU time, and the time the quota held it back (the cgroup's cpu.stat). The
duration on AWS is estimated two ways: on CPU + held back + --dynamodb-ms per call, measured;
and CPU / share + --dynamodb-ms per call, the model. The local DynamoDB answers more slowly than
the assumed 5 ms, and while the child waits the quota refills, so the measured figure holds it
back less than AWS would: a lower bound. The model lets no quota refill while waiting: an upper
bound. Without a writable cgroup (not root, no cpu controller) it says so and gives the model.

Limits. This machine's core (x86) stands for Lambda's arm64 vCPU; Lambda's own quota period is
not published (20 ms is assumed); the machine is shared, so CPU time is the steadier figure;
DynamoDB's latency is assumed, not measured; TLS to DynamoDB (Lambda) is not in the local HTTP
calls. The init phase (a cold start) is not measured here: bench/cold_start.py measures it
uncapped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ADMIN, ROOT, in_process_api, lambda_environment

VCPU_MB = 1769
PERIOD_US = 20_000
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
LAMBDA_ARM_GB_S = 0.0000133334  # per GB-second, arm64 (bench/cost.py)


def cgroup_for(memory_mb: int) -> Path | None:
    """A cpu cgroup capped at Lambda's share for `memory_mb`, or None where none can be made."""
    if not (CGROUP_CPU / "cpu.cfs_quota_us").exists() or not os.access(CGROUP_CPU, os.W_OK):
        return None
    group = CGROUP_CPU / f"tally-bench-{os.getpid()}-{memory_mb}"
    try:
        group.mkdir(exist_ok=True)
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(math.ceil(PERIOD_US * memory_mb / VCPU_MB)))
    except OSError:
        with contextlib.suppress(OSError):
            group.rmdir()
        return None
    return group


def child(endpoint: str, key: str, calls: int, groups: dict[int, str | None]) -> None:
    """Runs in the child: warm `up`s, then for each memory `calls` of them timed, in its cgroup
    when it has one. Prints {memory: figures} as JSON."""
    lambda_environment()
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    import resource

    from botocore.endpoint import Endpoint

    from tally_local.gateway import LambdaContext
    from tally_local.template import Template

    fn = Template().functions["V2UpFunction"]
    handler = fn.load()
    event = json.loads((ROOT / "events" / "v2_up.json").read_text())
    event["pathParameters"] = {"workspace": "bench", "name": "c"}
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/v2/bench/c/up"
    event["headers"]["authorization"] = f"Bearer {key}"
    sent = [0]
    send = Endpoint._send

    def counted_send(endpoint_: object, request: object) -> object:
        sent[0] += 1
        return send(endpoint_, request)

    Endpoint._send = counted_send  # type: ignore[method-assign]

    def invoke() -> None:
        answer = handler(event, LambdaContext(fn))
        assert answer["statusCode"] == 200, answer

    for _ in range(20):  # warm: the key, the policy, the bucket's lease
        invoke()
    results = {}
    for memory, group in groups.items():
        if group:
            (Path(group) / "cgroup.procs").write_text(str(os.getpid()))
        for _ in range(5):
            invoke()
        walls, cpus = [], []
        sent[0] = 0
        throttled = _throttled_s(group)
        for _ in range(calls):
            began, began_cpu = time.perf_counter(), time.process_time()
            invoke()
            walls.append(time.perf_counter() - began)
            cpus.append(time.process_time() - began_cpu)
        results[memory] = {
            "wall_ms": statistics.mean(walls) * 1000,
            "wall_p90_ms": statistics.quantiles(walls, n=10)[-1] * 1000,
            "cpu_ms": statistics.mean(cpus) * 1000,
            "throttled_ms": (_throttled_s(group) - throttled) / calls * 1000,
            "calls": sent[0] / calls,
        }
    if any(groups.values()):
        (CGROUP_CPU / "cgroup.procs").write_text(str(os.getpid()))  # out, so they can go
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    import aws_xray_sdk.core  # noqa: F401  (what a sampled invocation loads: its memory too)

    rss_xray = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    for figures in results.values():
        figures.update(rss_mb=rss, rss_xray_mb=rss_xray)
    print(json.dumps(results))


def _throttled_s(group: str | None) -> float:
    """Seconds the cgroup's tasks have been held back by its quota (cpu.stat)."""
    if not group:
        return 0.0
    stat = dict(line.split() for line in (Path(group) / "cpu.stat").read_text().splitlines())
    return int(stat["throttled_time"]) / 1e9


@contextlib.contextmanager
def dynamodb_endpoint():
    """DynamoDB Local if it can run here, else moto's server: in processes of their own."""
    from tally_local import dynamodb, dynamodb_local

    try:
        with dynamodb_local.DynamoDBLocal() as endpoint:
            yield "DynamoDB Local", endpoint
        return
    except dynamodb_local.Unavailable:
        pass
    embedded = dynamodb.EmbeddedDynamoDB(port=0).start()
    try:
        yield "moto's server", embedded.endpoint
    finally:
        embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40, help="timed invocations per size")
    parser.add_argument("--dynamodb-ms", type=float, default=5.0, help="latency per call on AWS")
    parser.add_argument("--memory", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        endpoint, key, calls, groups = args.child
        child(endpoint, key, int(calls), {int(m): g or None for m, g in json.loads(groups)})
        return
    with dynamodb_endpoint() as (backend, endpoint), in_process_api(endpoint) as (call, _):
        _, made = call("POST", "/admin/workspaces", ADMIN, {"workspace": "bench"})
        # A limit the back-to-back calls stay under: what is timed is the `up`, not a 429.
        call("PUT", "/admin/workspaces/bench/rate-limit", ADMIN, {"quota": 10**6, "window": 60})
        groups = {memory: cgroup_for(memory) for memory in args.memory}
        try:
            named = json.dumps([[m, str(g) if g else ""] for m, g in groups.items()])
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    endpoint,
                    made["api_key"],
                    str(args.calls),
                    named,
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=300,
            )
        finally:
            for group in groups.values():
                if group:
                    with contextlib.suppress(OSError):
                        group.rmdir()
        results = {int(m): r for m, r in json.loads(out.stdout.strip().splitlines()[-1]).items()}
    capped = all(groups.values())
    method = (
        f"under a CFS quota of memory / {VCPU_MB} of a CPU ({PERIOD_US // 1000} ms period): "
        "duration between on CPU + held back + calls x latency (measured, a lower bound) and "
        "CPU / share + calls x latency (the model, an upper bound)"
        if capped
        else "no cgroup could be made here: duration = CPU time / share + calls x latency"
    )
    print(
        f"warm `up`, {args.calls} calls back to back; DynamoDB: {backend} locally, "
        f"{args.dynamodb_ms:g} ms a call assumed on AWS; {method}"
    )
    print(
        "| memory | CPU share | on CPU per `up` | held back by the quota | wall, capped (mean / "
        "p90) | duration on AWS: measured - model | GB-ms per `up` | USD per million "
        "(duration) | peak RSS (with X-Ray SDK) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for memory, r in results.items():
        share = memory / VCPU_MB
        modelled = r["cpu_ms"] / share + r["calls"] * args.dynamodb_ms
        low = (
            r["cpu_ms"] + r["throttled_ms"] + r["calls"] * args.dynamodb_ms if capped else modelled
        )
        gb_ms = [math.ceil(ms) * memory / 1024 for ms in (low, modelled)]  # billed by the ms
        usd = [g / 1000 * LAMBDA_ARM_GB_S * 1e6 for g in gb_ms]
        print(
            f"| {memory} MB | {share:.3f} vCPU | {r['cpu_ms']:.2f} ms | {r['throttled_ms']:.1f} ms "
            f"| {r['wall_ms']:.1f} / {r['wall_p90_ms']:.1f} ms | {low:.1f} - {modelled:.1f} ms "
            f"| {gb_ms[0]:.2f} - {gb_ms[1]:.2f} | {usd[0]:.3f} - {usd[1]:.3f} "
            f"| {r['rss_mb']} ({r['rss_xray_mb']}) MB |"
        )


if __name__ == "__main__":
    main()
