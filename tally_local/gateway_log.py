"""werkzeug's request handler for `tally serve`, as strict as API Gateway's front door and with
its own log lines bounded: a malformed request line (werkzeug logs it whole, "Bad request syntax
...") must not make a line of any length, its status line must not echo it back, and a header
line Python's parser could not read (`Authorization : Bearer x`, which it drops) is a 400
rather than a request without that header."""

from __future__ import annotations

from typing import Any

from werkzeug.serving import WSGIRequestHandler

from tally_local.gateway import loggable


class BoundedHandler(WSGIRequestHandler):
    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if getattr(self.headers, "defects", None):  # a header line it could not parse
            self.send_error(400, "Bad Request: a malformed header line")
            return False
        return True

    def log(self, type: str, message: str, *args: Any) -> None:
        super().log(type, "%s", loggable(message % args if args else message, 300))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        super().send_error(code, None if message is None else loggable(message, 100), explain)
