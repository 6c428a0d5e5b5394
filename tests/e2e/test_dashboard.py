"""The dashboard in a real browser (Debian's Chromium driven by Playwright, as test_browser.py
does), against a real `tally serve`: an app owner signs in with a key, sets a counter up, watches
it change, meets a bound, runs a billing, manages keys, sets alerts, adds a webhook and sees its
deliveries; a read key sees and changes nothing.

Each page is kept as a screenshot at desktop width and at 375 px in tests/e2e/artifacts/
(git-ignored), and no page may log a console error the test did not provoke."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from tests.serve import ADMIN, ROOT, TALLY

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).parent / "artifacts" / "dashboard"
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 375, "height": 800}
XSS = "<img src=x onerror=alert(1)>"
LIVE_S = 15  # the counter page polls every 5 s; history lands ~1.3 s after a change


@pytest.fixture(scope="module")
def server(served):
    return served


@pytest.fixture(scope="module")
def shop(server) -> dict[str, str]:
    """A workspace of its own, its admin key and a read key."""
    made = server.call("/admin/workspaces", method="POST", key=ADMIN, body={"workspace": "shop"})
    assert made[0] == 201, made
    admin = made[1]["api_key"]
    read = server.call("/account/api-keys", method="POST", key=admin, body={"scopes": ["read"]})
    return {"admin": admin, "read": read[1]["api_key"]}


class Visit:
    """One browser tab on the dashboard: its console errors (checked when it closes, but for
    those a test expects), screenshots at both widths."""

    def __init__(self, browser, server) -> None:
        self.server = server
        self.context = browser.new_context(viewport=DESKTOP)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.expected: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.server.url}/dashboard{route}")

    def sign_in(self, key: str) -> None:
        """By keyboard alone: the key field has the focus; Enter submits."""
        self.open()
        self.page.wait_for_selector("#key:focus")
        self.page.keyboard.type(key)
        self.page.keyboard.press("Enter")
        self.page.wait_for_selector("#counters")

    def counter(self, key: str, name: str) -> str:
        """Signed in with `key`, on counter `name`'s page once drawn: its value."""
        self.sign_in(key)
        self.go(f"#/counter/{name}", "#history-caption:not(:empty)")
        return self.page.text_content("#value").replace(",", "")

    def go(self, route: str, ready: str) -> None:
        self.page.evaluate("route => { location.hash = route; }", route)
        self.page.wait_for_selector(ready)

    def shoot(self, name: str) -> None:
        """The page at desktop width and at 375 px, where nothing may overflow the screen."""
        self._keep(f"{name}.png")
        self.page.set_viewport_size(PHONE)
        self.page.wait_for_timeout(150)  # charts follow their box's width
        self._keep(f"{name}-375.png")
        width = self.page.evaluate("document.scrollingElement.scrollWidth")
        self.page.set_viewport_size(DESKTOP)
        assert width <= PHONE["width"], f"{name} is {width} px wide at 375 px"

    def _keep(self, file: str) -> None:
        """The page's screenshot into ARTIFACTS, whole: `make test`'s two passes run at once and
        shoot the same pages, so each file is replaced in one step, never seen half written."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        part = ARTIFACTS / f".{file}.{os.getpid()}"
        part.write_bytes(self.page.screenshot(full_page=True))
        part.replace(ARTIFACTS / file)

    def close(self) -> None:
        self.context.close()
        unexpected = [e for e in self.errors if not any(re.search(x, e) for x in self.expected)]
        assert unexpected == [], unexpected


@pytest.fixture
def visit(browser, server):
    opened = Visit(browser, server)
    yield opened
    opened.close()


def _value(page) -> str:
    return page.text_content("#value").replace(",", "")


# ------------------------------------------------------------------ served as a page must be


def test_the_dashboard_is_served_on_the_apis_origin_with_a_strict_policy(server):
    with urllib.request.urlopen(f"{server.url}/dashboard", timeout=10) as answer:
        headers, html = answer.headers, answer.read().decode()

    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []  # no inline script
    assert " style=" not in html and "<style" not in html
    for asset in re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', html):
        with urllib.request.urlopen(f"{server.url}{asset}", timeout=10) as answer:
            assert answer.status == 200 and answer.headers["X-Content-Type-Options"] == "nosniff"


# ------------------------------------------------------------------ the flows


def test_an_admin_signs_in_by_keyboard_and_the_key_lives_in_session_storage_only(visit, shop):
    visit.open()
    visit.shoot("sign-in")
    visit.sign_in(shop["admin"])
    page = visit.page

    assert page.evaluate("sessionStorage.getItem('tally.key')") == shop["admin"]
    assert page.evaluate("localStorage.length") == 0 and visit.context.cookies() == []
    assert shop["admin"] not in page.url
    assert page.text_content("#who .workspace") == "shop"
    visit.shoot("counters")

    page.click("text=Sign out")
    page.wait_for_selector("#key")
    assert page.evaluate("sessionStorage.getItem('tally.key')") is None


def test_an_admin_sets_up_a_counter_and_sees_its_value_and_chart_change(visit, shop, server):
    visit.sign_in(shop["admin"])
    page = visit.page
    page.click("text=Set up a counter")
    page.wait_for_selector("#setup")
    page.fill("[data-field=name]", "api_calls")
    page.fill("[data-field=description]", XSS)
    page.fill("[data-field=lower_bound]", "0")
    page.fill("[data-field=upper_bound]", "a hundred")
    page.check("#billed")
    page.fill("[data-field='billing.threshold']", "10")
    page.fill("[data-field='billing.amount']", "250")
    page.fill("[data-field='billing.description']", "API calls over 10")
    visit.expected.append(r"status of 400")  # the refusal below, as Chromium logs it

    page.click("#setup button[type=submit]")

    # The API's 400 lands on the field it names, and nothing was set up.
    page.wait_for_selector("[data-field=upper_bound][aria-invalid=true]")
    assert page.text_content("[data-field=upper_bound] ~ .field-error")
    visit.shoot("setup-refused")
    page.fill("[data-field=upper_bound]", "100")
    page.click("#setup button[type=submit]")
    page.wait_for_selector("#history-caption:has-text('0 up')")
    assert page.text_content("#description") == XSS  # shown as text, never as markup
    assert page.locator("main img").count() == 0
    page.wait_for_selector("#counter-settings dd")  # drawn after the history, in the same poll
    assert "Upper bound100" in page.text_content("#counter-settings")
    chart = page.locator("#history-chart canvas")
    before = chart.screenshot()

    for _ in range(3):
        assert server.call("/v2/shop/api_calls/up", key=shop["admin"])[0] == 200

    page.wait_for_selector("#value:text-is('3')", timeout=LIVE_S * 1000)
    page.wait_for_selector("#history-caption:has-text('3 up')", timeout=LIVE_S * 1000)
    assert chart.screenshot() != before
    visit.shoot("counter")


def test_a_change_past_a_bound_shows_the_409_on_the_page_and_changes_nothing(visit, shop, server):
    before = visit.counter(shop["admin"], "api_calls")
    page = visit.page
    visit.expected.append(r"status of 409")

    page.fill("#amount", "500")
    page.click("#add")

    page.wait_for_selector("#counter-error:has-text('upper bound')")
    assert _value(page) == before
    answer = server.call("/v2/shop/api_calls", key=shop["admin"])[1]
    assert str(answer["data"]["value"]) == before
    visit.shoot("counter-409")


def test_a_reset_asks_first_and_cancelling_changes_nothing(visit, shop, server):
    before = visit.counter(shop["admin"], "api_calls")
    page = visit.page

    page.click("#reset")
    page.wait_for_selector("dialog[open]")
    visit.shoot("counter-reset-dialog")
    page.keyboard.press("Escape")

    page.wait_for_selector("dialog", state="hidden")
    assert server.call("/v2/shop/api_calls", key=shop["admin"])[1]["data"]["value"] == int(before)


def test_a_billing_run_shows_its_invoice_item(visit, shop, server):
    assert server.call("/account/counters/api_calls/9", method="POST", key=shop["admin"])[0] == 200
    server.billing_marked("shop", "api_calls")
    flags = [] if server.endpoint else ["--dynamodb-port", str(server.ddb_port)]
    billed = subprocess.run(
        [TALLY, "invoke", "BillingFunction", *flags],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert billed.returncode == 0, billed.stderr

    visit.sign_in(shop["admin"])
    visit.go("#/invoices", "#items tbody tr")
    page = visit.page

    row = page.locator("#items tbody tr", has_text="API calls over 10")
    assert row.count() == 1 and "billing" in row.text_content() and "2.50" in row.text_content()
    assert "2.50" in page.text_content("#months tbody")
    visit.shoot("invoices")
    visit.go("#/counter/api_calls", "#counter-items li")
    assert "2.50" in page.text_content("#counter-items")


def test_an_admin_creates_a_key_sees_its_secret_once_and_revokes_it(visit, shop, server):
    visit.sign_in(shop["admin"])
    visit.go("#/keys", "#keys tbody tr")
    page = visit.page
    own = shop["admin"].split("_")[1]
    assert "cannot revoke itself" in page.text_content(f"#keys tr[data-key='{own}']")

    page.check("#scope-write")
    page.click("#new-key button[type=submit]")

    secret = page.wait_for_selector("#secret").text_content()
    key_id = secret.split("_")[1]
    assert server.call("/app/session", key=secret)[1]["key"]["scopes"] == ["read", "write"]
    visit.shoot("keys-secret")
    visit.go("#/counters", "#counters")
    visit.go("#/keys", f"#keys tr[data-key='{key_id}']")
    assert secret.rsplit("_", 1)[1] not in page.content()  # shown once, never again

    page.click(f"#keys tr[data-key='{key_id}'] button:has-text('Revoke')")
    page.click("#confirm-ok")

    page.wait_for_selector(f"#keys tr[data-key='{key_id}'] .revoked:not(:has-text('no'))")
    assert server.call("/app/session", key=secret)[0] == 401
    visit.shoot("keys")


def test_the_workspace_page_shows_its_rate_limit_and_saves_its_default_visibility(
    visit, shop, server
):
    limit = {"quota": 1200, "window": 60}
    server.call("/admin/workspaces/shop/rate-limit", method="PUT", key=ADMIN, body=limit)
    visit.sign_in(shop["admin"])
    visit.go("#/workspace", "#rate-limit")
    page = visit.page
    assert "1200 requests per 60 s" in page.text_content("#rate-limit")

    page.select_option("[data-field=default_visibility]", "public")
    page.click("#workspace-settings button[type=submit]")

    page.wait_for_selector("#status:has-text('saved')")
    settings = server.call("/account/settings", key=shop["admin"])[1]
    assert settings["default_visibility"] == "public"
    visit.shoot("workspace")
    body = {"default_visibility": "private"}
    server.call("/account/settings", method="PUT", key=shop["admin"], body=body)


def test_alerts_are_set_in_the_setup_form_and_a_bad_one_is_refused_on_its_row(visit, shop, server):
    visit.sign_in(shop["admin"])
    visit.go("#/setup/api_calls", "#setup")
    page = visit.page
    alerts = page.locator("#alerts .alert-row")
    assert alerts.count() == 0
    for kind, level in [("at", "50"), ("at", "7"), ("at_percent_of_upper_bound", "150")]:
        page.click("#add-alert")
        assert page.evaluate("document.activeElement.tagName") == "SELECT"  # the new row's
        page.select_option("#alerts .alert-row:last-child select", kind)
        page.fill("#alerts .alert-row:last-child input", level)
    page.click("#alerts .alert-row:nth-child(2) button:has-text('Remove')")  # the 7
    assert alerts.count() == 2
    assert page.get_attribute("#alerts .alert-row:nth-child(2) input", "data-field") == "alerts.1"
    visit.expected.append(r"status of 400")

    page.click("#setup button[type=submit]")

    # alerts.1.at_percent_of_upper_bound: under the second row's level, and nothing was set.
    bad = "[data-field='alerts.1'][aria-invalid=true]"
    page.wait_for_selector(bad)
    assert "100" in page.text_content(f"{bad} ~ .field-error")
    assert page.locator("[aria-invalid=true]").count() == 1
    assert server.call("/account/counters/api_calls/settings", key=shop["admin"])[1]["alerts"] == []
    visit.shoot("setup-alerts-refused")
    page.fill(bad, "90")
    page.click("#setup button[type=submit]")

    page.wait_for_selector("#counter-alerts li")
    shown = page.locator("#counter-alerts li").all_text_contents()
    assert shown == ["at 50", "at 90 % of the upper bound (= 90)"]
    visit.shoot("counter-alerts")
    stored = server.call("/account/counters/api_calls/settings", key=shop["admin"])[1]
    assert stored["alerts"] == [{"at": 50}, {"at_percent_of_upper_bound": 90}]
    assert stored["upper_bound"] == 100 and stored["billing"]["threshold"] == 10  # kept


def test_an_admin_adds_a_webhook_sees_its_secret_once_and_its_delivery(
    visit, shop, server, receiver
):
    hook = receiver()
    visit.sign_in(shop["admin"])
    visit.go("#/webhooks", "#new-webhook")
    page = visit.page
    visit.expected.append(r"status of 400")
    others = ["counter.threshold_crossed", "counter.bound_reached", "invoice_item.created"]
    for other in others:  # the alert's event only
        page.uncheck(f"[id='event-tally.{other}']")

    # By keyboard: Enter in the URL field adds it; a URL tally will not call is refused on it.
    page.focus("[data-field=url]")
    page.keyboard.type("http://10.0.0.1/hooks")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-field=url][aria-invalid=true]")
    page.fill("[data-field=url]", hook.url)
    page.fill("[data-field=description]", XSS)
    page.keyboard.press("Enter")

    secret = page.wait_for_selector("#secret").text_content()
    assert secret.startswith("whsec_")
    row = page.locator("#webhooks tbody tr", has_text=hook.url)
    assert row.count() == 1 and "tally.counter.alert" in row.text_content()
    assert XSS in row.text_content() and page.locator("main img").count() == 0
    visit.shoot("webhooks-secret")
    visit.go("#/counters", "#counters")
    visit.go("#/webhooks", "#webhooks tbody tr")
    assert secret.split("_", 1)[1] not in page.content()  # shown once, never again

    # A counter with an alert, driven past its level through the API: one delivery, signed
    # with the secret the page showed.
    settings = {"upper_bound": 10, "alerts": [{"at": 2}]}
    put = server.call(
        "/account/counters/signups/settings", method="PUT", key=shop["admin"], body=settings
    )
    assert put[0] == 200, put
    for _ in range(3):
        assert server.call("/v2/shop/signups/up", key=shop["admin"])[0] == 200
    deadline = time.monotonic() + LIVE_S
    while not hook.got and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(hook.got) == 1, "the alert's event did not reach the webhook"
    headers, body = hook.got[0]
    event = Verifier(secret).verify(body, headers)
    assert event["type"] == "tally.counter.alert" and event["data"]["level"] == 2

    row.locator("a:has-text('Deliveries')").click()
    delivered = f"#deliveries tr[data-event='{event['id']}'][data-status=delivered]"
    page.wait_for_selector(delivered, timeout=LIVE_S * 1000)  # the page reads it again
    cells = page.locator(f"{delivered} td").all_text_contents()
    assert cells[:2] == ["tally.counter.alert", "delivered"] and cells[2] == "1"
    assert cells[4] == "200" and cells[5] == "" and cells[6] == "none"
    assert page.get_attribute("#nav a[aria-current=page]", "href") == "#/webhooks"
    visit.shoot("webhook-deliveries")

    # Deleted by keyboard, after a confirmation (Tab from Cancel to Delete, Enter).
    page.click("#nav a:has-text('Webhooks')")
    page.focus(f"#webhooks tbody tr:has-text('{hook.url}') button.danger")
    page.keyboard.press("Enter")
    page.wait_for_selector("dialog[open]")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#no-webhooks:visible")
    assert server.call("/account/webhooks", key=shop["admin"])[1]["list"] == []
    visit.shoot("webhooks")


def test_a_read_key_sees_the_counters_but_no_setup_or_change_control(visit, shop):
    visit.sign_in(shop["read"])
    page = visit.page

    assert page.locator("#nav a").all_text_contents() == ["Counters", "Invoice items"]
    assert page.locator("text=Set up a counter").count() == 0
    assert page.locator("#counters th", has_text="Billing").count() == 0
    visit.go("#/counter/api_calls", "#history-caption:not(:empty)")
    for control in ("#up", "#down", "#add", "#set", "#reset", "text=Set up", "#counter-settings"):
        assert page.locator(control).count() == 0, control
    visit.shoot("counter-read-key")
    visit.go("#/invoices", "#items")
    assert page.locator("#add-item").count() == 0

    for admin_only in ("#/setup/api_calls", "#/webhooks", "#/deliveries/wh_00000000000000000000"):
        visit.go("#/invoices", "#items")
        visit.go(admin_only, "#counters")  # an admin page is not drawn for this key
        assert "#/counters" in page.url, admin_only
