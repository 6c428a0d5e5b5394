"""werkzeug's server and request handler for `tally serve`.

The handler is as strict as API Gateway's front door and keeps its own log lines bounded: a
malformed request line (werkzeug logs it whole, "Bad request syntax ...") must not make a line of
any length, its status line must not echo it back, and a header line Python's parser could not
read (`Authorization : Bearer x`, which it drops) is a 400 rather than a request without that
header. The server serves each connection on a thread it keeps for the next one."""

from __future__ import annotations

import email.errors
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

from tally_local.gateway import loggable


class BoundedHandler(WSGIRequestHandler):
    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        # A header line Python could not parse is dropped from the headers: answered 400, never
        # served without it. Every defect but those the parser reports of a multipart body it
        # never read (a browser's FormData), which the function answers.
        defects = getattr(self.headers, "defects", ())
        if any(not isinstance(d, _MULTIPART_BODY_DEFECTS) for d in defects):
            self.send_error(400, "Bad Request: a malformed header line")
            return False
        return True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # tally serve writes its own line per request and turns werkzeug's off (level WARNING):
        # werkzeug would still decode, escape and colour its line first, at every request.
        if _WERKZEUG.isEnabledFor(logging.INFO):
            super().log_request(code, size)

    def log(self, type: str, message: str, *args: Any) -> None:
        super().log(type, "%s", loggable(message % args if args else message, 300))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        super().send_error(code, None if message is None else loggable(message, 100), explain)


_WERKZEUG = logging.getLogger("werkzeug")
_MULTIPART_BODY_DEFECTS = (
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.CloseBoundaryNotFoundDefect,
    email.errors.MultipartInvariantViolationDefect,
    email.errors.NoBoundaryInMultipartDefect,
)


class Workers:
    """Threads that serve one connection after another: a thread is started only when none is
    idle. werkzeug's threaded server starts a thread per connection, and the thread accepting
    connections waits each time until the new one runs, behind every thread that wants Python's
    GIL: under load, accepting became a queue of its own. Daemon threads, as werkzeug's: a
    connection a client keeps open never holds up the end of tally serve."""

    def __init__(self, serve: Callable[..., None]) -> None:
        self.serve = serve
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.idle = 0  # threads waiting on `jobs`, or about to
        self.lock = threading.Lock()

    def submit(self, *job: Any) -> None:
        with self.lock:
            reuse = self.idle > 0
            if reuse:
                self.idle -= 1
        if reuse:
            self.jobs.put(job)  # one of the idle threads takes it
        else:
            threading.Thread(target=self._work, args=job, name="request", daemon=True).start()

    def _work(self, *job: Any) -> None:
        while True:
            self.serve(*job)
            with self.lock:
                self.idle += 1
            job = self.jobs.get()


class PooledWSGIServer(BaseWSGIServer):
    """werkzeug's threaded server, its threads reused (Workers)."""

    multithread = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workers = Workers(self._serve)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.workers.submit(request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        # As socketserver.ThreadingMixIn.process_request_thread does.
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
