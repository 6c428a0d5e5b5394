"""A hot counter: changes to one counter through `tally serve` behind the throttling proxy
(tally_local/throttle.py), which lets each DynamoDB item take --item-wcu write units a second
(DynamoDB's partition limit, 1,000, scaled down so that this machine can pass it), with the
counter spread over 1, 2, 4, 8 and 16 shards. A benchmark, not a test.

    .venv/bin/python bench/hot_counter.py [--seconds 3] [--item-wcu 50] [--shards 1 2 4 8 16]

Each row is a counter of its own, set up with `PUT /account/counters/{name}/settings
{"shards": N}` (N = 1: no setting, today's counter; tally serve runs with TALLY_SHARDS_GROW=off
so that no row grows its N when throttled), then changed by --connections callers at
once (`POST /account/counters/{name}/1`, as fast as answers come) for --seconds. Per row:
admitted changes/s (200s), 503s (throttled past tally's retries), other answers, p50 and p99 of
the 200s, and the exactness check: the counter's final value equals the number of 200s (and with
--upper-bound, never passes it). A 503 that says its outcome is unknown (its DynamoDB answer
waited past tally's 2 s read timeout: on a loaded machine) may or may not have counted, so the
check is then 200s <= value <= 200s + those, and the row says how many there were. A build that does not take `shards` answers its settings with a
400: that row says so instead of running.

The default (DynamoDB Local where it can run, else moto; 3 s a row) takes about 25 s; the
README's table: --full (15 s a row, on moto and on DynamoDB Local, about 3 minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a script run from anywhere

from tally_local.dynamodb_local import DynamoDBLocal, unavailable_reason
from tests.serve import ADMIN, Server  # the end-to-end tests' server


def _load(server: Server, key: str, name: str, seconds: float, connections: int) -> dict:
    """`connections` callers adding 1 to the counter for `seconds`: answers by status, and the
    latencies of the 200s."""
    statuses: dict[int, int] = {}
    unknown = [0]  # 503s that say the change may or may not have been applied
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def caller() -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                status, body = server.call(f"/account/counters/{name}/1", method="POST", key=key)
            except OSError:
                status, body = 0, {}  # no answer at all
            took = time.perf_counter() - started
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 503 and "may or may not" in json.dumps(body):
                    unknown[0] += 1
                if status == 200:
                    latencies.append(took)

    threads = [threading.Thread(target=caller) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"statuses": statuses, "unknown": unknown[0], "latencies": latencies}


def _row(server: Server, key: str, shards: int, args: argparse.Namespace) -> dict:
    name = f"hot-{shards}"
    settings: dict = {} if shards == 1 else {"shards": shards}
    if args.upper_bound is not None:
        settings["upper_bound"] = args.upper_bound
    if settings:
        status, answer = server.call(
            f"/account/counters/{name}/settings", method="PUT", key=key, body=settings
        )
        if status == 400 and "shards" in json.dumps(answer):
            return {"shards": shards, "unsupported": True}
        if status != 200:
            raise SystemExit(f"settings of {name} answered {status}: {answer}")
    run = _load(server, key, name, args.seconds, args.connections)
    status, answer = server.call(f"/v2/bench/{name}", key=key)
    value = answer["data"]["value"] if status == 200 else 0  # 404: never changed
    statuses, latencies = run["statuses"], run["latencies"]
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    ok = statuses.get(200, 0)
    return {
        "shards": shards,
        "unsupported": False,
        "admitted": ok / args.seconds,
        "limit": args.item_wcu * shards,
        "unavailable": statuses.get(503, 0),
        "other": sum(n for s, n in statuses.items() if s not in (200, 503)),
        "others": {s: n for s, n in statuses.items() if s not in (200, 503)},
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "ok": ok,
        "unknown": run["unknown"],
        # A 200 is counted once; a 503 "outcome unknown" (its answer waited past tally's read
        # timeout) may or may not have been; every other refusal never is.
        "exact": ok <= value <= ok + run["unknown"],
        "value": value,
        "bound": args.upper_bound is None or value <= args.upper_bound,
    }


def measure(backend: str, args: argparse.Namespace):
    """Each row's figures, as they come, on one tally serve behind the proxy."""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        endpoint = stack.enter_context(DynamoDBLocal()) if backend == "dynamodb-local" else None
        server = Server(
            Path(tmp),
            schedule_interval=None,
            endpoint=endpoint,
            flags=("--throttle-item-wcu", f"{args.item_wcu:g}"),
            env={"TALLY_SHARDS_GROW": "off"},  # each row keeps its N: the scaling is the figure
        )
        stack.callback(server.stop)
        _, made = server.call(
            "/admin/workspaces", method="POST", key=ADMIN, body={"workspace": "bench"}
        )
        key = made["api_key"]
        # The workspace's own rate limit must not be what refuses: this measures the item's.
        server.call(
            "/admin/workspaces/bench/rate-limit",
            method="PUT",
            key=ADMIN,
            body={"quota": 1_000_000, "window": 60},
        )
        for shards in args.shards:
            yield _row(server, key, shards, args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="each row's load (3)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent callers (32)")
    parser.add_argument(
        "--item-wcu", type=float, default=50.0, help="write units a second per item (50)"
    )
    parser.add_argument(
        "--shards", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="rows (1 2 4 8 16)"
    )
    parser.add_argument(
        "--upper-bound", type=int, help="set this upper bound on each counter, and check it held"
    )
    parser.add_argument(
        "--dynamodb",
        action="append",
        choices=["moto", "dynamodb-local"],
        help="a backend, repeated for both (default: dynamodb-local where it runs, else moto)",
    )
    parser.add_argument(
        "--full", action="store_true", help="the README's table: 15 s a row, on both backends"
    )
    args = parser.parse_args()
    if args.full:
        args.seconds, args.dynamodb = 15.0, ["moto", "dynamodb-local"]
    backends = args.dynamodb or ["moto" if unavailable_reason() else "dynamodb-local"]
    print(
        f"| DynamoDB ({args.connections} connections, {args.seconds:g} s a row, "
        f"{args.item_wcu:g} WCU/s per item) | shards | item limit x shards | admitted changes/s "
        "| 503s | other non-200 | p50 | p99 | value = 200s |"
        + (f" value <= {args.upper_bound} |" if args.upper_bound is not None else "")
    )
    print(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
        + (" --- |" if args.upper_bound is not None else "")
    )
    for backend in backends:
        reason = unavailable_reason() if backend == "dynamodb-local" else None
        if reason:
            print(f"| {backend}: not measured ({reason}) | | | | | | | | |")
            continue
        for r in measure(backend, args):
            if r["unsupported"]:
                print(
                    f"| {backend} | {r['shards']} | shards not supported by this build "
                    "(its settings answered 400) | | | | | | |",
                    flush=True,
                )
                continue
            others = ", ".join(f"{n} x {s or 'no answer'}" for s, n in sorted(r["others"].items()))
            print(
                f"| {backend} | {r['shards']} | {r['limit']:g} | {r['admitted']:.0f} "
                f"| {r['unavailable']} | {r['other']}{f' ({others})' if others else ''} "
                f"| {r['p50']:.1f} ms | {r['p99']:.1f} ms "
                f"| {'yes' if r['exact'] else 'NO'} ({r['value']}"
                + (f"; {r['unknown']} of the 503s outcome unknown" if r["unknown"] else "")
                + (f"; 200s: {r['ok']}" if r["value"] != r["ok"] else "")
                + ") |"
                + (f" {'yes' if r['bound'] else 'NO'} |" if args.upper_bound is not None else ""),
                flush=True,
            )


if __name__ == "__main__":
    main()
