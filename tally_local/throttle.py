"""A throttling proxy in front of a DynamoDB endpoint: each ITEM may take at most a chosen rate of
write units per second, as one DynamoDB partition takes at most 1,000; past it the proxy answers
as DynamoDB does, HTTP 400 `ProvisionedThroughputExceededException`.

Written by hand because no well-kept library does it: moto and DynamoDB Local never throttle,
and a generic HTTP rate limiter knows neither which item a DynamoDB call writes nor what it
costs. It lets a laptop show what a hot item does to tally at a scaled-down limit (50 write units
a second instead of 1,000): `tally serve --throttle-item-wcu 50`, bench/hot_counter.py, and

    with Throttle("http://127.0.0.1:8000", item_wcu=50) as endpoint:
        ...  # point AWS_ENDPOINT_URL_DYNAMODB at `endpoint`

What it counts, per call and per item (table and key), as DynamoDB bills:
  - PutItem, UpdateItem, DeleteItem: the write units of the item (1 per started KB of the larger
    of the item before and after);
  - TransactWriteItems: each item it touches (Put, Update, Delete, ConditionCheck) twice that;
  - BatchWriteItem: each put or delete as a single write; items over their limit come back in
    `UnprocessedItems`, and only a call with none admitted is refused, as DynamoDB does;
  - reads, DynamoDB Streams and table calls: forwarded, never limited.
A write takes its minimum (1, or 2 in a transaction) from each item's bucket before it is sent,
all or nothing, so a refused call changes nothing. The rest of its cost is charged when the
answer says it (`ReturnConsumedCapacity`, added by the proxy and removed again unless the caller
asked for it): DynamoDB Local reports units as DynamoDB bills them (bench/write_cost.py); moto's
figures follow none of DynamoDB's rules, so there a write costs its minimum whatever its size.
The bucket may go below zero then, and the item's next writes wait for it.
A transaction's units are reported per table, so they are shared evenly among its items there.
A write whose condition fails keeps the minimum it took, as DynamoDB bills it.

Where it differs from DynamoDB: a throttled transaction is refused with the same exception
(DynamoDB may instead cancel it, `TransactionCanceledException` with a throttling reason), and
the burst is a few tenths of a second of the rate, not DynamoDB's 300 s of unused table capacity.
"""

from __future__ import annotations

import argparse
import atexit
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import urllib3

from tally_local import ports

TARGET = "DynamoDB_20120810."  # X-Amz-Target of every DynamoDB call (Streams calls differ)
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
THROTTLED = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
# The throttling reason DynamoDB names when one partition's key range is over its limit.
REASON = "TableWriteKeyRangeThroughputExceeded"
BURST_S = 0.2  # a bucket holds this many seconds of its rate (at least one transaction's 2 units)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade"}


class Buckets:
    """A token bucket of write units per item, refilled at `rate` a second up to `burst`.
    One lock for all of them: a take is a few dictionary operations, far below a call's cost."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], tuple[float, float]] = {}  # item -> (tokens, at)

    def _level(self, item: tuple[str, str], now: float) -> float:
        tokens, at = self._held.get(item, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def take(self, wants: dict[tuple[str, str], float]) -> bool:
        """Take each item's units if every one of them has them; else take nothing."""
        with self._lock:
            now = self.clock()
            levels = {item: self._level(item, now) for item in wants}
            if any(levels[item] < units for item, units in wants.items()):
                return False
            for item, units in wants.items():
                self._held[item] = (levels[item] - units, now)
            return True

    def charge(self, item: tuple[str, str], units: float) -> None:
        """Units a call turned out to cost beyond what it took: the bucket may go below zero."""
        with self._lock:
            now = self.clock()
            self._held[item] = (self._level(item, now) - units, now)


class Throttle:
    """The proxy on host:port (0: a free port) in front of `backend`, in a thread of this process;
    `start()` returns its endpoint, and so does `with Throttle(...) as endpoint`. `clock` is the
    buckets' time (tests freeze it). `throttled` counts the calls (or batch items) refused."""

    def __init__(
        self,
        backend: str,
        item_wcu: float,
        *,
        burst: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not item_wcu > 0:
            raise ValueError(f"item_wcu must be a positive number, not {item_wcu!r}")
        self.backend = backend
        self.buckets = Buckets(item_wcu, burst or max(2.0, item_wcu * BURST_S), clock)
        self.host, self.port = host, port
        self.throttled = 0
        self.passed = 0
        self._count = threading.Lock()
        parts = urlsplit(backend)
        # One pool of kept-alive connections to the backend, shared by the serving threads.
        self._pool = urllib3.HTTPConnectionPool(
            parts.hostname, parts.port or 80, maxsize=128, block=False, retries=False
        )
        self._schemas: dict[str, list[str]] = {}
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        listening = ports.listen(self.host, self.port)
        self.port = listening.getsockname()[1]
        self._server = _Server(listening, self)
        threading.Thread(target=self._server.serve_forever, name="throttle", daemon=True).start()
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._pool.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ one request

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes):
        """(status, headers, body) of the answer to one request."""
        target = headers.get("x-amz-target", "")
        operation = target[len(TARGET) :] if target.startswith(TARGET) else ""
        if operation not in WRITES:
            return self._forward(method, path, headers, body)
        call = json.loads(body)
        if operation == "BatchWriteItem":
            return self._batch(method, path, headers, call)
        wants: dict[tuple[str, str], float] = {}
        for table, key, minimum in self._items(operation, call, headers):
            wants[(table, key)] = wants.get((table, key), 0) + minimum
        if not self.buckets.take(wants):
            return self._refuse(call, operation)
        return self._send(method, path, headers, call, wants)

    def _send(self, method, path, headers, call, wants):
        """Forward a write with its consumed capacity asked for; charge what it cost beyond the
        minimum taken; answer as the backend did, without what the caller did not ask for."""
        asked = call.get("ReturnConsumedCapacity", "NONE")
        status, answer_headers, answer = self._forward(
            method,
            path,
            headers,
            json.dumps({**call, "ReturnConsumedCapacity": "INDEXES"}).encode(),
        )
        with self._count:
            self.passed += 1
        if status != 200:
            return status, answer_headers, answer
        parsed = json.loads(answer)
        consumed = parsed.pop("ConsumedCapacity", None)
        self._charge(consumed, wants)
        if asked in ("TOTAL", "INDEXES") and consumed is not None:
            parsed["ConsumedCapacity"] = consumed if asked == "INDEXES" else _total(consumed)
        return status, answer_headers, _body(parsed, answer_headers)

    def _charge(self, consumed: Any, wants: dict[tuple[str, str], float]) -> None:
        """Charge each item the units its table reported beyond the minimum it took (a table's
        units shared evenly among the call's items in it: DynamoDB reports them per table)."""
        for entry in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            table = entry.get("TableName", "")
            units = entry.get("Table", {}).get("CapacityUnits", entry.get("CapacityUnits", 0))
            items = [item for item in wants if item[0] == table]
            for item in items:
                extra = units / len(items) - wants[item]
                if extra > 0:
                    self.buckets.charge(item, extra)

    def _batch(self, method, path, headers, call):
        """BatchWriteItem: each request a single write of its item; those over their item's limit
        come back in UnprocessedItems, as DynamoDB returns them; none admitted is a refusal."""
        admitted: dict[str, list] = {}
        unprocessed: dict[str, list] = {}
        wants: dict[tuple[str, str], float] = {}
        for table, requests in call.get("RequestItems", {}).items():
            for request in requests:
                put = request.get("PutRequest")
                key = _spelled(
                    self._put_key(table, put["Item"], headers)
                    if put
                    else request["DeleteRequest"]["Key"]
                )
                if self.buckets.take({(table, key): 1}):
                    admitted.setdefault(table, []).append(request)
                    wants[(table, key)] = wants.get((table, key), 0) + 1
                else:
                    unprocessed.setdefault(table, []).append(request)
        if not admitted:
            return self._refuse(call, "BatchWriteItem")
        with self._count:
            self.throttled += sum(len(r) for r in unprocessed.values())
        status, answer_headers, answer = self._send(
            method, path, headers, {**call, "RequestItems": admitted}, wants
        )
        if status != 200 or not unprocessed:
            return status, answer_headers, answer
        parsed = json.loads(answer)
        left = parsed.setdefault("UnprocessedItems", {})
        for table, requests in unprocessed.items():
            left.setdefault(table, []).extend(requests)
        return status, answer_headers, _body(parsed, answer_headers)

    def _refuse(self, call: dict[str, Any], operation: str):
        with self._count:
            self.throttled += 1
        tables = sorted(self._tables(operation, call))
        body = {
            "__type": THROTTLED,
            "message": (
                "Throughput exceeds the current capacity of one item's partition "
                f"(tally_local.throttle: {self.buckets.rate:g} write units a second per item)"
            ),
            "ThrottlingReasons": [
                {"reason": REASON, "resource": f"arn:aws:dynamodb:local:000000000000:table/{t}"}
                for t in tables
            ],
        }
        data = json.dumps(body).encode()
        return (
            400,
            {
                "Content-Type": "application/x-amz-json-1.0",
                "x-amzn-RequestId": uuid.uuid4().hex.upper(),
                "x-amz-crc32": str(zlib.crc32(data) & 0xFFFFFFFF),
            },
            data,
        )

    # ------------------------------------------------------------------ what a call writes

    def _items(self, operation: str, call: dict[str, Any], headers: dict[str, str]):
        """(table, key, minimum units) of each item a single or transactional write touches."""
        if operation == "TransactWriteItems":
            for action in call.get("TransactItems", []):
                ((kind, spec),) = action.items()
                table = spec["TableName"]
                key = self._put_key(table, spec["Item"], headers) if kind == "Put" else spec["Key"]
                yield table, _spelled(key), 2
            return
        table = call["TableName"]
        key = self._put_key(table, call["Item"], headers) if operation == "PutItem" else call["Key"]
        yield table, _spelled(key), 1

    @staticmethod
    def _tables(operation: str, call: dict[str, Any]) -> set[str]:
        if operation == "TransactWriteItems":
            return {next(iter(a.values()))["TableName"] for a in call.get("TransactItems", [])}
        if operation == "BatchWriteItem":
            return set(call.get("RequestItems", {}))
        return {call.get("TableName", "")}

    def _put_key(self, table: str, item: dict[str, Any], headers: dict[str, str]) -> dict:
        """The key of an item a put names whole: its table's key attributes, asked of the
        backend once per table, with the caller's own credentials (moto reads its region from
        them)."""
        names = self._schemas.get(table)
        if names is None:
            status, _, answer = self._forward(
                "POST",
                "/",
                {**headers, "x-amz-target": TARGET + "DescribeTable"},
                json.dumps({"TableName": table}).encode(),
            )
            if status != 200:  # no such table: the backend's answer to the put will say so
                return item
            schema = json.loads(answer)["Table"]["KeySchema"]
            names = self._schemas[table] = [k["AttributeName"] for k in schema]
        return {name: item.get(name) for name in names}

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes):
        sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
        # The body may have been rewritten (ReturnConsumedCapacity): its signature no longer
        # matches, which neither moto nor DynamoDB Local checks.
        response = self._pool.urlopen(method, path, body=body, headers=sent, preload_content=True)
        kept = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
        return response.status, kept, response.data


def _spelled(key: dict[str, Any]) -> str:
    """An item's key in one spelling, whatever order its attributes came in."""
    return json.dumps(key, sort_keys=True)


def _total(consumed: Any) -> Any:
    """ConsumedCapacity as TOTAL shows it (from the INDEXES the proxy asked for)."""
    shape = lambda e: {"TableName": e["TableName"], "CapacityUnits": e["CapacityUnits"]}  # noqa: E731
    return [shape(e) for e in consumed] if isinstance(consumed, list) else shape(consumed)


def _body(parsed: dict[str, Any], headers: dict[str, str]) -> bytes:
    """An answer rewritten by the proxy, with its CRC32 header made right again (botocore, and
    tally's retry policy, take a mismatch for an answer damaged in transit)."""
    data = json.dumps(parsed).encode()
    for name in list(headers):
        if name.lower() == "x-amz-crc32":
            headers[name] = str(zlib.crc32(data) & 0xFFFFFFFF)
    return data


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # 32 callers and tally serve's pollers connect at once

    def __init__(self, listening: Any, throttle: Throttle) -> None:
        self.throttle = throttle
        super().__init__(listening.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listening  # already bound and listening (ports.listen)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its connections

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        throttle: Throttle = self.server.throttle  # type: ignore[attr-defined]
        try:
            status, answer_headers, data = throttle.handle(self.command, self.path, headers, body)
        except (urllib3.exceptions.HTTPError, OSError) as err:  # the backend is gone
            status, answer_headers = 502, {"Content-Type": "text/plain"}
            data = f"throttle: the backend {throttle.backend} did not answer ({err})".encode()
        self.send_response(status)
        for name, value in answer_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET = do_PUT = do_DELETE = _any

    def log_message(self, *_: Any) -> None:  # tally serve logs each request itself
        pass


def _main(argv: list[str]) -> int:
    """The proxy in a process of its own (tally serve --throttle-item-wcu): its handlers would
    otherwise wait behind tally's for Python's GIL. First line on stdout: `listening on PORT`."""
    from tally_local.dynamodb import _watch_parent

    parser = argparse.ArgumentParser(prog="python -m tally_local.throttle")
    parser.add_argument("backend", help="the DynamoDB endpoint to forward to")
    parser.add_argument("--item-wcu", type=float, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is tally serve's to handle
    throttle = Throttle(args.backend, args.item_wcu, host=args.host, port=args.port)
    try:
        throttle.start()
    except ports.InUse as err:
        print(f"in use: {err}", flush=True)
        return 3
    print(f"listening on {throttle.port}", flush=True)
    _watch_parent()  # and SIGTERM, from tally serve or that watch, ends it: it keeps no state
    while True:
        signal.pause()


class ThrottleProcess:
    """The proxy in a process of its own, in front of `backend` (tally serve's DynamoDB):
    `start()` returns its endpoint once it listens; `stop()` ends it."""

    def __init__(self, backend: str, item_wcu: float, host: str = "127.0.0.1") -> None:
        self.backend, self.item_wcu, self.host = backend, item_wcu, host
        self._process: subprocess.Popen | None = None
        self.endpoint = ""

    def start(self) -> str:
        from tally_local.dynamodb_local import die_with_parent

        command = [sys.executable, "-m", "tally_local.throttle", self.backend]
        command += ["--item-wcu", f"{self.item_wcu:g}", "--host", self.host]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        atexit.register(self.stop)
        ready = self._process.stdout.readline() if self._process.stdout else ""
        if not ready.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the throttling proxy did not start: {ready.strip()}")
        self.endpoint = f"http://{self.host}:{int(ready.split()[-1])}"
        return self.endpoint

    def stop(self) -> None:
        from tally_local.dynamodb_local import end_process

        if self._process is not None:
            process, self._process = self._process, None
            atexit.unregister(self.stop)
            end_process(process, timeout=5)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
