"""The dashboard's files through the gateway: only the page's own files, each with the security
headers, gzipped for a caller that accepts it, and tagged for If-None-Match."""

from __future__ import annotations

import gzip
import re

import pytest

from tally.dashboard import SECURITY, accepts_gzip
from tests.conftest import ROOT

SITE = ROOT / "dashboard"


def _get(api, path: str, **headers: str):
    response = api.client.get(path, headers=headers)
    return response.status_code, response.get_data(), response.headers


def test_the_page_and_every_file_it_loads_or_imports_is_served(api):
    status, page, _ = _get(api, "/dashboard")
    assert status == 200 and page == (SITE / "index.html").read_bytes()
    named = re.compile(rb'"/dashboard/([^"]+\.(?:js|css))"')  # linked, imported or loaded
    wanted = set(named.findall(page))
    for script in SITE.glob("*.js"):
        wanted |= set(named.findall(script.read_bytes()))
    assert {b"app.js", b"uPlot.iife.min.js", b"uPlot.min.css", b"counter.js", b"keys.js"} <= wanted
    for name in wanted:
        status, _, headers = _get(api, f"/dashboard/{name.decode()}")
        assert status == 200, name
        assert headers["Content-Type"].split(";")[0] in ("text/javascript", "text/css"), name


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/package.json",
        "/dashboard/Makefile",
        "/dashboard/..%2Ftemplate.yaml",
        "/dashboard/x.js",
    ],
)
def test_nothing_but_the_pages_files_is_served_and_a_refusal_carries_the_policy(api, path):
    status, body, headers = _get(api, path)

    assert status in (400, 404), path
    assert b'"error"' in body
    assert {name: headers[name] for name in SECURITY} == SECURITY


def test_a_caller_accepting_gzip_gets_the_same_bytes_gzipped_and_tagged_apart(api):
    plain = _get(api, "/dashboard/app.js")
    coded = _get(api, "/dashboard/app.js", **{"Accept-Encoding": "br, gzip;q=0.8"})

    assert "Content-Encoding" not in plain[2] and coded[2]["Content-Encoding"] == "gzip"
    assert gzip.decompress(coded[1]) == plain[1] == (SITE / "app.js").read_bytes()
    assert len(coded[1]) < len(plain[1]) / 2
    assert plain[2]["Vary"] == coded[2]["Vary"] == "Accept-Encoding"
    assert plain[2]["ETag"] != coded[2]["ETag"]  # strong tags differ between codings
    again = _get(
        api, "/dashboard/app.js", **{"Accept-Encoding": "gzip", "If-None-Match": coded[2]["ETag"]}
    )
    assert again[0] == 304 and again[1] == b"" and "Content-Encoding" not in again[2]


@pytest.mark.parametrize(
    "header, gzipped",
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("GZIP;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, br", False),
        ("br", False),
        ("", False),
        ("gzip;q=x", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header, gzipped):
    assert accepts_gzip(header) is gzipped
