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
"""

from __future__ import annotations

import atexit
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tally_local.dynamodb_local import die_with_parent, end_process
from tally_local.template import REGION, Template


class Serialised:
    """WSGI middleware: one request at a time, the answer read to its end inside the lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()


class EmbeddedDynamoDB:
    """moto's DynamoDB on loopback, every call atomic (`atomic=False` gives plain moto, which the
    tests use to show the lock is what makes the difference).

    It runs in a process of its own unless `own_process=False`: moto is pure Python, so in the
    process of `tally serve` it and the handlers share one GIL, and under load a call waited
    long enough behind handlers to pass tally's 2 s read timeout (a 503 "outcome unknown")."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        atomic: bool = True,
        own_process: bool = True,
    ) -> None:
        self.host, self.port, self.atomic, self.own_process = host, port, atomic, own_process
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedDynamoDB:
        if self.own_process:
            return self._start_process()
        self._server = _server(self.host, self.port, self.atomic)
        self.port = self._server.server_port  # when asked for port 0
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def _start_process(self) -> EmbeddedDynamoDB:
        command = [sys.executable, "-m", "tally_local.dynamodb", self.host, str(self.port)]
        self._process = subprocess.Popen(
            command if self.atomic else [*command, "--not-atomic"],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        atexit.register(self.stop)
        ready = self._process.stdout.readline() if self._process.stdout else ""
        if not ready.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the embedded DynamoDB did not start on {self.endpoint}")
        self.port = int(ready.split()[-1])
        return self

    def stop(self) -> None:
        if self._process is not None:
            process, self._process = self._process, None
            atexit.unregister(self.stop)
            end_process(process, timeout=5)
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
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(STREAMS_TARGET):
            return self.dynamodb(environ, start_response)
        try:
            return self.streams(environ, start_response)
        finally:
            _forget_old_iterators()


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


def _server(host: str, port: int, atomic: bool) -> Any:
    from moto.backends import get_backend
    from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for service in ("dynamodb", "dynamodbstreams"):
        get_backend(service).reset()  # moto's state is per process: start empty
    # This endpoint serves DynamoDB and DynamoDB Streams only.
    app = ByTarget(create_backend_app("dynamodb"), create_backend_app("dynamodbstreams"))
    return make_server(
        host,
        port,
        Serialised(app) if atomic else app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


def client(endpoint: str, service: str = "dynamodb", **config: Any) -> Any:
    """A client of a local endpoint (DynamoDB, or its Streams API: "dynamodbstreams")."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
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


if __name__ == "__main__":  # the embedded endpoint's own process (EmbeddedDynamoDB.start)
    host, port, *flags = sys.argv[1:]
    server = _server(host, int(port), atomic="--not-atomic" not in flags)
    print(f"listening on {server.server_port}", flush=True)
    server.serve_forever()
