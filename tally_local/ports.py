"""Loopback ports for `tally serve` and the DynamoDB it starts: a free one, and a listening
socket bound before anything slow starts, so that a port in use is one line saying which flag
picks another, not a traceback."""

from __future__ import annotations

import errno
import os
import socket


class InUse(OSError):
    """The port cannot be listened on (mostly: it is taken); the message says which and why."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on (host, port), port 0 for a free one; InUse if it is taken."""
    try:
        return socket.create_server((host, port), backlog=128)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise InUse(f"port {port} of {host} is in use") from err
        raise InUse(f"cannot listen on {host}:{port} ({os.strerror(err.errno or 0)})") from err


def available(host: str, port: int) -> bool:
    """Whether (host, port) can be listened on now."""
    try:
        listen(host, port).close()
    except InUse:
        return False
    return True
