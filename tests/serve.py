"""A real `tally serve` process on loopback ports, spoken to over HTTP: for the end-to-end tests,
the fuzzer and bench/throughput.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tally_local.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
TALLY = str(Path(sys.executable).with_name("tally"))
ADMIN = "e2e-admin-token"


def started(flags: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """`tally serve <flags>` once it says it is ready (its output in `log`): for the tests that
    need a serve Server does not make (its own DynamoDB, a restart on the same tables)."""
    env = {"TALLY_RUN_DIR": str(log.parent), **env}  # its run file beside its log
    process = subprocess.Popen(
        [TALLY, "serve", *flags], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while "ready in" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"tally serve did not start in 60 s:\n{log.read_text()}")
        time.sleep(0.1)
    return process


def call(url: str, *, method: str = "GET", key: str | None = None, body=None) -> tuple[int, dict]:
    """(status, JSON answer) of one request to a tally serve, with `key` as its Bearer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# The endpoints a running Server keeps its state on (DynamoDB Local is shared by every test).
IN_USE: set[str] = set()


class Server:
    """`tally serve` with the operator token ADMIN, its log and its run file (TALLY_RUN_DIR) in
    `tmp`; with `schedule_interval`, Schedule events fire that often. Its DynamoDB is the
    embedded moto, or with `endpoint` that one (AWS_ENDPOINT_URL_DYNAMODB): emptied first, so
    tally serve makes the tables and the demo workspace there as it does on its embedded
    endpoint. `flags` are more flags of tally serve (`--throttle-item-wcu 50`), `env` more of its
    environment."""

    def __init__(
        self,
        tmp: Path,
        *,
        schedule_interval: float | None = 1,
        endpoint: str | None = None,
        flags: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.port, self.ddb_port = free_port(), free_port()
        more = env or {}
        self.url = f"http://127.0.0.1:{self.port}"
        self.ddb_endpoint = endpoint or f"http://127.0.0.1:{self.ddb_port}"
        self.log_path = tmp / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env |= more
        env["TALLY_ADMIN_TOKEN"] = ADMIN
        env["TALLY_RUN_DIR"] = str(tmp)  # where tally invoke, given this env, finds it
        if endpoint:
            from tally_local import dynamodb
            from tally_local.template import Template

            assert endpoint not in IN_USE, f"another tally serve keeps its state on {endpoint}"
            dynamodb.delete_tables(dynamodb.client(endpoint), Template())
            env["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
            IN_USE.add(endpoint)
        self.endpoint = endpoint
        self.env = env
        self.process = subprocess.Popen(
            [
                TALLY,
                "serve",
                "--port",
                str(self.port),
                # (an endpoint given is named by the environment, and tally serve takes one)
                *([] if endpoint else ["--dynamodb-port", str(self.ddb_port)]),
                *(["--schedule-interval", str(schedule_interval)] if schedule_interval else []),
                *flags,
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while "ready in" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"tally serve did not start in 30 s:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text()

    def call(self, path: str, *, method: str = "GET", key: str | None = None, body=None):
        return call(self.url + path, method=method, key=key, body=body)

    def billing_marked(self, workspace: str, counter: str, *, timeout: float = 15) -> None:
        """Wait until the stream's function has marked a counter due for billing (tally serve
        reads the counters' stream about once a second)."""
        from tally_local import dynamodb

        client = dynamodb.client(self.ddb_endpoint)
        key = {"workspace": {"S": workspace}, "counter": {"S": counter}}
        deadline = time.monotonic() + timeout
        while "Item" not in client.get_item(TableName="BillingDueTable", Key=key):
            if time.monotonic() > deadline:
                raise AssertionError(f"{workspace}/{counter} was not marked due in {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        IN_USE.discard(self.endpoint)
