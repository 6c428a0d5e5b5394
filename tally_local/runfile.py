"""Where each running `tally serve` is, so that `tally invoke` finds its DynamoDB whatever the
ports: one small JSON file per serve, `serve-<port>.json` in `.tally/` of the checkout
(TALLY_RUN_DIR names another directory), written once it is ready and removed when it stops.

A serve that was killed (SIGKILL, a closed laptop) leaves its file behind. A file is believed only
while its process is alive and its DynamoDB endpoint takes a connection; otherwise it is stale,
and whoever finds it removes it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tally_local.template import ROOT


def directory() -> Path:
    return Path(os.environ.get("TALLY_RUN_DIR") or ROOT / ".tally")


@dataclass(frozen=True)
class Serve:
    pid: int
    url: str  # its HTTP API
    port: int  # the HTTP API's port: how a user names it (tally invoke --port)
    dynamodb: str  # its DynamoDB endpoint

    @property
    def path(self) -> Path:
        return directory() / f"serve-{self.port}.json"

    def alive(self) -> bool:
        """Its process is there and its DynamoDB takes a connection."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # there, under another user
            pass
        where = urlsplit(self.dynamodb)
        try:
            socket.create_connection((where.hostname, where.port or 80), timeout=1).close()
        except OSError:
            return False
        return True


def write(serve: Serve) -> Path:
    path = serve.path
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(asdict(serve)) + "\n")
    os.replace(temporary, path)  # a reader never sees half a file
    return path


def remove(serve: Serve) -> None:
    """Remove this serve's file, unless another serve on the same port wrote it since."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        if json.loads(serve.path.read_text()).get("pid") == serve.pid:
            serve.path.unlink()


def find() -> tuple[list[Serve], list[Serve]]:
    """(the serves running, the stale files' serves, whose files are removed now)."""
    running, stale = [], []
    for path in sorted(directory().glob("serve-*.json")):
        try:
            serve = Serve(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # being written, or not one of these files
        if serve.alive():
            running.append(serve)
        else:
            stale.append(serve)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return running, stale
