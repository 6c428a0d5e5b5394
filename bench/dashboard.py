"""The dashboard's weight and speed, through a real `tally serve` and Debian's Chromium:

1. page weight: every file the page loads, as sent to a browser (gzipped) and unpacked;
2. time to first render: a fresh tab's first contentful paint (the sign-in form), and the time
   until a signed-in tab shows the counters table, then a counter's page with its charts
   (median of --runs cold tabs each);
3. the API calls an idle counter page makes in --idle-seconds, scaled to a minute;
4. a workspace of --counters counters (10,000): the table drawn, then a search and a sort.

    .venv/bin/python bench/dashboard.py [--runs 7] [--idle-seconds 60] [--counters 10000]
        [--dynamodb dynamodb-local|moto]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import re
import shutil
import statistics
import tempfile
import urllib.request
from pathlib import Path

import common  # noqa: F401  (puts the repository on the path)

from tally_local.demo import DEMO_KEY
from tally_local.dynamodb_local import DynamoDBLocal
from tests.serve import ADMIN, Server

PAGE = "/dashboard"


def _get(url: str) -> tuple[bytes, str]:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.read(), answer.headers.get("Content-Encoding", "")


def page_weight(base: str) -> list[tuple[str, int, int]]:
    """(file, bytes sent, bytes unpacked) for the page and every file it loads or imports."""
    wanted, seen, rows = [PAGE], set(), []
    while wanted:
        path = wanted.pop(0)
        if path in seen:
            continue
        seen.add(path)
        sent, coding = _get(base + path)
        plain = gzip.decompress(sent) if coding == "gzip" else sent
        rows.append((path, len(sent), len(plain)))
        wanted += [f.decode() for f in re.findall(rb'"(/dashboard/[^"]+\.(?:js|css))"', plain)]
    return rows


def first_render(browser, base: str, runs: int) -> dict[str, float]:
    """Medians, in ms from navigation start: the sign-in form painted (a fresh tab), the
    counters table and a counter's page drawn (a tab whose session already holds the key)."""
    times: dict[str, list[float]] = {
        "sign-in form (FCP)": [],
        "counters table": [],
        "counter page": [],
    }
    for _ in range(runs):
        context = browser.new_context()
        page = context.new_page()
        page.goto(base + PAGE)
        page.wait_for_selector("#key")
        fcp = page.evaluate(
            "() => performance.getEntriesByName('first-contentful-paint')[0].startTime"
        )
        times["sign-in form (FCP)"].append(fcp)
        context.close()

        context = browser.new_context()
        context.add_init_script(f"sessionStorage.setItem('tally.key', '{DEMO_KEY}')")
        page = context.new_page()
        page.goto(base + PAGE + "#/counters")
        page.wait_for_selector("#counters tbody th")
        times["counters table"].append(page.evaluate("() => performance.now()"))
        page.goto("about:blank")
        page.goto(base + PAGE + "#/counter/visits")
        page.wait_for_selector("#history-chart canvas")
        times["counter page"].append(page.evaluate("() => performance.now()"))
        context.close()
    return {name: statistics.median(values) for name, values in times.items()}


def idle_calls(browser, base: str, seconds: float) -> tuple[int, dict[int, int]]:
    """The API calls (not the page's files) an open counter page makes while nothing changes,
    after it has drawn, and their statuses."""
    context = browser.new_context()
    context.add_init_script(f"sessionStorage.setItem('tally.key', '{DEMO_KEY}')")
    page = context.new_page()
    page.goto(base + PAGE + "#/counter/visits")
    page.wait_for_selector("#history-chart canvas")
    page.wait_for_timeout(5_000)  # the follow-up history reads after the first draw
    statuses: list[int] = []
    page.on(
        "response",
        lambda r: not r.url.startswith(base + PAGE) and statuses.append(r.status),
    )
    page.wait_for_timeout(seconds * 1000)
    context.close()
    return len(statuses), {s: statuses.count(s) for s in sorted(set(statuses))}


def many_counters(browser, server, count: int) -> dict[str, float]:
    """A workspace with `count` counters (written straight to the table): ms to draw the table
    (from navigation), then to search it and to sort it by value (from the keystroke or click
    to the rows redrawn)."""
    from tally_local import dynamodb

    made = server.call("/admin/workspaces", method="POST", key=ADMIN, body={"workspace": "big"})
    key = made[1]["api_key"]
    client = dynamodb.client(server.ddb_endpoint)
    for start in range(0, count, 25):
        items = [
            {
                "PutRequest": {
                    "Item": {
                        "workspace": {"S": "big"},
                        "counter": {"S": f"c{i:05d}"},
                        "v": {"N": str(i * 7 % 1000)},
                    }
                }
            }
            for i in range(start, min(start + 25, count))
        ]
        client.batch_write_item(RequestItems={"CountersTable": items})
    context = browser.new_context()
    context.add_init_script(f"sessionStorage.setItem('tally.key', '{key}')")
    page = context.new_page()
    page.goto(server.url + PAGE + "#/counters")
    page.wait_for_selector(f"#counter-count:has-text('{count} counters')", timeout=120_000)
    drawn = page.evaluate("() => performance.now()")
    started = page.evaluate("() => performance.now()")
    page.fill("#search", "c0999")
    page.wait_for_selector("#counter-count:has-text('match')")
    searched = page.evaluate("() => performance.now()") - started
    page.fill("#search", "")
    started = page.evaluate("() => performance.now()")
    page.click("th[data-column=value] button")
    page.wait_for_selector("th[data-column=value][aria-sort=descending]")
    sorted_ = page.evaluate("() => performance.now()") - started
    context.close()
    return {"table drawn": drawn, "search": searched, "sort by value": sorted_}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--counters", type=int, default=10_000)
    parser.add_argument(
        "--dynamodb",
        choices=["moto", "dynamodb-local"],
        default="dynamodb-local",
        help="tally serve's DynamoDB (moto's Query of 10,000 items outlasts tally's 2 s read timeout)",
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "bench/dashboard.py needs Debian's chromium (apt-get install chromium)"
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        local = args.dynamodb == "dynamodb-local"
        endpoint = stack.enter_context(DynamoDBLocal()) if local else None
        server = Server(Path(tmp), schedule_interval=None, endpoint=endpoint)
        try:
            rows = page_weight(server.url)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                render = first_render(browser, server.url, args.runs)
                calls, statuses = idle_calls(browser, server.url, args.idle_seconds)
                big = many_counters(browser, server, args.counters)
                browser.close()
        finally:
            server.stop()

    print("| file | sent (gzip) | unpacked |\n| --- | ---: | ---: |")
    for path, sent, plain in rows:
        print(f"| `{path}` | {sent:,} B | {plain:,} B |")
    total_sent, total_plain = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"| **all {len(rows)} files** | **{total_sent:,} B** | **{total_plain:,} B** |\n")
    print(f"| first render (median of {args.runs} cold tabs) | ms |\n| --- | ---: |")
    for name, ms in render.items():
        print(f"| {name} | {ms:.0f} |")
    per_minute = calls * 60 / args.idle_seconds
    shown = ", ".join(f"{n} answered {status}" for status, n in statuses.items())
    print(f"\n| {args.counters:,} counters | ms |\n| --- | ---: |")
    for name, ms in big.items():
        print(f"| {name} | {ms:.0f} |")
    print(
        f"\nan idle counter page: {calls} API calls in {args.idle_seconds:.0f} s "
        f"({per_minute:.0f} a minute): {shown or 'none'}"
    )


if __name__ == "__main__":
    main()
