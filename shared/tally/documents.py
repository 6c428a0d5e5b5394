"""An answer's body that is not JSON (an SVG badge, a dashboard file): what a route returns, what
the edge sends with its own Content-Type, and what an Idempotency-Key record keeps and replays as
it was."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    content_type: str
    text: str
    # A content coding ("gzip"): then `text` is the coded bytes in base64, as Lambda's proxy
    # answers carry binary bodies.
    encoding: str | None = None
