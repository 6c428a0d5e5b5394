"""The template's event bus, locally: an endpoint that takes `PutEvents` (what
AWS_ENDPOINT_URL_EVENTBRIDGE points the functions at) and hands each event to the functions whose
EventBridgeRule pattern matches it, in-process, as EventBridge would invoke them (asynchronously,
one invocation per event and rule). Each event is one line of tally serve's log.

Only PutEvents: the functions call nothing else of EventBridge. Patterns are matched by moto's
implementation of EventBridge's pattern language."""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from moto.events.models import EventPattern

from tally_local import logline
from tally_local.template import ACCOUNT, REGION, Function

_MAX_BODY = 1024 * 1024  # PutEvents takes at most 256 KB of entries


class Bus:
    def __init__(
        self, functions: list[Function], invoke: Callable[[Function, dict], Any], log: Any = None
    ) -> None:
        self.rules = [
            (fn, EventPattern.load(json.dumps(pattern))) for fn in functions for pattern in fn.rules
        ]
        self.invoke = invoke
        self.log = log or sys.stderr
        self.workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bus")
        self.server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self.server, "the bus is not started"
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, host: str = "127.0.0.1") -> Bus:
        bus = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                target = self.headers.get("X-Amz-Target", "")
                if target != "AWSEvents.PutEvents" or size > _MAX_BODY:
                    return self._answer(400, {"__type": "ValidationException"})
                body = json.loads(self.rfile.read(size) or b"{}")
                self._answer(200, bus.put_events(body.get("Entries") or []))

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # one line per event instead
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def put_events(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        answers = []
        for entry in entries:
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": entry.get("DetailType", ""),
                "source": entry.get("Source", ""),
                "account": ACCOUNT,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": entry.get("Resources") or [],
                "detail": json.loads(entry.get("Detail") or "{}"),
            }
            targets = [fn for fn, pattern in self.rules if pattern.matches_event(event)]
            detail = event["detail"]
            about = "/".join(
                str(part)
                for part in (detail.get("workspace"), (detail.get("data") or {}).get("counter"))
                if part
            )
            logline.write(
                self.log,
                f"event {event['detail-type']} {detail.get('id', event['id'])} {about} "
                f"-> {', '.join(fn.logical_id for fn in targets) or 'no rule'}",
            )
            for fn in targets:
                self.workers.submit(self._deliver, fn, event)
            answers.append({"EventId": event["id"]})
        return {"FailedEntryCount": 0, "Entries": answers}

    def _deliver(self, fn: Function, event: dict[str, Any]) -> None:
        try:
            self.invoke(fn, event)
        except Exception as err:  # as an asynchronous invocation's failure: reported, not raised
            logline.write(self.log, f"event {event['id']} -> {fn.logical_id} failed: {err!r}")

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
        self.workers.shutdown(wait=True)
