"""The local runtime as a newcomer meets it: `tally serve --state` across restarts (a kill -9
included), `tally invoke` finding the serve it should use, and one line, never a traceback, for
what a user can get wrong."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tally_local import cli, dynamodb, runfile
from tests.conftest import ROOT
from tests.serve import TALLY, call, free_port, started

pytestmark = pytest.mark.e2e


def _env(tmp_path: Path) -> dict[str, str]:
    """A user's environment: no DynamoDB named, the default admin token, run files in tmp."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_ENDPOINT_URL") and k != "TALLY_ADMIN_TOKEN"
    }
    env["TALLY_RUN_DIR"] = str(tmp_path / "run")
    return env


def _tally(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TALLY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


# ------------------------------------------------------------------ the README's Try it


def _try_it() -> str:
    """The README's Try it block, as a user pastes it."""
    section = (ROOT / "README.md").read_text().split("\n## Try it\n", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_try_it_survives_a_second_paste_and_prints_each_answer_on_its_own_line(tmp_path):
    port = free_port()
    serve = started(
        ["--port", str(port), "--dynamodb-port", str(free_port())],
        _env(tmp_path),
        tmp_path / "serve.log",
    )
    block = _try_it()
    assert block.startswith("T=http://127.0.0.1:3000 ")
    pasted = block.replace("T=http://127.0.0.1:3000", f"T=http://127.0.0.1:{port}", 1)
    try:  # one terminal, the block pasted twice
        done = subprocess.run(
            ["bash", "-c", pasted + pasted], capture_output=True, text=True, timeout=120
        )
    finally:
        serve.terminate()
        serve.wait(timeout=30)

    assert (done.returncode, done.stderr) == (0, "")
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == 8 and all(answer["code"] == "200" for answer in answers)
    first, second = answers[:4], answers[4:]
    for up, read, stats, _ in (first, second):
        assert up["data"]["value"] == read["data"]["value"] == stats["data"]["value"] == 1
        assert up["data"]["id"] == read["data"]["id"] == stats["data"]["id"]
        assert stats["data"]["stats"]["today"] == {"up": 1, "down": 0}
    assert first[0]["data"]["workspace_slug"] != second[0]["data"]["workspace_slug"]
    assert second[3]["data"]["id"] == "demo/visits"
    assert second[3]["data"]["value"] == first[3]["data"]["value"] + 1


# ------------------------------------------------------------------ --state


@pytest.fixture
def own_dynamodb(dynamodb_backend) -> list[str]:
    """tally serve's flags for a DynamoDB of its own, of this run's kind (--state is the state of
    a DynamoDB tally serve starts): the embedded moto, or a DynamoDB Local of its own."""
    return [] if dynamodb_backend.name == "moto" else ["--dynamodb", "dynamodb-local"]


def _history_ups(url: str, key: str) -> int:
    status, answer = call(f"{url}/v2/acme/visits/history?group_by=hour", key=key)
    assert status == 200, answer
    return sum(point["up"] for point in answer["data"]["points"])


def _until(check, log: Path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def test_tally_serve_state_survives_a_kill_9_and_a_restart_and_history_counts_each_change_once(
    tmp_path, own_dynamodb
):
    state, env = tmp_path / "state", _env(tmp_path)

    def serve(log_name: str) -> tuple[subprocess.Popen, str, Path]:
        port, log = free_port(), tmp_path / log_name
        flags = ["--port", str(port), "--state", str(state), *own_dynamodb]
        if not own_dynamodb:  # moto: off the 8000 other work on this machine may use
            flags += ["--dynamodb-port", str(free_port())]
        return started(flags, env, log), f"http://127.0.0.1:{port}", log

    first, url, log = serve("first.log")
    try:
        assert f"state: {state.resolve()}/" in log.read_text()
        status, made = call(
            f"{url}/admin/workspaces",
            key="local-admin-token",
            method="POST",
            body={"workspace": "acme"},
        )
        assert status == 201, made
        key = made["api_key"]
        for _ in range(3):
            assert call(f"{url}/v2/acme/visits/up", key=key)[0] == 200
        _until(lambda: _history_ups(url, key) == 3, log)
    finally:
        first.kill()  # SIGKILL: tally serve says no goodbye
        first.wait()

    second, url, log = serve("second.log")  # waits for the killed serve's endpoint to be gone
    try:
        status, read = call(f"{url}/v2/acme/visits", key=key)
        assert (status, read["data"]["value"]) == (200, 3), read  # the saved key still works
        assert call(f"{url}/v2/acme/visits/up", key=key)[1]["data"]["value"] == 4
        _until(lambda: _history_ups(url, key) == 4, log)  # the stream numbered on, read once
    finally:
        second.terminate()
        assert second.wait(timeout=60) == 0  # SIGTERM stops it as Ctrl-C does
    run_files = {path.name for path in Path(env["TALLY_RUN_DIR"]).iterdir()}
    assert f"serve-{url.rsplit(':', 1)[1]}.json" not in run_files  # removed at its stop

    third, url, log = serve("third.log")
    try:
        assert call(f"{url}/v2/acme/visits", key=key)[1]["data"]["value"] == 4
        time.sleep(2)  # the stream read again from its start: nothing is taken twice
        assert _history_ups(url, key) == 4
    finally:
        third.terminate()
        third.wait(timeout=60)


def test_a_second_tally_serve_on_the_same_state_directory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "STATE_WAIT_S", 0.3)
    held = cli._hold(tmp_path)
    try:
        with pytest.raises(cli._CannotStart, match="in use by another tally serve"):
            cli._hold(tmp_path)
    finally:
        os.close(held)
    os.close(cli._hold(tmp_path))  # free again once its holder is gone


# ------------------------------------------------------------------ tally invoke


def test_tally_invoke_removes_the_file_of_a_serve_that_died_and_says_what_to_do(
    tmp_path, monkeypatch
):
    env = _env(tmp_path)
    monkeypatch.setenv("TALLY_RUN_DIR", env["TALLY_RUN_DIR"])  # where the user's invoke looks
    gone = subprocess.Popen(["true"])
    gone.wait()
    path = runfile.write(
        runfile.Serve(gone.pid, "http://127.0.0.1:3999", 3999, "http://127.0.0.1:1")
    )

    done = _tally(["invoke", "V2UpFunction", "-e", "events/v2_up.json"], env)

    assert done.returncode == 1
    gone_line, what_to_do = done.stderr.splitlines()
    assert f"the tally serve of http://127.0.0.1:3999 (pid {gone.pid}) is gone" in gone_line
    assert "no tally serve is running" in what_to_do and "make serve" in what_to_do
    assert not path.exists()


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ("events/no_such_event.json", "cannot read the event events/no_such_event.json"),
        ("README.md", "the event in README.md is not JSON"),
    ],
)
def test_a_bad_event_file_is_one_line_not_a_traceback(tmp_path, event, says):
    done = _tally(["invoke", "V2UpFunction", "-e", event], _env(tmp_path))

    assert done.returncode == 2
    assert done.stderr.startswith(f"tally invoke: {says}")
    assert len(done.stderr.splitlines()) == 1


# ------------------------------------------------------------------ ports


@pytest.mark.parametrize(
    ("flag", "says"),
    [
        ("--port", "is in use: choose another with --port N (make serve PORT=N)"),
        ("--dynamodb-port", "is in use: choose another (make serve DYNAMODB_PORT=N)"),
    ],
)
def test_a_port_in_use_is_one_line_naming_the_flag(tmp_path, flag, says):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        other = "--dynamodb-port" if flag == "--port" else "--port"
        done = _tally(["serve", flag, str(port), other, str(free_port())], _env(tmp_path))

    assert done.returncode == 1
    assert says in done.stderr and str(port) in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_the_embedded_dynamodb_takes_a_free_port_when_8000_is_taken(monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        monkeypatch.setattr(dynamodb, "DEFAULT_PORT", taken.getsockname()[1])
        args = argparse.Namespace(host="127.0.0.1", dynamodb="moto", dynamodb_port=None, state=None)
        embedded, endpoint, _ = cli._start_dynamodb(args, None)
        try:
            assert embedded.port != taken.getsockname()[1]
            assert dynamodb.client(endpoint).list_tables()["TableNames"] == []
        finally:
            embedded.stop()
