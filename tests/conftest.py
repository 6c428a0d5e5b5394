"""Shared fixtures: the Lambda environment of template.yaml, DynamoDB tables built from the
template (on moto in-process, or on DynamoDB Local: `--dynamodb` / TALLY_DYNAMODB), and a client
that sends HTTP requests through the local gateway to the real handlers."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from werkzeug.test import Client

from tally import aws, clock, warm_cache
from tally_local import dynamodb, dynamodb_local
from tally_local.cli import DEFAULT_ADMIN_TOKEN, local_environment
from tally_local.demo import DEMO_KEY, seed_demo
from tally_local.gateway import Gateway
from tally_local.template import Template

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
TEMPLATE = Template()
ADMIN_TOKEN = DEFAULT_ADMIN_TOKEN  # the token the sample events carry


def _clear_caches() -> None:
    warm_cache.reset_all()  # every cache of the layer registers itself there


class MovableClock:
    """Time frozen at the real now (a clock set in the past would find every bucket written
    before it a window ahead, and a real DynamoDB's TTL would delete its buckets)."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at

    def move(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def time_(monkeypatch: pytest.MonkeyPatch) -> MovableClock:
    """tally.clock.now, frozen at the real now and moved by hand (the rate-limit tests)."""
    moved = MovableClock()
    monkeypatch.setattr(clock, "now", moved)
    return moved


# ------------------------------------------------------------------ the DynamoDB backend

BACKENDS = ("moto", "dynamodb-local")
ONLY = {"moto_only": "moto", "dynamodb_local_only": "dynamodb-local"}  # marker -> its backend


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--dynamodb",
        choices=BACKENDS,
        default=os.environ.get("TALLY_DYNAMODB") or "moto",
        help="the DynamoDB the api and e2e tiers run on: moto in-process (default), or "
        "DynamoDB Local, started once for the run (default: $TALLY_DYNAMODB, else moto)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # `make test` runs the DynamoDB Local pass in the background, which sh starts with SIGINT
    # ignored: Ctrl-C (and a TERM) must stop it as it stops the other pass, through pytest's own
    # KeyboardInterrupt, so that the fixtures stop the tally serves they started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if config.getoption("--dynamodb") == "dynamodb-local":
        reason = dynamodb_local.unavailable_reason()
        if reason:
            raise pytest.UsageError(f"--dynamodb dynamodb-local: {reason}")


def pytest_report_header(config: pytest.Config) -> str:
    backend = config.getoption("--dynamodb")
    started = " (started once, at the first test that needs it)" if backend != "moto" else ""
    return f"dynamodb: {backend}{started}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that pin the DynamoDB calls a request makes are named test_cost_*: `-m cost`.

    A test marked for one backend is skipped on the other, with its reason. On DynamoDB Local,
    tests that never touch DynamoDB (no `dynamodb_backend` among their fixtures) are deselected:
    the moto run has run them already."""
    backend = config.getoption("--dynamodb")
    kept, deselected = [], []
    for item in items:
        if item.name.startswith("test_cost"):
            item.add_marker(pytest.mark.cost)
        only = [marker for marker in ONLY if item.get_closest_marker(marker)]
        for marker in only:
            reason = " ".join(item.get_closest_marker(marker).args)
            if not reason:
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{marker} needs a reason")
            if ONLY[marker] != backend:
                item.add_marker(pytest.mark.skip(reason=f"{marker}: {reason}"))
        if backend != "moto" and not only and "dynamodb_backend" not in item.fixturenames:
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@dataclass
class Backend:
    """The DynamoDB under test: moto in-process (`endpoint` None: mock_aws), or an endpoint."""

    name: str
    endpoint: str | None = None

    def client(self) -> Any:
        return boto3.client("dynamodb", region_name="us-east-1", endpoint_url=self.endpoint)


@pytest.fixture(scope="session")
def dynamodb_backend(pytestconfig: pytest.Config):
    """The backend of this run; DynamoDB Local is started once, at the first test needing it."""
    name = pytestconfig.getoption("--dynamodb")
    if name == "moto":
        yield Backend(name)
        return
    local = dynamodb_local.DynamoDBLocal()
    try:
        yield Backend(name, local.start())
    finally:
        local.stop()


@pytest.fixture(autouse=True)
def lambda_env(monkeypatch: pytest.MonkeyPatch):
    """What Lambda gives every function (from template.yaml), with no real AWS in reach."""
    for name, value in local_environment(TEMPLATE).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("TALLY_ADMIN_TOKEN", ADMIN_TOKEN)
    _clear_caches()
    yield
    _clear_caches()


@pytest.fixture
def ddb(dynamodb_backend: Backend, monkeypatch: pytest.MonkeyPatch):
    """The backend's DynamoDB with every table of template.yaml, empty; tally's client and this
    one both point at it."""
    if dynamodb_backend.endpoint is None:
        with mock_aws():
            client = dynamodb_backend.client()
            dynamodb.ensure_tables(client, TEMPLATE)
            yield client
        return
    from tests.serve import IN_USE

    assert dynamodb_backend.endpoint not in IN_USE, (
        "a tally serve of this module keeps its state on DynamoDB Local: a test using `ddb` "
        "would empty its tables (put such tests before the server's)"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_backend.endpoint)
    client = dynamodb_backend.client()
    dynamodb.reset_tables(client, TEMPLATE)
    yield client


def streams_client() -> Any:
    """A DynamoDB Streams client on the backend tally's client uses."""
    # moto answers on the classic endpoint only (botocore now picks an account-based one)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    return boto3.client(
        "dynamodbstreams",
        region_name="us-east-1",
        endpoint_url=endpoint or "https://streams.dynamodb.us-east-1.amazonaws.com",
    )


class StreamFeed:
    """Hands the counters table's new stream records to CounterStreamFunction, as Lambda does:
    each call delivers what was not delivered yet, in one batch; a batch that reports failures
    is kept from its first failed record on, for the next call."""

    def __init__(self, ddb: Any) -> None:
        self.ddb, self.streams, self.delivered = ddb, streams_client(), 0
        self.function = TEMPLATE.functions["CounterStreamFunction"]

    def __call__(self) -> dict:
        from tally_local.gateway import LambdaContext
        from tally_local.streams import read_all

        records = read_all(self.ddb, self.streams, "CountersTable")[self.delivered :]
        if not records:
            return {"batchItemFailures": []}
        answer = self.function.load()({"Records": records}, LambdaContext(self.function))
        numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        failed = [numbers.index(f["itemIdentifier"]) for f in answer["batchItemFailures"]]
        self.delivered += min(failed, default=len(records))
        return answer


@pytest.fixture
def counter_stream(ddb) -> StreamFeed:
    """Call it to run CounterStreamFunction over the counters' stream since the last call."""
    return StreamFeed(ddb)


@pytest.fixture
def demo(ddb) -> str:
    """The demo workspace (as `tally serve` seeds it); returns its admin key."""
    seed_demo(ddb)
    return DEMO_KEY


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class Api:
    """HTTP requests through the local gateway (routing + payload 2.0 events) to the handlers."""

    def __init__(self) -> None:
        self.client = Client(Gateway(TEMPLATE, log=_Discard()))

    def __call__(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if key:
            sent["Authorization"] = f"Bearer {key}"
        data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
        response = self.client.open(path, method=method, headers=sent, data=data)
        text = response.get_data(as_text=True)
        # A JSON answer parsed; any other (an SVG badge) kept as its text.
        body = (
            json.loads(text) if text and response.mimetype == "application/json" else text or None
        )
        return Answer(response.status_code, body, dict(response.headers))


class _Discard:
    def write(self, _: str) -> None:
        pass

    def flush(self) -> None:
        pass


@pytest.fixture
def api(ddb) -> Api:
    return Api()


@pytest.fixture
def workspace(api) -> tuple[str, str]:
    """A fresh workspace `acme` and its admin key, made through the public API."""
    answer = api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "acme"})
    assert answer.status == 201, answer.body
    return "acme", answer.body["api_key"]


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


class DynamoDBFaults:
    """Faults at the transport, as DynamoDB would show them, the same on both backends.
    `decide(operation)` returns None (a normal answer), "refuse:<Code>:<status>" (answered with
    that error, and nothing sent: nothing applied), or "lost" / "lost:<botocore exception>" (the
    request is sent and applied, then its answer never comes back: the exception, a
    ReadTimeoutError by default, is raised inside botocore's retry loop).

    The transport is moto's request handler under mock_aws, else botocore's HTTP send. Wrapping
    it, not adding a `before-send` hook, is what keeps a refused request from being applied:
    botocore runs every before-send handler, moto's included."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, decide) -> None:
        from botocore.endpoint import Endpoint
        from moto.core.botocore_stubber import BotocoreStubber

        self.decide = decide
        stub, send = BotocoreStubber.__call__, Endpoint._send

        def through_moto(stubber, event_name, request, **kwargs):
            deliver = lambda: stub(stubber, event_name, request, **kwargs)  # noqa: E731
            if not (stubber.enabled and event_name.startswith("before-send.dynamodb")):
                return deliver()
            return self._transport(request, deliver)

        def through_http(endpoint, request):
            deliver = lambda: send(endpoint, request)  # noqa: E731
            return self._transport(request, deliver) if _operation(request) else deliver()

        monkeypatch.setattr(BotocoreStubber, "__call__", through_moto)
        monkeypatch.setattr(Endpoint, "_send", through_http)
        monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _seconds: None)  # no backoff

    def _transport(self, request, deliver):
        fault = self.decide(_operation(request))
        if fault is None:
            return deliver()
        if fault.startswith("lost"):  # "lost" or "lost:<botocore exception>"
            deliver()
            import botocore.exceptions

            name = fault.partition(":")[2] or "ReadTimeoutError"
            raise getattr(botocore.exceptions, name)(endpoint_url=request.url, error="lost")
        _, code, status = fault.split(":")
        return _error_response(request.url, int(status), code)

    def stop(self) -> None:
        """Normal answers from now on (monkeypatch.undo() would also undo the test's env)."""
        self.decide = lambda _operation: None


def _operation(request) -> str:
    """The DynamoDB operation a prepared request calls ("" for any other service)."""
    target = request.headers.get("X-Amz-Target") or b""
    target = target.decode() if isinstance(target, bytes) else target
    service, _, operation = target.partition(".")
    return operation if service.startswith("DynamoDB_") else ""


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any):
        yield self.data


def _error_response(url: str, status: int, code: str):
    from botocore.awsrequest import AWSResponse

    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code})
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(url, status, headers, _Body(body.encode()))


def make_public(ddb, workspace: str, name: str) -> None:
    """Make a counter public directly in the table (for tests below the settings endpoint)."""
    ddb.update_item(
        TableName="CountersTable",
        Key={"workspace": {"S": workspace}, "counter": {"S": name}},
        UpdateExpression="SET vis = :p",
        ExpressionAttributeValues={":p": {"S": "public"}},
    )


def rate_limit_table_down(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """Every write to the rate-limit table fails with `code`; other tables answer normally."""
    from botocore.exceptions import ClientError

    client = aws.dynamodb()
    update_item = client.update_item

    def failing(**params):
        if params["TableName"] == "RateLimitsTable":
            raise ClientError({"Error": {"Code": code, "Message": "down"}}, "UpdateItem")
        return update_item(**params)

    monkeypatch.setattr(client, "update_item", failing)


class Calls(list):
    """The DynamoDB calls a client makes from now on, in order; `pop()` takes them."""

    def pop(self) -> list:  # type: ignore[override]
        taken = list(self)
        self.clear()
        return taken


def record_calls(client: Any = None, *, tables: bool = False) -> Calls:
    """Record each call of `client` (tally's by default): its operation name, or with `tables`,
    (operation, table)."""
    calls = Calls()

    def record(model, params, **_):
        calls.append((model.name, params.get("TableName", "")) if tables else model.name)

    (client or aws.dynamodb()).meta.events.register("before-parameter-build.dynamodb.*", record)
    return calls


def record_write_units(client: Any = None) -> list:
    """The write units each write of `client` (tally's by default) consumes from now on:
    (operation, table, units) per table, in order; `pop()` takes them. Only DynamoDB Local
    counts them as DynamoDB does."""
    return dynamodb_local.record_write_units(client or aws.dynamodb())


def record_read_units(client: Any = None) -> list:
    """The read units (and items) each read of `client` (tally's by default) consumes from now
    on: (operation, table, units, items); DynamoDB Local only, as for writes."""
    return dynamodb_local.record_read_units(client or aws.dynamodb())


def emitted_metrics(capsys) -> set[str]:
    """Metric names in the EMF lines printed since the last call."""
    names = set()
    for line in capsys.readouterr().out.splitlines():
        if line.startswith('{"_aws"'):
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                names |= {m["Name"] for m in directive["Metrics"]}
    return names


@pytest.fixture(scope="module")
def served(tmp_path_factory, dynamodb_backend):
    """A real `tally serve` (no schedule) for the tests of one module, on the run's backend."""
    from tests.serve import Server

    running = Server(
        tmp_path_factory.mktemp("serve"),
        schedule_interval=None,
        endpoint=dynamodb_backend.endpoint,
    )
    yield running
    running.stop()


def resolve_publicly(monkeypatch: pytest.MonkeyPatch, *hosts: str) -> None:
    """These host names resolve to a public address (this machine has no DNS); every other
    name resolves as before (the DynamoDB endpoint among them)."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in hosts:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port or 443))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def receiver():
    """Receivers made by `receiver(statuses)`, shut down after the test."""
    from tests.webhook_receiver import Receiver

    made: list[Receiver] = []

    def make(statuses: list[int] | None = None) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.server.shutdown()
