"""End to end: a real `tally serve` process on loopback, spoken to over HTTP, and `tally invoke`
against its embedded DynamoDB endpoint."""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tally_local import runfile
from tally_local.demo import DEMO_KEY
from tests.conftest import ROOT
from tests.serve import ADMIN, TALLY, Server, free_port, started

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory, dynamodb_backend):
    running = Server(tmp_path_factory.mktemp("serve"), endpoint=dynamodb_backend.endpoint)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def acme(server) -> str:
    status, body = server.call(
        "/admin/workspaces", method="POST", key=ADMIN, body={"workspace": "acme"}
    )
    assert status == 201, body
    return body["api_key"]


def test_the_readme_session_works_against_tally_serve(server, acme):
    assert server.call("/v2/acme/visits/up", key=acme)[1]["data"]["value"] == 1
    status, read = server.call("/v2/acme/visits", key=acme)
    assert (status, read["data"]["value"]) == (200, 1)
    status, stats = server.call("/v2/acme/visits/stats", key=acme)
    assert stats["data"]["stats"]["today"] == {"up": 1, "down": 0}


def test_tally_serve_logs_one_line_per_request(server, acme):
    server.call("/v2/acme/logged/up", key=acme)
    server.call("/v2/acme/logged/nowhere", key=acme)

    lines = server.log().splitlines()
    assert any("GET /v2/acme/logged/up 200 V2UpFunction" in line for line in lines)
    assert any("GET /v2/acme/logged/nowhere 404 RouteNotFoundFunction" in line for line in lines)
    assert acme not in server.log()


def test_each_request_line_says_how_many_dynamodb_calls_its_function_made(server, acme):
    server.call("/v2/acme/costed/up", key=acme)
    server.call("/v2/acme/costed/up", key=acme)  # a path the key has used: no new-paths token
    server.call("/openapi.json")  # no function runs

    lines = server.log().splitlines()
    ups = [line for line in lines if "GET /v2/acme/costed/up 200 V2UpFunction" in line]
    assert ups[-1].endswith("ms 2 DynamoDB calls")  # its path's rate-limit bucket, the change
    assert [line for line in lines if " GET /openapi.json 200 " in line][-1].endswith("ms")


def test_32_concurrent_callers_mixing_up_and_down_are_counted_exactly(server, acme):
    rng = random.Random(2026)
    plan = [rng.choice(("up", "down")) for _ in range(32 * 15)]

    def call(direction: str) -> int:
        return server.call(f"/v2/acme/race/{direction}", key=acme)[0]

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(call, plan))

    assert statuses == [200] * len(plan)
    # One line per request, whole: no two threads' lines ran together.
    logged = [line for line in server.log().splitlines() if "GET /v2/acme/race/" in line]
    whole = re.compile(
        r"\S+ GET /v2/acme/race/(up|down) 200 V2(Up|Down)Function \S+ms \d+ DynamoDB calls?"
    )
    assert len(logged) == len(plan) and all(whole.fullmatch(line) for line in logged), logged
    data = server.call("/v2/acme/race", key=acme)[1]["data"]
    ups, downs = plan.count("up"), plan.count("down")
    assert (data["value"], data["up_count"], data["down_count"]) == (ups - downs, ups, downs)
    stats = server.call("/v2/acme/race/stats", key=acme)[1]["data"]["stats"]
    assert stats["today"] == {"up": ups, "down": downs}


def invoke(server: Server, args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """`tally invoke ARGS` as a user runs it beside the server (in its environment)."""
    return subprocess.run(
        [TALLY, "invoke", *args],
        cwd=ROOT,
        env=server.env if env is None else env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.dynamodb_local_only("moto runs embedded in tally serve; this is the other case")
def test_given_an_endpoint_tally_serve_uses_it_and_starts_no_embedded_moto(server):
    with socket.socket() as s:  # nothing took --dynamodb-port
        s.bind(("127.0.0.1", server.ddb_port))
    assert f"DynamoDB: {server.ddb_endpoint} (AWS_ENDPOINT_URL_DYNAMODB)" in server.log()
    assert "moto" not in server.log()
    assert server.call("/v2/demo/visits", key=DEMO_KEY)[0] == 200  # fresh tables: the demo


def test_tally_invoke_runs_a_function_against_the_running_serve_whatever_its_ports(server):
    """No flag: tally invoke finds the serve by the file it writes (moto: on its random
    --dynamodb-port; DynamoDB Local: named by the environment they share)."""
    before = server.call("/v2/demo/visits", key=DEMO_KEY)[1]["data"]["value"]

    done = invoke(server, ["V2UpFunction", "-e", "events/v2_up.json"])

    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["data"]["value"] == before + 1
    assert server.call("/v2/demo/visits", key=DEMO_KEY)[1]["data"]["value"] == before + 1


def test_tally_invoke_beside_two_serves_asks_which_and_takes_the_one_named(server, monkeypatch):
    env = {k: v for k, v in server.env.items() if not k.startswith("AWS_ENDPOINT_URL")}
    monkeypatch.setenv("TALLY_RUN_DIR", env["TALLY_RUN_DIR"])
    other = runfile.Serve(os.getpid(), "http://127.0.0.1:1", 1, server.ddb_endpoint)  # alive
    runfile.write(other)
    try:
        asked = invoke(server, ["V2UpFunction", "-e", "events/v2_up.json"], env)
        named = invoke(
            server, ["V2UpFunction", "-e", "events/v2_up.json", "--port", str(server.port)], env
        )
    finally:
        other.path.unlink()

    assert asked.returncode == 1
    assert "2 tally serves are running" in asked.stderr and "--port N" in asked.stderr
    assert f"{server.url}" in asked.stderr
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout)["statusCode"] == 200


def test_the_banner_says_where_the_state_is_kept(server):
    if server.endpoint:
        assert "state: kept by the DynamoDB at AWS_ENDPOINT_URL_DYNAMODB" in server.log()
    else:
        assert "state: in memory: gone when tally serve stops" in server.log()


def test_tally_invoke_without_an_endpoint_says_what_to_do(server):
    env = {k: v for k, v in server.env.items() if not k.startswith("AWS_ENDPOINT_URL")}
    done = invoke(
        server,
        ["V2UpFunction", "-e", "events/v2_up.json", "--dynamodb-port", str(free_port())],
        env,
    )
    assert done.returncode == 1
    assert "tally serve" in done.stderr


def test_tally_invoke_names_the_functions_when_given_an_unknown_one(server):
    done = invoke(server, ["NoSuchFunction"])
    assert done.returncode == 2
    assert "V2UpFunction" in done.stderr


def test_32_callers_racing_down_to_a_lower_bound_get_exactly_the_room_there_was(server, acme):
    status, _ = server.call(
        "/account/counters/stock/settings", method="PUT", key=acme, body={"lower_bound": 0}
    )
    assert status == 200
    assert server.call("/account/counters/stock/10", method="POST", key=acme)[1]["value"] == 10

    def down(_: int) -> int:
        return server.call("/v2/acme/stock/down", key=acme)[0]

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(down, range(32)))

    assert statuses.count(200) == 10
    assert statuses.count(409) == 22
    data = server.call("/v2/acme/stock", key=acme)[1]["data"]
    assert (data["value"], data["down_count"]) == (0, 10)


def test_32_callers_sending_1000_requests_at_one_bucket_get_no_more_than_it_holds(server):
    quota, window = 100, 60
    status, made = server.call(
        "/admin/workspaces", method="POST", key=ADMIN, body={"workspace": "limited"}
    )
    assert status == 201
    key = made["api_key"]
    status, _ = server.call(
        "/admin/workspaces/limited/rate-limit",
        method="PUT",
        key=ADMIN,
        body={"quota": quota, "window": window},
    )
    assert status == 200

    def up(_: int) -> int:
        return server.call("/v2/limited/c/up", key=key)[0]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(up, range(1000)))
    elapsed = time.monotonic() - started

    admitted = statuses.count(200)
    ceiling = quota + quota / window * elapsed
    print(f"\nrate limit: {admitted} of 1000 admitted in {elapsed:.1f} s (ceiling {ceiling:.1f})")
    assert set(statuses) <= {200, 429}
    assert quota <= admitted <= ceiling
    assert server.call("/v2/limited/c", key=key)[1]["data"]["value"] == admitted


def test_billing_while_a_counter_is_hammered_loses_nothing_and_bills_nothing_twice(server, acme):
    from tally import billing, invoices
    from tally_local import dynamodb

    threshold = 50
    status, _ = server.call(
        "/account/counters/hammered/settings",
        method="PUT",
        key=acme,
        body={"billing": {"threshold": threshold, "amount": 7, "description": "per 50"}},
    )
    assert status == 200
    client = dynamodb.client(server.ddb_endpoint)
    stop = threading.Event()
    reports: list[billing.Report] = []

    def bill_repeatedly() -> None:  # two of these overlap, besides tally serve's own schedule
        while not stop.is_set():
            reports.append(billing.run(client=client))

    def add(_: int) -> int:
        return server.call("/account/counters/hammered/1", method="POST", key=acme)[0]

    runners = [threading.Thread(target=bill_repeatedly) for _ in range(2)]
    for runner in runners:
        runner.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(add, range(400)))
    stop.set()
    for runner in runners:
        runner.join()

    def value() -> int:
        return server.call("/account/counters", key=acme)[1]["counters"]["hammered"]

    deadline = time.monotonic() + 15  # the last marks follow the stream, about a second behind
    while value() >= threshold and time.monotonic() < deadline:
        billing.run(client=client)
        time.sleep(0.2)

    assert statuses == [200] * 400
    items = [
        i
        for i in invoices.page("acme", limit=100, client=client)["list"]
        if i["source"] == "billing"
    ]
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids))
    billed_units = sum(i["amount"] for i in items) // 7 * threshold
    assert billed_units + value() == 400  # billed units + current value = all changes
    assert value() < threshold
    assert sum(r.items_created for r in reports) >= 1
    assert "schedule BillingFunction" in server.log()


@pytest.mark.dynamodb_local_only("starts a DynamoDB Local of its own: needs Java and the package")
def test_tally_serve_starts_and_stops_its_own_dynamodb_local(tmp_path):
    """`tally serve --dynamodb dynamodb-local`: AWS's DynamoDB Local, started and ended by it."""
    import os
    import urllib.request

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    log = tmp_path / "serve.log"
    process = started(["--dynamodb", "dynamodb-local", "--port", str(port)], env, log)
    try:
        assert "(DynamoDB Local, started by tally serve)" in log.read_text()
        url = f"http://127.0.0.1:{port}/v2/demo/visits/up"
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert json.loads(answer.read())["data"]["value"] == 2  # the demo's 1, then this
        jvms = subprocess.run(
            ["pgrep", "-P", str(process.pid), "java"], capture_output=True, text=True
        ).stdout.split()
        assert len(jvms) == 1
    finally:
        process.terminate()
        process.wait(timeout=20)
    deadline = time.monotonic() + 10
    while subprocess.run(["kill", "-0", jvms[0]], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "DynamoDB Local outlived tally serve"
        time.sleep(0.1)
