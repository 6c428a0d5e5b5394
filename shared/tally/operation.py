"""The operation a changing request performs, as the request's context.

The edge (tally.http) begins one operation per changing request; the domain stamps its id on
every change it writes (a counter's `lop`, a keyed invoice item's id), so a change whose answer
was lost can be recognised and is never applied twice. No handler passes the id along: the
domain reads it here, so no handler can forget it.

An id names one operation for as long as the Idempotency-Key record that produced it can
exist (24 h): a change stamped with the same id more than that long ago was another request
that happened to reuse the key, and is applied again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REPEAT_WINDOW_MS = 24 * 3600 * 1000  # an Idempotency-Key record's lifetime (tally.idempotency)

_current: ContextVar[str | None] = ContextVar("tally_operation", default=None)


def new_id() -> str:
    return secrets.token_hex(10)


@contextmanager
def begin(op_id: str | None = None) -> Iterator[str]:
    """Run a changing request as one operation: `op_id` when an Idempotency-Key derived one,
    else a fresh id."""
    op_id = op_id or new_id()
    token = _current.set(op_id)
    try:
        yield op_id
    finally:
        _current.reset(token)


def current() -> str:
    """The running request's operation id. Outside a request (the billing run, a script) each
    call is an operation of its own."""
    return _current.get() or new_id()


def running() -> str | None:
    """The operation id the edge began for the running request, if any."""
    return _current.get()
