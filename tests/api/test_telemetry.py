"""Telemetry: Powertools logs carry correlation keys and never a secret; EMF metrics count what
operators watch."""

from __future__ import annotations

import io
import json

import pytest

from tests.conftest import ADMIN_TOKEN, TEMPLATE, emitted_metrics, rate_limit_table_down


def _records_text(caplog) -> str:
    return "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records)


@pytest.fixture
def log_stream():
    """Powertools' JSON log lines, as CloudWatch would get them (its handler keeps the stdout it
    was created with, so it is pointed at a buffer here)."""
    from tally.telemetry import logger

    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    yield buffer
    logger.registered_handler.setStream(previous)


def _log_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_session_with_keys_leaves_no_secret_in_the_logs(
    api, workspace, caplog, log_stream, monkeypatch
):
    caplog.set_level("INFO")  # what tally runs at (POWERTOOLS_LOG_LEVEL)
    _, admin = workspace
    made = api("POST", "/account/api-keys", key=admin, body={"scopes": ["write"]}).body
    api("GET", "/v2/acme/c/up", key=made["api_key"])
    api("GET", "/v2/acme/c/up", key=made["api_key"] + "x")  # a bad key
    api("GET", "/v2/acme/c/up", key=admin, headers={"Idempotency-Key": "k"})
    api("GET", "/v2/acme/c/up", key=admin, headers={"Idempotency-Key": "k"})
    api("DELETE", f"/account/api-keys/{made['key_id']}", key=admin)
    api("GET", "/v2/acme/c/up", key=made["api_key"])  # revoked
    from tally import counters

    monkeypatch.setattr(counters, "change", lambda *a, **k: 1 / 0)
    api("GET", "/v2/acme/c/up", key=admin)  # a crash, logged with its stack

    lines = _log_lines(log_stream)
    assert any(line["message"] == "unhandled error" and "exception" in line for line in lines)
    logged = _records_text(caplog) + log_stream.getvalue()
    for secret in (admin, made["api_key"], ADMIN_TOKEN, admin.split("_", 2)[2]):
        assert secret not in logged
    assert "Bearer" not in logged and "authorization" not in logged.lower()


def test_log_lines_carry_the_request_id_and_the_workspace(api, workspace, log_stream, monkeypatch):
    _, key = workspace
    rate_limit_table_down(monkeypatch, "InternalServerError")
    api("GET", "/v2/acme/c/up", key=key)

    (line,) = [line for line in _log_lines(log_stream) if "failing open" in line["message"]]
    assert line["workspace"] == "acme"
    assert line["correlation_id"]  # the API Gateway request id
    assert line["function_name"] == "V2UpFunction"


@pytest.mark.parametrize(
    ("setup", "request_", "metric"),
    [
        (None, ("GET", "/v2/acme/c/up"), "CounterChanges"),
        (
            ("PUT", "/account/counters/c/settings", {"upper_bound": 0}),
            ("GET", "/v2/acme/c/up"),
            "BoundRefusals",
        ),
        (
            ("PUT", "/admin/workspaces/acme/rate-limit", {"quota": 1, "window": 60}),
            ("GET", "/v2/acme/c/up"),
            "RateLimited",
        ),
    ],
)
def test_metrics_count_what_operators_watch(api, workspace, capsys, setup, request_, metric):
    _, key = workspace
    if setup:
        method, path, body = setup
        api(method, path, key=ADMIN_TOKEN if path.startswith("/admin") else key, body=body)
        api(*request_, key=key)  # RateLimited needs the one token spent first
    emitted_metrics(capsys)

    api(*request_, key=key)

    assert {"Requests", metric} <= emitted_metrics(capsys)


@pytest.mark.parametrize("path", ["/v2/acme/c/up", "/v2/acme/c/set?value=x"])  # 200, then 400
def test_an_idempotent_replay_is_counted_refusals_too(api, workspace, capsys, path):
    _, key = workspace
    first = api("GET", path, key=key, headers={"Idempotency-Key": "k"})
    emitted_metrics(capsys)

    again = api("GET", path, key=key, headers={"Idempotency-Key": "k"})

    assert again.status == first.status and again.headers["Idempotent-Replayed"] == "true"
    assert "IdempotentReplays" in emitted_metrics(capsys)


def test_a_dynamodb_throttle_is_counted(api, workspace, capsys, monkeypatch):
    from tests.conftest import DynamoDBFaults

    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    emitted_metrics(capsys)
    DynamoDBFaults(monkeypatch, lambda op: "refuse:ThrottlingException:400")

    assert api("GET", "/v2/acme/c", key=key).status == 503
    assert "DynamoDBThrottles" in emitted_metrics(capsys)


def test_the_tracer_is_built_for_sampled_invocations_only(monkeypatch):
    from tally import telemetry

    telemetry._tracer.cache_clear()

    @telemetry.traced
    def handler(event, context):
        return "answered"

    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0")
    assert handler({}, None) == "answered"
    assert telemetry._tracer.cache_info().currsize == 0  # no X-Ray SDK on this path

    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    assert handler({}, None) == "answered"
    assert telemetry._tracer.cache_info().currsize == 1


def test_concurrent_invocations_in_one_process_log_their_own_context(
    api, workspace, log_stream, monkeypatch
):
    """`tally serve` runs many functions at once on threads of one process: a scheduled billing
    run's lines must carry its own function name and no request's correlation id or workspace,
    and each request's lines its own."""
    import threading

    from tally_local.gateway import invoke
    from tally_local.schedule import scheduled_event
    from tests.conftest import TEMPLATE

    _, key = workspace
    rate_limit_table_down(monkeypatch, "InternalServerError")  # a warning line per request
    billing = TEMPLATE.functions["BillingFunction"]
    started = threading.Barrier(2)

    def bill():
        started.wait()
        for _ in range(20):
            invoke(billing, scheduled_event(billing))

    thread = threading.Thread(target=bill)
    thread.start()
    started.wait()
    for _ in range(20):
        api("GET", "/v2/acme/c/up", key=key)
    thread.join()

    lines = _log_lines(log_stream)
    runs = [line for line in lines if line["message"] == "billing run done"]
    assert len(runs) == 20
    for line in runs:
        assert line["function_name"] == "BillingFunction"
        assert "correlation_id" not in line and "workspace" not in line
    requests = [line for line in lines if "failing open" in line["message"]]
    assert len(requests) == 20
    for line in requests:
        assert line["function_name"] == "V2UpFunction" and line["workspace"] == "acme"


def test_disabled_metrics_print_nothing_however_many_requests(api, workspace, capsys, monkeypatch):
    """Powertools prints a metric set by itself once a metric holds 100 values, even with
    POWERTOOLS_METRICS_DISABLED: no EMF line may come out when they are off."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    _, key = workspace
    capsys.readouterr()
    for _ in range(110):
        api("GET", "/v2/acme/c", key=key)
    assert emitted_metrics(capsys) == set()


# ------------------------------------------------------------------ what is logged per request


def test_a_sampled_invocation_logs_one_invocation_line_in_place_of_lambdas_report(
    api, workspace, log_stream, monkeypatch
):
    _, key = workspace
    monkeypatch.setenv("TALLY_LOG_SAMPLE_RATE", "1")
    api("GET", "/v2/acme/c/up", key=key)

    (line,) = [line for line in _log_lines(log_stream) if line["message"] == "invocation"]
    assert line["level"] == "INFO"
    assert (line["route"], line["status"]) == ("GET /v2/{workspace}/{name}/up", 200)
    assert line["function_name"] == "V2UpFunction" and line["workspace"] == "acme"
    assert line["correlation_id"] and line["duration_ms"] > 0 and line["max_memory_mb"] > 0
    assert key not in log_stream.getvalue()


def test_unsampled_warm_invocations_log_no_line_but_every_warning(
    api, workspace, log_stream, monkeypatch
):
    _, key = workspace
    monkeypatch.setenv("TALLY_LOG_SAMPLE_RATE", "0")
    api("GET", "/v2/acme/c/up", key=key)
    api("GET", "/v2/acme/c", key=key)  # (each handler warm: its cold start logged)
    log_stream.truncate(0)
    log_stream.seek(0)

    for _ in range(10):
        api("GET", "/v2/acme/c/up", key=key)
    assert _log_lines(log_stream) == []

    from tally import warm_cache

    warm_cache.reset_all()  # (the container had leased tokens: it would not write the table)
    rate_limit_table_down(monkeypatch, "InternalServerError")
    for _ in range(10):
        api("GET", "/v2/acme/c/up", key=key)
    lines = _log_lines(log_stream)
    assert [line["level"] for line in lines] == ["WARNING"] * 10
    assert all("failing open" in line["message"] for line in lines)


def test_every_cold_start_logs_its_invocation_line_and_the_rest_are_sampled_at_the_rate(
    log_stream, monkeypatch
):
    import random

    from tally import telemetry
    from tally_local.gateway import LambdaContext
    from tests.conftest import TEMPLATE

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # (this handler counts nothing)
    context = LambdaContext(TEMPLATE.functions["V2UpFunction"])
    handler = telemetry.invocation(lambda event, context: {"statusCode": 200})
    monkeypatch.setenv("TALLY_LOG_SAMPLE_RATE", "0")
    handler({}, context)
    handler({}, context)
    first, *rest = [line for line in _log_lines(log_stream) if line["message"] == "invocation"]
    assert first["cold_start"] is True and first["init_ms"] >= 0 and rest == []

    monkeypatch.setenv("TALLY_LOG_SAMPLE_RATE", "0.1")
    random.seed(2026)
    for _ in range(1000):
        handler({}, context)
    sampled = [line for line in _log_lines(log_stream) if line["message"] == "invocation"]
    assert 70 <= len(sampled) - 1 <= 130  # ~100 of 1000 (binomial: 3 sigma either side)
    assert not any(line["cold_start"] or "init_ms" in line for line in sampled[1:])

    monkeypatch.delenv("TALLY_LOG_SAMPLE_RATE")  # as tally serve runs: no such lines at all
    cold = telemetry.invocation(lambda event, context: {"statusCode": 200})
    log_stream.truncate(0)
    log_stream.seek(0)
    cold({}, context)
    assert _log_lines(log_stream) == []


def test_metrics_from_many_threads_at_once_never_break_a_flush(capsys):
    """tally serve (and these tests) run invocations on threads of one process, and Powertools'
    one metric set is not thread-safe: counts and flushes take turns (a flush that met a count
    raised "dictionary changed size during iteration", answered 500)."""
    import threading

    from tally.telemetry import count, invocation

    @invocation
    def handler(event, context):
        for i in range(20):
            count(f"Metric{i}")
        return "ok"

    from tally_local.gateway import LambdaContext

    function = TEMPLATE.functions["V2UpFunction"]
    errors: list[BaseException] = []

    def invoke_many():
        try:
            for _ in range(150):
                handler({}, LambdaContext(function))
        except BaseException as err:  # what the race raised is the finding
            errors.append(err)

    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: a race has every chance to show
    try:
        threads = [threading.Thread(target=invoke_many) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)

    assert errors == []
    assert emitted_metrics(capsys) == {f"Metric{i}" for i in range(20)}
