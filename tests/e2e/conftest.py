"""What the browser tests share: Debian's Chromium, driven by Playwright (its Python package
drives a browser it did not download, through `executable_path`)."""

from __future__ import annotations

import os
import shutil

import pytest


def chromium() -> str:
    found = os.environ.get("TALLY_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    message = (
        "browser tests need Debian's chromium: apt-get install chromium (or set TALLY_CHROMIUM)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)  # CI must run them: never a silent skip there
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    executable = chromium()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()
