"""Local throughput: `up` requests per second through `tally serve` beside what its DynamoDB
endpoint does alone, both with 32 concurrent connections. A benchmark, not a test.

    .venv/bin/python bench/throughput.py [--seconds 1.5] [--warmup 1] [--connections 32]
                                         [--dynamodb moto] [--dynamodb dynamodb-local]

Per backend, each load run for --warmup seconds unmeasured, then --seconds measured:
  - the endpoint alone: `UpdateItem ADD v :one` calls/s from this process, a thread and a
    connection per caller (issue 15's yardstick), to a table made as CountersTable is, stream
    included, that tally serve does not read;
  - the endpoint alone: the change of a counter with tally's own expressions (the call a busy
    `up` makes: its rate-limit tokens come from a lease, tally.rate_limit), calls/s;
  - `up`/s through tally serve (one key, one counter), and the DynamoDB calls those ups made,
    read from tally serve's access log, whose line for each request says how many its function
    sent (retries included). Calls its stream functions make afterwards (history, events) are
    not counted: they are not the request's.
`(up/s x calls per up) / ADD/s` is the target's ratio (>= 0.8); `up/s / change/s` compares with
what the endpoint does for the very call an up needs. The second table says where the CPU went
during each load: ms of CPU per call (or per up) of tally serve, of the endpoint's process and of
this process (the load generator), and how busy the machine was, other work included (Linux).

DynamoDB Local is a JVM that compiles as it runs: cold, it answers less than half of what it
does after ~10 s of load, so its figures need a warm-up (the README's: --warmup 10).
The default (moto, 1.5 s a measure) takes about 15 s and is noisy; the README's table:
--seconds 8 --warmup 10 --dynamodb moto --dynamodb dynamodb-local, its median of 3 runs.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a script run from anywhere

from tally.clock import Moment
from tally.items import counter
from tally_local import dynamodb
from tally_local.dynamodb_local import DynamoDBLocal, unavailable_reason
from tally_local.template import Template
from tests.serve import ADMIN, Server  # the end-to-end tests' server

UP = "/v2/bench/hits/up"
DIRECT_TABLE = "BenchCountersTable"
# tally serve's access-log line of one of those ups, ending with its function's DynamoDB calls.
_UP_LINE = re.compile(
    rf"^\S+ GET {re.escape(UP)} (\d+) V2UpFunction \S+ms (\d+) DynamoDB calls?$", re.MULTILINE
)
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


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


# ------------------------------------------------------------------ CPU, from /proc (Linux)


def _process_cpu(pid: int | None) -> float | None:
    """Seconds of CPU a process has used (all its threads), or None where it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _machine_busy() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, or None off Linux."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return None
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / _TICK, sum(values[:8]) / _TICK


def _child(pid: int) -> int | None:
    """A child process of `pid` (the embedded moto of a tally serve), if any."""
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children = (task / "children").read_text().split()
            if children:
                return int(children[0])
    return None


@dataclass
class Cpu:
    """Where the CPU went while one load ran: per operation, ms of CPU of each process."""

    serve: float | None  # tally serve (None: not involved in this load)
    endpoint: float | None
    generator: float
    machine_busy: float | None  # cores busy on average, everything on the machine counted

    @staticmethod
    def during(load: Callable[[], int], serve: int | None, endpoint: int | None) -> tuple:
        """Run `load` (returning how many operations it did): (its result, Cpu per operation)."""
        before = [_process_cpu(serve), _process_cpu(endpoint), time.process_time()]
        machine, wall = _machine_busy(), time.monotonic()
        done = load()
        after = [_process_cpu(serve), _process_cpu(endpoint), time.process_time()]
        machine_after, wall = _machine_busy(), time.monotonic() - wall
        per = [
            None if b is None or a is None else (a - b) * 1000 / max(done, 1)
            for b, a in zip(before, after, strict=True)
        ]
        busy = None
        if machine and machine_after:
            share = (machine_after[0] - machine[0]) / max(machine_after[1] - machine[1], 1e-9)
            busy = share * (os.cpu_count() or 1)
        return done, Cpu(per[0] if serve else None, per[1], per[2] or 0.0, busy)


# ------------------------------------------------------------------ the loads


def _change_call(client) -> Callable[[], bool]:
    """The call a busy keyed `up` makes, sent straight to the endpoint with tally's own
    expressions: the change of the counter, with its stamp, answering the item."""
    at = Moment.of()
    key = counter.key("bench", "direct-change")
    first = counter.change(1, at, "new_week", open_to=None)
    client.update_item(TableName=DIRECT_TABLE, Key=key, **first.params())
    ops = itertools.count()

    def change() -> bool:
        update = counter.change(1, at, "same_day", open_to=None)
        counter.stamp(update, f"op{next(ops)}", at.epoch_ms, 1000)
        client.update_item(
            TableName=DIRECT_TABLE,
            Key=key,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **update.params(),
        )
        return True

    return change


def measure(backend: str, seconds: float, warmup: float, connections: int) -> dict:
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        local = DynamoDBLocal() if backend == "dynamodb-local" else None
        endpoint = stack.enter_context(local) if local else None
        server = Server(tmp, schedule_interval=None, endpoint=endpoint)
        try:
            serve_pid = server.process.pid
            endpoint_pid = local.process.pid if local and local.process else _child(serve_pid)
            # A connection per caller, as tally serve's threads get: a smaller pool would open
            # and drop connections under this load and understate the endpoint.
            client = dynamodb.client(server.ddb_endpoint, max_pool_connections=connections)
            # The endpoint alone writes a table made as CountersTable is (its stream included)
            # that no stream poller of tally serve reads: tally serve stays idle meanwhile.
            spec = {**Template().tables()["CountersTable"], "TableName": DIRECT_TABLE}
            client.create_table(**spec)
            client.get_waiter("table_exists").wait(TableName=DIRECT_TABLE)
            key = {"workspace": {"S": "bench"}, "counter": {"S": "direct"}}

            def add() -> bool:
                client.update_item(
                    TableName=DIRECT_TABLE,
                    Key=key,
                    UpdateExpression="ADD v :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
                return True

            def run(call: Callable[[], bool], serve: int | None = None) -> tuple:
                """(successes warming up, the log's length then, successes, failures,
                latencies, Cpu) of `call`, warmed up, then measured."""
                warm = _load(warmup, connections, call)[0]
                logged = len(server.log())
                outcome: list = []

                def measured() -> int:
                    outcome.extend(_load(seconds, connections, call))
                    return outcome[0]

                _, cpu = Cpu.during(measured, serve, endpoint_pid)
                return (warm, logged, *outcome, cpu)

            _, _, direct, _, _, add_cpu = run(add)
            _, _, changes, _, _, change_cpu = run(_change_call(client))
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
            warm, logged, ups, errors, latencies, up_cpu = run(
                lambda: server.call(UP, key=secret)[0] == 200, serve_pid
            )
            value = server.call("/v2/bench/hits", key=secret)[1]["data"]["value"]
            made_calls = [int(n) for status, n in _UP_LINE.findall(server.log()[logged:])]
        finally:
            server.stop()
    calls_per_up = sum(made_calls) / max(len(made_calls), 1)
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "backend": backend,
        "endpoint": direct / seconds,
        "changes": changes / seconds,
        "ups": ups / seconds,
        "calls_per_up": calls_per_up,  # (of every up measured, answered 200 or not)
        "logged": len(made_calls) == ups + errors,
        "ratio": ups * calls_per_up / direct,
        "of_changes": ups / changes,
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "errors": errors,
        "exact": value == warm + ups,
        "cpu": {"ADD v :one": add_cpu, "tally's change": change_cpu, "up": up_cpu},
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=1.5, help="each of the 3 measures per backend (1.5)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of each load before its measure (1)"
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
    head = (
        f"| DynamoDB ({args.connections} connections, {args.seconds:g} s each "
        f"after {args.warmup:g} s of warm-up) "
    )
    print(
        head + "| endpoint `ADD v :one`/s | endpoint: tally's change/s | `up`/s "
        "| DynamoDB calls per `up` (measured) | (up/s x calls per up) / ADD/s "
        "| up/s / change/s | p50 | p99 | non-200 | value = 200s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    results = []
    for backend in backends:
        reason = unavailable_reason() if backend == "dynamodb-local" else None
        if reason:
            print(f"| {backend}: not measured ({reason}) | | | | | | | | | | |")
            continue
        r = measure(backend, args.seconds, args.warmup, args.connections)
        results.append(r)
        print(
            f"| {r['backend']} | {r['endpoint']:.0f} | {r['changes']:.0f} | {r['ups']:.0f} "
            f"| {r['calls_per_up']:.2f}{'' if r['logged'] else ' (lines missing)'} "
            f"| {r['ratio']:.2f} | {r['of_changes']:.2f} "
            f"| {r['p50']:.1f} ms | {r['p99']:.1f} ms | {r['errors']} "
            f"| {'yes' if r['exact'] else 'NO'} |",
            flush=True,
        )
    if not results:
        return
    print()
    print(
        "| DynamoDB | load | CPU per call or up: tally serve | the endpoint's process "
        "| this process (load generator) | machine busy (cores, of "
        f"{os.cpu_count()}) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in results:
        for load, cpu in r["cpu"].items():
            busy = "-" if cpu.machine_busy is None else f"{cpu.machine_busy:.2f}"
            print(
                f"| {r['backend']} | {load} | {_ms(cpu.serve)} ms | {_ms(cpu.endpoint)} ms "
                f"| {_ms(cpu.generator)} ms | {busy} |"
            )


if __name__ == "__main__":
    main()
