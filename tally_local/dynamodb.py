"""The embedded DynamoDB endpoint of `tally serve`: moto's server, made atomic.

moto applies concurrent calls without a lock ("Is Moto concurrency safe? No."): an UpdateItem
reads the item, resolves ADD, then writes, so two racing ADDs can lose one. DynamoDB applies each
call atomically. With moto's server one HTTP request is one DynamoDB call, so a lock around each
WSGI request makes every call atomic, transactions included, at the cost of serving one call at a
time, which is plenty for local work.

The same endpoint serves DynamoDB Streams, as DynamoDB Local does and as `tally serve`'s stream
pollers read it (tally_local.streams): moto keeps both services' state in one process, and a
request names its service in its X-Amz-Target header, so each goes to its own moto app, both
behind the one lock.

With `--state` (tally serve's `--state DIR`) the process loads its tables from a file when it
starts and saves them there as it goes (tally_local.moto_state).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import calendar
import collections
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tally_local import ports
from tally_local.dynamodb_local import die_with_parent, end_process
from tally_local.template import REGION, Template

DEFAULT_PORT = 8000
# DynamoDB calls that change nothing: any other call makes a --state save due.
READS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "TransactGetItems",
        "Query",
        "Scan",
        "DescribeTable",
        "ListTables",
        "DescribeTimeToLive",
        "DescribeContinuousBackups",
        "ListTagsOfResource",
        "DescribeLimits",
        "DescribeEndpoints",
    }
)


class InTurn:
    """A lock given in the order it was asked for (threading.Lock is not: under load a waiting
    call could be passed over, again and again, by later ones).

    One call at a time is slow under load: 32 callers queue for moto. In turn, a call waits for
    the calls sent before it and no others, so no call waits much longer than the queue it joined.
    And when a change's answer comes too late for tally (its 2 s read timeout), the change is
    already in the queue: the read tally sends then to learn whether it was applied (tally.aws
    send_additive) comes after it and finds it applied, where it could otherwise overtake it and
    answer 503 "outcome unknown" for a change applied a moment later. With two CPU-bound
    processes beside the 32-caller test, 6 rounds of it answered 84 such 503s with
    threading.Lock and none in turn."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiting: collections.deque[threading.Lock] = collections.deque()

    def acquire(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by the call before this one, handing the lock over

    def release(self) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().release()  # still held: now by the next in line
            else:
                self._held = False

    def __enter__(self) -> InTurn:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class Serialised:
    """WSGI middleware: one request at a time, in the order they came, the answer read to its end
    inside the lock; `on_write` is called inside it after every DynamoDB call that may have
    changed something."""

    def __init__(
        self, app: Callable[..., Iterable[bytes]], on_write: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.lock = InTurn()
        self.on_write = on_write

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
                if self.on_write and _writes(environ):
                    self.on_write()


def _writes(environ: dict[str, Any]) -> bool:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return not target.startswith(STREAMS_TARGET) and target.rpartition(".")[2] not in READS


class EmbeddedDynamoDB:
    """moto's DynamoDB on loopback, every call atomic (`atomic=False` gives plain moto, which the
    tests use to show the lock is what makes the difference).

    It runs in a process of its own unless `own_process=False`: moto is pure Python, so in the
    process of `tally serve` it and the handlers share one GIL, and under load a call waited
    long enough behind handlers to pass tally's 2 s read timeout (a 503 "outcome unknown").
    With `state` (a file; own process only) its tables are loaded from it and saved to it.
    `keep_fds` stay open in its process (tally serve's lock on its --state directory).
    A port in use raises ports.InUse."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        atomic: bool = True,
        own_process: bool = True,
        state: Path | None = None,
        keep_fds: tuple[int, ...] = (),
    ) -> None:
        self.host, self.port, self.atomic, self.own_process = host, port, atomic, own_process
        self.state, self.keep_fds = state, keep_fds
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedDynamoDB:
        if self.own_process:
            return self._start_process()
        self._server = _server(ports.listen(self.host, self.port), self.atomic)
        self.port = self._server.port  # when asked for port 0
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def _start_process(self) -> EmbeddedDynamoDB:
        command = [sys.executable, "-m", "tally_local.dynamodb", self.host, str(self.port)]
        if not self.atomic:
            command.append("--not-atomic")
        if self.state:
            command += ["--state", str(self.state)]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=self.keep_fds,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        atexit.register(self.stop)
        ready = self._process.stdout.readline() if self._process.stdout else ""
        if not ready.startswith("listening on "):
            self.stop()
            if ready.startswith("in use"):
                raise ports.InUse(ready.partition(": ")[2].strip())
            if ready.startswith("unreadable"):
                raise ValueError(ready.partition(": ")[2].strip())
            raise RuntimeError(f"the embedded DynamoDB did not start on {self.endpoint}: {ready}")
        self.port = int(ready.split()[-1])
        return self

    def stop(self) -> None:
        if self._process is not None:
            process, self._process = self._process, None
            atexit.unregister(self.stop)
            # With a state file its last save comes first: time for a large one.
            end_process(process, timeout=60 if self.state else 5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


STREAMS_TARGET = "DynamoDBStreams_20120810."  # X-Amz-Target of every DynamoDB Streams call
KEPT_ITERATORS = 4000  # moto keeps every shard iterator it hands out: the newest are kept


class ByTarget:
    """WSGI: a DynamoDB Streams call (X-Amz-Target `DynamoDBStreams_20120810.<Operation>`) to
    moto's DynamoDB Streams app, any other request to its DynamoDB app."""

    def __init__(self, dynamodb: Callable[..., Any], streams: Callable[..., Any]) -> None:
        self.dynamodb, self.streams = dynamodb, streams

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(STREAMS_TARGET):
            return self.dynamodb(environ, start_response)
        try:
            answer = _get_records(environ) if target == STREAMS_TARGET + "GetRecords" else None
            if answer is not None:
                headers = [("Content-Type", "application/x-amz-json-1.0")]
                start_response("200 OK", [*headers, ("Content-Length", str(len(answer)))])
                return [answer]
            return self.streams(environ, start_response)
        finally:
            _forget_old_iterators()


def _get_records(environ: dict[str, Any]) -> bytes | None:
    """A GetRecords answer made of moto's records as moto keeps them, or None to let moto's app
    answer (an iterator moto does not know: its own error).

    moto keeps each record as DynamoDB's JSON already, but its app passes the answer through its
    response serializer, attribute by attribute against the API model: about 1.7 ms a record
    (both images of a counter), two pollers reading every change, while every other call waits
    behind the lock (Serialised). A read of 1,000 records held it for 1.4 s under load, and the
    calls queued behind it passed tally's 2 s read timeout: 503s "outcome unknown"."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)  # for moto's app, should it answer after all
    try:
        params = json.loads(body)
        iterator, limit = str(params["ShardIterator"]), int(params.get("Limit") or 1000)
    except (ValueError, KeyError, TypeError):
        return None
    for account in list(dynamodbstreams_backends.values()):
        for backend in list(account.values()):
            if iterator in backend.shard_iterators:
                return json.dumps(
                    backend.get_records(iterator, limit), default=_json_value
                ).encode()
    return None


def _json_value(value: Any) -> Any:
    """What moto keeps in a record that JSON lacks, as DynamoDB's JSON protocol sends it: a time
    in seconds since the epoch, a binary attribute in base64."""
    if isinstance(value, datetime):  # naive, in UTC: whole milliseconds, as moto's app sends it
        seconds = calendar.timegm(value.timetuple())
        return seconds + (value.microsecond // 1000) / 1000 if value.microsecond else seconds
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} in a stream record")


def _forget_old_iterators() -> None:
    """moto stores each shard iterator it hands out (a new one per GetRecords) and never drops
    one: a poller asking 4 times a second would grow it without end. DynamoDB's iterators expire
    after 15 minutes; here the oldest go past KEPT_ITERATORS (a quarter of an hour of one poller,
    which holds each for well under a second and gets a new one for one gone)."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    for account in list(dynamodbstreams_backends.values()):
        for backend in list(account.values()):
            iterators = backend.shard_iterators
            for arn in list(iterators)[: max(0, len(iterators) - KEPT_ITERATORS)]:
                del iterators[arn]


def keep_streams_through_cancelled_transactions() -> None:
    """moto cancels a transaction by putting back deep copies of the tables it touched, stream
    included: every shard iterator handed out before then still reads the old copy's stream,
    which gets no record again. A stream poller (tally serve's, for history and billing marks)
    would stall at the first cancelled transaction, as a billing run that loses a race makes
    one. DynamoDB's streams go on. This keeps each table's own stream across a cancellation,
    without the records of the writes the cancellation undid (moto wrote them as it went)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    cancellable = DynamoDBBackend.transact_write_items
    if getattr(cancellable, "keeps_streams", False):
        return
    # The copies moto takes for a cancellation share the live stream rather than copy it: the
    # stream keeps every record, so copying it made each transaction slower than the last (a
    # 64-shard rewrite passed tally's 2 s read timeout after a few hundred requests).
    StreamShard.__deepcopy__ = lambda shard, memo: shard  # type: ignore[attr-defined]

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        streams = {
            name: (table, table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if getattr(table, "stream_shard", None) is not None
        }
        try:
            return cancellable(self, transact_items)
        except Exception:
            for name, (table, shard, kept) in streams.items():
                restored = self.tables.get(name)
                if restored is not None and restored is not table:
                    del shard.items[kept:]  # the undone writes' records
                    shard.table, restored.stream_shard = restored, shard
            raise

    transact_write_items.keeps_streams = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _server(listening: Any, atomic: bool, on_write: Callable[[], None] | None = None) -> Any:
    """moto's server on a listening socket (ports.listen); atomic: behind Serialised."""
    from moto.backends import get_backend
    from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    keep_streams_through_cancelled_transactions()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for service in ("dynamodb", "dynamodbstreams"):
        get_backend(service).reset()  # moto's state is per process: start empty
    # This endpoint serves DynamoDB and DynamoDB Streams only.
    app = ByTarget(create_backend_app("dynamodb"), create_backend_app("dynamodbstreams"))
    host, port = listening.getsockname()[:2]
    server = make_server(
        host,
        port,
        Serialised(app, on_write) if atomic else app,
        threaded=True,
        request_handler=MotoRequestHandler,
        fd=listening.fileno(),
    )
    listening.close()  # the server holds its own copy of the socket
    return server


# (key id, secret) of every client of a local endpoint: neither moto nor DynamoDB Local checks them
LOCAL_CREDENTIALS = ("local", "local")


def client(endpoint: str, service: str = "dynamodb", **config: Any) -> Any:
    """A client of a local endpoint (DynamoDB, or its Streams API: "dynamodbstreams")."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_CREDENTIALS[0],
        aws_secret_access_key=LOCAL_CREDENTIALS[1],
        config=Config(retries={"mode": "standard", "max_attempts": 3}, **config),
    )


def ensure_tables(ddb: Any, template: Template) -> list[str]:
    """Create every table of template.yaml that the endpoint lacks; return the ones created."""
    existing = set(ddb.list_tables().get("TableNames", []))
    return _create(ddb, template, [name for name in template.tables() if name not in existing])


def reset_tables(ddb: Any, template: Template) -> None:
    """Every table of template.yaml deleted and created again, empty: how a test starts afresh on
    a shared endpoint such as DynamoDB Local (faster than deleting the items one by one)."""
    delete_tables(ddb, template)
    _create(ddb, template, list(template.tables()), replacing=True)


def delete_tables(ddb: Any, template: Template) -> None:
    """Delete every table of template.yaml the endpoint has."""
    existing = set(ddb.list_tables().get("TableNames", []))
    for name in template.tables():
        if name in existing:
            ddb.delete_table(TableName=name)


def _create(ddb: Any, template: Template, names: list[str], *, replacing: bool = False):
    specs = template.tables()
    created = [name for name in names if _create_one(ddb, specs[name], replacing=replacing)]
    for name in created:
        _wait_active(ddb, name)
    for name, attribute in template.ttl().items():
        if name in created:
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
            )
    return created


def _create_one(ddb: Any, spec: dict[str, Any], *, replacing: bool) -> bool:
    """Create one table; False if it exists (made meanwhile by another process). `replacing`:
    it was just deleted, so "in use" means "still being deleted": try again."""
    deadline = time.monotonic() + 30
    while True:
        try:
            ddb.create_table(**spec)
            return True
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceInUseException":
                raise
            if not replacing:
                return False
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _wait_active(ddb: Any, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while ddb.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {name} did not become ACTIVE")
        time.sleep(0.1)


def _main(argv: list[str]) -> int:
    """The embedded endpoint's own process (EmbeddedDynamoDB.start). Its first line on stdout is
    `listening on PORT`, or `in use: ...`. It ends on SIGTERM, which it also gets when tally serve
    dies (Linux), or when it sees that tally serve is gone; Ctrl-C is tally serve's to handle."""
    parser = argparse.ArgumentParser(prog="python -m tally_local.dynamodb")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--not-atomic", action="store_true")
    parser.add_argument("--state", type=Path, help="load the tables from this file and save them")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _end)
    try:
        listening = ports.listen(args.host, args.port)
    except ports.InUse as err:
        print(f"in use: {err}", flush=True)
        return 3
    saver = None
    if args.state:
        from tally_local import moto_state

        try:
            saved = moto_state.read(args.state)
        except moto_state.Unreadable as err:
            print(f"unreadable: {err}", flush=True)
            return 4
        server = _server(listening, atomic=True)
        saver = moto_state.Saver(args.state, server.app.lock)
        server.app.on_write = saver.changed

        def load() -> None:  # while the main thread serves; tally serve waits for the line
            ensure_tables(client(f"http://{args.host}:{server.port}"), Template())
            if saved:
                moto_state.load(saved)
            saver.start()
            print(f"listening on {server.port}", flush=True)

        threading.Thread(target=load, name="state load", daemon=True).start()
    else:
        server = _server(listening, atomic=not args.not_atomic)
        print(f"listening on {server.port}", flush=True)
    _watch_parent()
    try:
        server.serve_forever()
    finally:
        if saver:
            saver.stop()
    return 0


def _end(*_: Any) -> None:
    """SIGTERM: unwind serve_forever to its `finally` (the last save). Once only: a second
    SIGTERM (the parent watch's, after the system's) must not cut that save short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)


def _watch_parent() -> None:
    """End this process (as SIGTERM would) when the one that started it is gone: where the
    system does not signal it (macOS), and as a second guard where it does."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
