"""What the benchmarks share: the Lambda environment of template.yaml and an in-process API
(the local gateway over moto, or over another endpoint such as DynamoDB Local), as the tests
build them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # scripts run from anywhere

ADMIN = "bench-admin-token"


def lambda_environment() -> None:
    from tally_local.template import Template

    os.environ.update(Template().environment())
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        TALLY_ADMIN_TOKEN=ADMIN,
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="ERROR",
    )
    os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    os.environ.pop("TALLY_LOG_SAMPLE_RATE", None)  # a script prints its table, nothing else


@contextlib.contextmanager
def in_process_api(endpoint: str | None = None):
    """An HTTP client over the local gateway and moto (or the DynamoDB at `endpoint`, its tables
    emptied first): (call, dynamodb client)."""
    import boto3
    from moto import mock_aws
    from werkzeug.test import Client

    from tally import aws, config
    from tally_local import dynamodb
    from tally_local.gateway import Gateway
    from tally_local.template import Template

    lambda_environment()
    if endpoint:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    config.settings.cache_clear()
    aws.dynamodb.cache_clear()
    with contextlib.nullcontext() if endpoint else mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)
        if endpoint:
            dynamodb.reset_tables(client, Template())
        else:
            dynamodb.ensure_tables(client, Template())
        http = Client(Gateway(Template(), log=open(os.devnull, "w")))  # noqa: SIM115

        def call(
            method: str, path: str, key: str | None = None, body: Any = None, headers=None
        ) -> Any:
            """(status, the JSON answer, or the text of any other, or None when empty)."""
            sent = {**({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
            data = json.dumps(body) if body is not None else None
            answer = http.open(path, method=method, headers=sent, data=data)
            call.headers = dict(answer.headers)  # the last answer's, for who needs them
            text = answer.get_data(as_text=True)
            if text and answer.mimetype == "application/json":
                return answer.status_code, json.loads(text)
            return answer.status_code, text or None

        yield call, client


# ------------------------------------------------------------------ two callers of `up`


@dataclass(frozen=True)
class Caller:
    """A caller of `up` (bench/cost.py, bench/dynamodb_calls.py), run on simulated time."""

    name: str
    described: str
    paths: int  # it sends to these paths in turn
    gap_s: float  # simulated seconds between its requests
    quota: int | None  # its workspace's limit, requests a minute (None: the default 600)
    warm: int  # requests before measuring: a container in its steady state
    requests: int  # requests measured


# 50/s is over the default 600 a minute: the busy caller's workspace has an operator's 6,000 (100/s).
BUSY = Caller("busy", "one key, one path, 50 requests/s", 1, 0.02, 6000, 60, 300)
# Each path comes round once a minute: its bucket last taken a window ago (a new path again).
SPARSE = Caller("sparse", "one key, 60 paths, each once a minute", 60, 1.0, None, 60, 60)
CALLERS = (BUSY, SPARSE)


@dataclass
class Measured:
    """What one warm `up` of a caller costs, per request, as this process measured it."""

    calls: dict[tuple[str, str], float]  # (operation, table) -> calls per request
    write_units: float
    read_units: float
    handler_cpu_ms: float  # CPU time in the handler, moto's excluded
    emf_and_warning_bytes: float  # log bytes of every request (EMF line, any warning)
    summary_bytes: float  # bytes of the sampled "invocation" line, when one is written (0: none)

    @property
    def dynamodb_calls(self) -> float:
        return sum(self.calls.values())


class SimulatedTime:
    """tally's clock and the monotonic clock of its warm caches, moved by the caller's gaps."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.start = datetime.now(UTC)
        self.elapsed = 0.0

    def now(self) -> Any:
        from datetime import timedelta

        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return 10**6 + self.elapsed

    @contextlib.contextmanager
    def applied(self):
        import types
        from unittest import mock

        from tally import clock, warm_cache

        shim = types.SimpleNamespace(monotonic=self.monotonic)
        with mock.patch.object(clock, "now", self.now), mock.patch.object(warm_cache, "time", shim):
            yield self


def measure_caller(caller: Caller) -> Measured:
    """Run `caller` through the local gateway over moto on simulated time: its DynamoDB calls,
    the handler's CPU time (moto's own subtracted: thread CPU time inside moto's transport) and
    the bytes it logs, with metrics on and the template's log level."""
    from collections import Counter
    from unittest import mock

    from moto.core.botocore_stubber import BotocoreStubber

    import tally_local.gateway as gateway

    with in_process_api() as (call, _), SimulatedTime().applied() as sim:
        from tally import aws
        from tally.telemetry import logger

        _, made = call("POST", "/admin/workspaces", ADMIN, {"workspace": "bench"})
        key = made["api_key"]
        if caller.quota:
            body = {"quota": caller.quota, "window": 60}
            call("PUT", "/admin/workspaces/bench/rate-limit", ADMIN, body)
        sent: list[tuple[str, str, bool]] = []
        aws.dynamodb().meta.events.register(
            "before-parameter-build.dynamodb.*",
            lambda model, params, **_: sent.append(
                (model.name, params.get("TableName", ""), bool(params.get("ConsistentRead")))
            ),
        )
        cpu = {"handler": 0.0, "moto": 0.0}
        invoke, stub = gateway.invoke, BotocoreStubber.__call__

        def timed_invoke(fn: Any, event: Any) -> Any:
            began = time.thread_time()
            try:
                return invoke(fn, event)
            finally:
                cpu["handler"] += time.thread_time() - began

        def timed_moto(self: Any, *args: Any, **kwargs: Any) -> Any:
            began = time.thread_time()
            try:
                return stub(self, *args, **kwargs)
            finally:
                cpu["moto"] += time.thread_time() - began

        def send(count: int, start: int = 0) -> None:
            for i in range(start, start + count):
                sim.elapsed += caller.gap_s
                status, _ = call("GET", f"/v2/bench/c{i % caller.paths}/up", key)
                assert status == 200, (caller.name, i, status)

        send(caller.warm)
        sent.clear()
        logged = io.StringIO()
        os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)  # EMF lines as Lambda prints them
        os.environ["TALLY_LOG_SAMPLE_RATE"] = "0"  # the sampled line is measured apart, below
        logger.setLevel("INFO")  # the template's POWERTOOLS_LOG_LEVEL
        stream = logger.registered_handler.setStream(logged)
        try:
            with (
                mock.patch.object(gateway, "invoke", timed_invoke),
                mock.patch.object(BotocoreStubber, "__call__", timed_moto),
                contextlib.redirect_stdout(logged),
            ):
                send(caller.requests, caller.warm)
            measured = list(sent)
            everyday = logged.getvalue()
            logged.seek(0)
            logged.truncate()
            os.environ["TALLY_LOG_SAMPLE_RATE"] = "1"
            with contextlib.redirect_stdout(io.StringIO()):
                send(5, caller.warm + caller.requests)
            summaries = [line for line in logged.getvalue().splitlines() if '"invocation"' in line]
        finally:
            logger.registered_handler.setStream(stream)
            logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])
            os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
            os.environ.pop("TALLY_LOG_SAMPLE_RATE", None)
    n = caller.requests
    calls = Counter((operation, table) for operation, table, _ in measured)
    writes = sum(1 for operation, _, _ in measured if operation in WRITE_OPERATIONS)
    # A read of an item under 4 KB: one read unit if strongly consistent, else half of one.
    reads = sum(
        1.0 if strong else 0.5 for operation, _, strong in measured if operation == "GetItem"
    )
    return Measured(
        calls={key_: count / n for key_, count in calls.items()},
        write_units=writes / n,
        read_units=reads / n,
        handler_cpu_ms=(cpu["handler"] - cpu["moto"]) / n * 1000,
        emf_and_warning_bytes=sum(len(line.encode()) for line in everyday.splitlines()) / n,
        summary_bytes=(
            sum(len(line.encode()) for line in summaries) / len(summaries) if summaries else 0.0
        ),
    )


# Every write here is an UpdateItem of an item under 1 KB: one write unit (bench/write_cost.py).
WRITE_OPERATIONS = {"UpdateItem", "PutItem"}
