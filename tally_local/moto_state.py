"""`tally serve --state DIR` on the embedded moto: its tables saved to one JSON file, and loaded
when the next one starts.

moto keeps its state in the memory of its process and has no way to save it, so this runs inside
the embedded endpoint's process (tally_local.dynamodb) and reads moto's tables directly. What is
saved: every item of every table, and each table's stream records of the last 24 hours (as long
as DynamoDB keeps them). The tables themselves are made from template.yaml on every start. The
stream matters for history: a change whose record had not reached CounterStreamFunction when
the endpoint stopped is delivered after the restart, and new records are numbered on from the
saved ones, since a history bucket skips any record numbered at or below the last it took.

When it is saved: within SAVE_EVERY_S of a write, and once more when the process ends on SIGTERM,
which it also gets when tally serve dies, even by SIGKILL. Each save goes to a temporary file,
flushed to disk and renamed over the last one, so the file always holds one whole save. So only a
SIGKILL of the endpoint's own process (or the machine stopping) loses anything: the writes of its
last SAVE_EVERY_S.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

FILE_NAME = "moto-state.json"  # in the --state directory
FORMAT = 1
SAVE_EVERY_S = 1.0
STREAM_KEPT_S = 24 * 3600  # DynamoDB keeps a stream's records for 24 hours


class Unreadable(ValueError):
    """The file is not a state this version can load; the message says why."""


class _SavedRecord:
    """A stream record loaded from the file, as moto's shard holds its own (it calls to_json)."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def to_json(self) -> dict[str, Any]:
        return self.record


def _tables() -> list[tuple[str, str, Any]]:
    """(account, region, table) of every table moto holds in this process."""
    from moto.dynamodb.models import dynamodb_backends

    return [
        (account, region, table)
        for account, regions in list(dynamodb_backends.items())
        for region, backend in list(regions.items())
        for table in list(backend.tables.values())
    ]


def snapshot(now: float | None = None) -> dict[str, Any]:
    """Everything a restart needs, as plain JSON data. The caller holds the endpoint's lock, so
    no call is half applied; the data shares nothing that a later call changes (moto makes each
    item's JSON anew, and never changes a stream record it made)."""
    from moto.dynamodb.models.utilities import DynamoJsonEncoder

    oldest = (time.time() if now is None else now) - STREAM_KEPT_S
    tables = []
    for account, region, table in _tables():
        saved: dict[str, Any] = {
            "account": account,
            "region": region,
            "name": table.name,
            "items": [item.to_json()["Attributes"] for item in table.all_items()],
        }
        shard = table.stream_shard
        if shard is not None:
            # Datetimes as epoch seconds, as moto writes them on the wire.
            records = json.loads(
                json.dumps([r.to_json() for r in shard.items], cls=DynamoJsonEncoder)
            )
            first = shard.starting_sequence_number
            while records and records[0]["dynamodb"]["ApproximateCreationDateTime"] < oldest:
                records.pop(0)
                first += 1
            saved["stream"] = {"first_sequence_number": first, "records": records}
        tables.append(saved)
    return {"format": FORMAT, "saved_at": time.time(), "tables": tables}


def write(path: Path, data: dict[str, Any]) -> None:
    """`data` to `path` whole or not at all: a temporary file, flushed to disk, then renamed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w") as out:
        json.dump(data, out, separators=(",", ":"))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def read(path: Path) -> dict[str, Any] | None:
    """The saved state, None when there is no file yet; Unreadable if it is not one."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise Unreadable(f"{path} is not a tally state file ({err})") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise Unreadable(f"{path} is not a tally state file of format {FORMAT}")
    return data


def load(data: dict[str, Any], log: Any = sys.stderr) -> int:
    """Put the saved items and stream records into moto's tables, which exist already (made from
    the template); the number of items loaded. A table the template no longer has, or an item
    its key schema no longer takes, is left out and said so in one line."""
    from moto.dynamodb.models import dynamodb_backends

    loaded = 0
    for saved in data["tables"]:
        try:
            table = dynamodb_backends[saved["account"]][saved["region"]].tables[saved["name"]]
        except KeyError:
            print(f"state: table {saved['name']} is no longer in template.yaml: left out", file=log)
            continue
        refused = 0
        for attributes in saved["items"]:
            try:
                table.put_item(attributes)
                loaded += 1
            except Exception:  # moto's own refusals: the key schema changed since the save
                refused += 1
        if refused:
            print(
                f"state: {refused} items of {table.name} no longer fit its keys: left out", file=log
            )
        shard, stream = table.stream_shard, saved.get("stream")
        if shard is not None:  # the loads above made records: the saved ones replace them
            shard.items = [_SavedRecord(r) for r in (stream or {}).get("records", [])]
            if stream:
                shard.starting_sequence_number = int(stream["first_sequence_number"])
    return loaded


class Saver:
    """Saves the state to `path` within SAVE_EVERY_S of a write (`changed()`), and at `stop()`."""

    def __init__(
        self, path: Path, lock: Any
    ) -> None:  # the endpoint's (tally_local.dynamodb.InTurn)
        self.path, self.lock = path, lock
        self.dirty = False
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state saver", daemon=True)

    def start(self) -> Saver:
        self._thread.start()
        return self

    def changed(self) -> None:
        self.dirty = True

    def save(self) -> None:
        with self.lock:
            self.dirty = False
            data = snapshot()
        write(self.path, data)

    def _run(self) -> None:
        while not self._stopping.wait(SAVE_EVERY_S):
            if self.dirty:
                try:
                    self.save()
                except OSError as err:  # a full disk: said, and tried again a second later
                    self.dirty = True
                    print(f"state: could not save to {self.path}: {err}", file=sys.stderr)

    def stop(self) -> None:
        """The last save, if it was started (the state is whole only once loaded)."""
        self._stopping.set()
        if not self._thread.is_alive():
            return
        self._thread.join()
        self.save()
