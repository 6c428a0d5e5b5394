"""A real `tally serve` process on loopback ports, spoken to over HTTP: for the end-to-end tests,
the fuzzer and bench/throughput.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TALLY = str(Path(sys.executable).with_name("tally"))
ADMIN = "e2e-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`tally serve` with the operator token ADMIN, its log in `tmp`; with `schedule_interval`,
    Schedule events fire that often."""

    def __init__(self, tmp: Path, *, schedule_interval: float | None = 1) -> None:
        self.port, self.ddb_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env["TALLY_ADMIN_TOKEN"] = ADMIN
        self.env = env
        self.process = subprocess.Popen(
            [
                TALLY,
                "serve",
                "--port",
                str(self.port),
                "--dynamodb-port",
                str(self.ddb_port),
                *(["--schedule-interval", str(schedule_interval)] if schedule_interval else []),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while "ready in" not in self.log():
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, "tally serve did not start in 30 s"
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text()

    def call(self, path: str, *, method: str = "GET", key: str | None = None, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
