"""tally from a web page on another origin, in a real browser: Debian's Chromium driven by
Playwright (its Python package drives a browser it did not download, through
`executable_path`; Selenium would also need a chromedriver of the same version, and Playwright
gives awaitable page scripts, element screenshots and console capture in one API).

A page served from a second local port calls `tally serve` the way a blog or a dashboard on
another domain would: CORS preflights, headers read from script, error bodies, a badge image."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from tally_local.demo import DEMO_KEY
from tests.serve import ADMIN, free_port

pytestmark = pytest.mark.e2e
PAGE = Path(__file__).parent / "web"


@pytest.fixture(scope="module")
def server(served):
    return served


@pytest.fixture(scope="module")
def page_origin():
    """The page's own origin: a static server on another loopback port."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(PAGE))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


@pytest.fixture
def page(browser, page_origin, server):
    page = browser.new_page()
    page.goto(f"{page_origin}/page.html")
    assert page.evaluate("location.origin") != server.url  # truly another origin
    yield page
    page.close()


def _fetch(page, url: str, **init) -> dict:
    """fetch() from the page's script: status, the JSON body and every header scripts can read."""
    return page.evaluate(
        """async ([url, init]) => {
            const response = await fetch(url, init);
            const headers = {};
            response.headers.forEach((value, name) => { headers[name] = value; });
            return {status: response.status, body: await response.json(), headers};
        }""",
        [url, init],
    )


def test_a_page_counts_a_visit_on_a_public_counter_and_reads_its_rate_limit(page, server):
    before = server.call("/v2/demo/visits", key=DEMO_KEY)[1]["data"]["value"]

    counted = page.evaluate("([api]) => countVisit(api, 'demo', 'visits')", [server.url])

    assert counted["status"] == 200
    assert counted["body"]["data"]["value"] == before + 1
    assert counted["rateLimit"].startswith('"default";r=')
    assert page.text_content("#visits") == str(before + 1)


def test_a_page_reads_a_private_counter_with_a_key_after_a_preflight(page, server):
    server.call("/v2/demo/private-c/up", key=DEMO_KEY)

    read = _fetch(
        page, f"{server.url}/v2/demo/private-c", headers={"Authorization": f"Bearer {DEMO_KEY}"}
    )

    assert read["status"] == 200 and read["body"]["data"]["value"] >= 1
    assert read["body"]["data"]["visibility"] == "private"
    assert {"ratelimit", "ratelimit-policy", "x-ratelimit-remaining", "etag"} <= set(
        read["headers"]
    )


def test_a_page_adds_through_the_backstack_dialect_with_an_idempotency_key(page, server):
    init = {
        "method": "POST",
        "headers": {"Authorization": f"Bearer {DEMO_KEY}", "Idempotency-Key": "page-order-1"},
    }
    first = _fetch(page, f"{server.url}/account/counters/page-orders/5", **init)
    again = _fetch(page, f"{server.url}/account/counters/page-orders/5", **init)

    assert first["status"] == again["status"] == 200
    assert first["body"] == again["body"] == {"id": "page-orders", "value": 5}
    assert "idempotent-replayed" not in first["headers"]
    assert again["headers"]["idempotent-replayed"] == "true"


def test_a_page_reads_the_json_of_a_401_and_of_a_429(page, server):
    refused = _fetch(page, f"{server.url}/v2/demo/private-c")
    assert refused["status"] == 401 and refused["body"]["code"] == "401"

    made = server.call(
        "/admin/workspaces",
        method="POST",
        key=ADMIN,
        body={"workspace": "blog", "default_visibility": "public"},
    )
    assert made[0] == 201
    server.call(
        "/admin/workspaces/blog/rate-limit",
        method="PUT",
        key=ADMIN,
        body={"quota": 2, "window": 60},
    )
    answers = [_fetch(page, f"{server.url}/v2/blog/hits/up") for _ in range(3)]

    assert [a["status"] for a in answers] == [200, 200, 429]
    limited = answers[-1]
    assert limited["body"]["code"] == "429" and "rate limit" in limited["body"]["message"]
    assert int(limited["headers"]["retry-after"]) >= 1


def test_a_badge_on_the_page_changes_after_an_up(page, server, tmp_path):
    width = page.evaluate("([api]) => showBadge(api, 'demo', 'visits')", [server.url])
    assert width > 0
    before = page.locator("#badge").screenshot(path=str(tmp_path / "badge-before.png"))

    for _ in range(7):  # enough to change the digits shown
        server.call("/v2/demo/visits/up", key=DEMO_KEY)
    page.evaluate("([api]) => showBadge(api, 'demo', 'visits')", [server.url])
    after = page.locator("#badge").screenshot(path=str(tmp_path / "badge-after.png"))

    assert before != after
