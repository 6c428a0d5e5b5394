"""The dashboard's files, served by tally itself on the API's own origin (so the page needs no
CORS and its Content-Security-Policy can allow 'self' alone): the page and its scripts, styles
and the chart library, each loaded once per cold start, gzipped for callers that accept it.

Every answer of the dashboard, errors included, carries the headers in SECURITY."""

from __future__ import annotations

import base64
import functools
import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tally.documents import Document
from tally.errors import NotFound

# Only these kinds are served: what the folder holds besides (its Makefile, package.json) never is.
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
PAGE = "index.html"
# No inline script or style anywhere (a value from the API can never become code), nothing
# from another origin, no framing; the page sends no Referer (a URL names a counter).
SECURITY = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Vary": "Accept-Encoding",
}


@dataclass(frozen=True)
class File:
    plain: Document
    gzipped: Document


class Site:
    """The files of a folder (and of its vendor/ folder, where the build copies the chart
    library), each under its own name: /dashboard/{name}."""

    def __init__(self, root: Path) -> None:
        found = [
            *root.iterdir(),
            *((root / "vendor").iterdir() if (root / "vendor").is_dir() else ()),
        ]
        self.files = {
            path.name: _load(path)
            for path in sorted(found)
            if path.suffix in TYPES and path.is_file()
        }

    def file(self, name: str, accept_encoding: str = "") -> Document:
        found = self.files.get(name)
        if found is None:
            raise NotFound(f"no dashboard file '{name}'")
        return found.gzipped if accepts_gzip(accept_encoding) else found.plain


def _load(path: Path) -> File:
    data, kind = path.read_bytes(), TYPES[path.suffix]
    coded = gzip.compress(data, compresslevel=9, mtime=0)  # mtime 0: the same bytes every start
    return File(
        Document(kind, data.decode("utf-8")),
        Document(kind, base64.b64encode(coded).decode("ascii"), encoding="gzip"),
    )


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (RFC 9110: `gzip` or `*`, unless q=0).
    Hand-written: the layer has no HTTP header parser, and this is the one header it reads."""
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() in ("gzip", "*"):
            weight = params.strip().removeprefix("q=").strip() or "1"
            try:
                return float(weight) > 0
            except ValueError:
                return False
    return False


def secured(handler: Callable[[Any, Any], dict]) -> Callable[[Any, Any], dict]:
    """The handler's every answer, errors included, with the SECURITY headers."""

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> dict:
        answer = handler(event, context)
        answer["headers"] = {**answer.get("headers", {}), **SECURITY}
        return answer

    return run
