"""Shared fixtures: the Lambda environment of template.yaml, moto tables built from the template,
and a client that sends HTTP requests through the local gateway to the real handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from werkzeug.test import Client

from tally import aws, warm_cache
from tally_local import dynamodb
from tally_local.cli import DEFAULT_ADMIN_TOKEN
from tally_local.demo import DEMO_KEY, seed_demo
from tally_local.gateway import Gateway
from tally_local.template import Template

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
TEMPLATE = Template()
ADMIN_TOKEN = DEFAULT_ADMIN_TOKEN  # the token the sample events carry


def _clear_caches() -> None:
    warm_cache.reset_all()  # every cache of the layer registers itself there


def pytest_collection_modifyitems(items) -> None:
    """Tests that pin the DynamoDB calls a request makes are named test_cost_*: `-m cost`."""
    for item in items:
        if item.name.startswith("test_cost"):
            item.add_marker(pytest.mark.cost)


@pytest.fixture(autouse=True)
def lambda_env(monkeypatch: pytest.MonkeyPatch):
    """What Lambda gives every function (from template.yaml), with no real AWS in reach."""
    for name, value in TEMPLATE.environment().items():
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
def ddb():
    """moto's DynamoDB in-process, with every table of template.yaml."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.ensure_tables(client, TEMPLATE)
        yield client


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
    """Faults in front of moto, as DynamoDB would show them. `decide(operation)` returns None (a
    normal answer), "refuse:<Code>:<status>" (refused before anything is applied), or "lost"
    (applied, and the answer never comes back: a read timeout inside botocore's retry loop).

    It wraps moto's request handler itself: a plain `before-send` hook would not stop moto from
    also applying the request, since botocore runs every before-send handler."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, decide) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.__call__
        self.decide = decide

        def faulty(stubber, event_name, request, **kwargs):
            operation = event_name.rsplit(".", 1)[-1]
            fault = (
                self.decide(operation) if event_name.startswith("before-send.dynamodb") else None
            )
            if fault is None:
                return original(stubber, event_name, request, **kwargs)
            if fault.startswith("lost"):  # "lost" or "lost:<botocore exception>"
                original(stubber, event_name, request, **kwargs)
                import botocore.exceptions

                name = fault.partition(":")[2] or "ReadTimeoutError"
                raise getattr(botocore.exceptions, name)(endpoint_url=request.url, error="lost")
            _, code, status = fault.split(":")
            return _error_response(int(status), code)

        monkeypatch.setattr(BotocoreStubber, "__call__", faulty)
        monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _seconds: None)  # no backoff

    def stop(self) -> None:
        """Normal answers from now on (monkeypatch.undo() would also undo the test's env)."""
        self.decide = lambda _operation: None


def _error_response(status: int, code: str):
    from botocore.awsrequest import AWSResponse
    from moto.core.botocore_stubber import MockRawResponse

    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code})
    return AWSResponse("https://dynamodb", status, {}, MockRawResponse(body.encode()))


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


def emitted_metrics(capsys) -> set[str]:
    """Metric names in the EMF lines printed since the last call."""
    names = set()
    for line in capsys.readouterr().out.splitlines():
        if line.startswith('{"_aws"'):
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                names |= {m["Name"] for m in directive["Metrics"]}
    return names


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real `tally serve` (no schedule) for the tests of one module."""
    from tests.serve import Server

    running = Server(tmp_path_factory.mktemp("serve"), schedule_interval=None)
    yield running
    running.stop()
