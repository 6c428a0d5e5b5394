"""Webhooks: the admin API, the URLs tally refuses to call (SSRF), and delivery to a receiver on a
local port: signed as Standard Webhooks specify (checked by the `standardwebhooks` package, not
by tally's code), once per event id, retried on its schedule, failed for good after the last."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from tally import clock, warm_cache
from tally_local.gateway import LambdaContext
from tests.conftest import ADMIN_TOKEN, TEMPLATE, load_event, resolve_publicly

DELIVER = TEMPLATE.functions["DeliverWebhooksFunction"]
EVENTS = ["tally.counter.alert", "tally.invoice_item.created"]


def bus_event(workspace: str, *, kind: str = "tally.counter.alert", n: int = 1) -> dict:
    """An event as the bus hands it to DeliverWebhooksFunction (the sample, in `workspace`)."""
    event = load_event("deliver_webhooks")
    event["detail"]["workspace"] = workspace
    event["detail"]["type"] = event["detail-type"] = kind
    event["detail"]["id"] = f"evt_{n:026x}"
    event["detail"]["timestamp"] = clock.iso()
    return event


def deliver(event: dict) -> dict:
    return DELIVER.load()(event, LambdaContext(DELIVER))


def sweep() -> dict:
    return deliver(load_event("billing_run"))  # a Scheduled Event, as the retry schedule sends


def verified(secret: str, body: str, headers: dict) -> dict:
    """Verified by the standardwebhooks package as a receiver would, at the moment it was sent
    (the tests move tally's clock, and the verifier refuses messages 5 minutes off its own)."""
    sent = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)

    class Then(datetime):
        @classmethod
        def now(cls, tz=None):
            return sent

    with mock.patch("standardwebhooks.webhooks.datetime", Then):
        return Verifier(secret).verify(body, headers)


def later(monkeypatch, seconds: float) -> None:
    moved = clock.now() + timedelta(seconds=seconds)
    monkeypatch.setattr(clock, "now", lambda: moved)


# ------------------------------------------------------------------ the API


def test_a_webhook_is_made_listed_and_deleted_and_its_secret_shown_once(api, workspace):
    _, key = workspace
    body = {"url": "http://127.0.0.1:9/in", "events": EVENTS, "description": "billing"}

    made = api("POST", "/account/webhooks", key=key, body=body)

    assert made.status == 201, made.body
    assert made.body["secret"].startswith("whsec_")
    assert made.body["id"].startswith("wh_") and made.body["events"] == EVENTS
    listed = api("GET", "/account/webhooks", key=key)
    assert listed.status == 200
    assert listed.body["list"] == [{k: v for k, v in made.body.items() if k != "secret"}]
    assert made.body["secret"] not in json.dumps(listed.body)
    hook = made.body["id"]
    assert api("DELETE", f"/account/webhooks/{hook}", key=key).body == {
        "id": hook,
        "deleted": True,
    }
    assert api("DELETE", f"/account/webhooks/{hook}", key=key).status == 404
    assert api("GET", "/account/webhooks", key=key).body["list"] == []


def test_webhooks_need_an_admin_key_of_their_own_workspace(api, workspace):
    _ws, key = workspace
    made = api(
        "POST", "/account/webhooks", key=key, body={"url": "http://127.0.0.1:9/", "events": EVENTS}
    ).body
    reader = api("POST", "/account/api-keys", key=key, body={"scopes": ["read", "write"]})
    other = api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "other"})
    other_key = other.body["api_key"]
    hook = made["id"]

    assert api("GET", "/account/webhooks", key=reader.body["api_key"]).status == 403
    assert api("GET", "/account/webhooks").status == 401
    assert api("GET", "/account/webhooks", key=other_key).body["list"] == []
    assert api("DELETE", f"/account/webhooks/{hook}", key=other_key).status == 404
    assert api("GET", f"/account/webhooks/{hook}/deliveries", key=other_key).status == 404
    assert api("GET", "/account/webhooks", key=key).body["list"][0]["id"] == hook


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:9/", "events": []}, "events"),
        ({"url": "http://127.0.0.1:9/", "events": ["tally.everything"]}, "events.0"),
        ({"url": "http://127.0.0.1:9/", "events": "tally.counter.alert"}, "events"),
        ({"url": "", "events": EVENTS}, "url"),
        ({"url": "http://127.0.0.1:9/" + "a" * 2048, "events": EVENTS}, "url"),
        ({"url": "http://127.0.0.1:9/", "events": EVENTS, "secret": "mine"}, "secret"),
        ({"events": EVENTS}, "url"),
    ],
)
def test_a_bad_webhook_body_is_400_naming_its_field_and_makes_nothing(api, workspace, body, field):
    _, key = workspace

    answer = api("POST", "/account/webhooks", key=key, body=body)

    assert answer.status == 400, answer.body
    assert field in json.dumps(answer.body)
    assert api("GET", "/account/webhooks", key=key).body["list"] == []


@pytest.mark.parametrize(
    "alerts", [[{"at": None}], [{}], [{"at": 1, "at_percent_of_upper_bound": 5}], [{"at": 1.5}]]
)
def test_a_bad_alert_is_400_naming_it_and_changes_nothing(api, workspace, alerts):
    _, key = workspace
    path = "/account/counters/c/settings"
    api("PUT", path, key=key, body={"alerts": [{"at": 5}]})

    answer = api("PUT", path, key=key, body={"alerts": alerts})

    assert answer.status == 400 and "alerts.0" in json.dumps(answer.body), answer.body
    assert api("GET", path, key=key).body["alerts"] == [{"at": 5}]


def test_a_replayed_idempotency_key_makes_one_webhook_and_never_shows_its_secret_again(
    api, workspace
):
    _, key = workspace
    body = {"url": "http://127.0.0.1:9/", "events": EVENTS}
    once = {"Idempotency-Key": "hook-1"}

    first = api("POST", "/account/webhooks", key=key, body=body, headers=once)
    again = api("POST", "/account/webhooks", key=key, body=body, headers=once)

    assert first.status == again.status == 201
    assert first.body["secret"].startswith("whsec_") and again.body["secret"] is None
    assert again.body["id"] == first.body["id"]
    assert [h["id"] for h in api("GET", "/account/webhooks", key=key).body["list"]] == [
        first.body["id"]
    ]


def test_a_workspace_has_at_most_ten_webhooks(api, workspace):
    _, key = workspace
    body = {"url": "http://127.0.0.1:9/", "events": EVENTS}
    made = [api("POST", "/account/webhooks", key=key, body=body).status for _ in range(11)]

    assert made == [201] * 10 + [409]
    first = api("GET", "/account/webhooks", key=key).body["list"][0]["id"]
    api("DELETE", f"/account/webhooks/{first}", key=key)
    assert api("POST", "/account/webhooks", key=key, body=body).status == 201


def _deployed_webhook(api, workspace, monkeypatch, url: str):
    """POST a webhook to `url` as a deployed stack takes them (https to public addresses)."""
    _, key = workspace
    monkeypatch.setenv("TALLY_WEBHOOK_URLS", "public-https")
    warm_cache.reset_all()
    return api("POST", "/account/webhooks", key=key, body={"url": url, "events": EVENTS})


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/",  # http to a public address
        "https://127.0.0.1/",
        "https://localhost/",
        "https://10.0.0.8/",
        "https://192.168.1.1/",
        "https://172.16.0.1/",
        "https://169.254.169.254/latest/meta-data/",  # the instance metadata service
        "https://[::1]/",
        "https://[fd00::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "https://[2002:a00:1::]/",  # 6to4 of 10.0.0.1
        "https://[::7f00:1]/",  # IPv4-compatible 127.0.0.1
        "https://[::a9fe:a9fe]/",  # IPv4-compatible 169.254.169.254
        "https://[::ffff:0:7f00:1]/",  # IPv4-translated 127.0.0.1
        "https://[::ffff:0:a00:1]/",  # IPv4-translated 10.0.0.1
        "https://[64:ff9b:1::a9fe:a9fe]/",  # local-use NAT64
        "https://224.0.0.1/",  # multicast, which Python deems global
        "https://239.255.255.250/",
        "https://[ff02::1]/",
        "https://[ff0e::1]/",  # global-scope multicast
        "https://240.0.0.1/",  # reserved
        "https://255.255.255.255/",
        "https://0x7f000001/",  # 127.0.0.1 spelt in hex
        "https://2130706433/",  # and as one number
        "https://0.0.0.0/",
        "https://100.64.0.1/",  # carrier-grade NAT
        "https://user:pass@93.184.216.34/",
        "ftp://93.184.216.34/",
        "https://no-such-host.invalid/",
        "https://93.184.216.34:99999/",
        "not a url",
        "https://93.184.216.34/#fragment",
        "https://93.184.216.34/a\r\nHost: evil",  # a header smuggled into the request line
        "https://93.184.216.34/a b",
    ],
)
def test_deployed_a_webhook_url_must_be_https_to_a_public_address(api, workspace, monkeypatch, url):
    answer = _deployed_webhook(api, workspace, monkeypatch, url)

    assert answer.status == 400, (url, answer.body)
    assert "url" in json.dumps(answer.body)


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/",
        "https://[2606:4700:4700::1111]/",
        "https://[2001:4860:4860::8888]/",
        "https://[64:ff9b::808:808]/",  # NAT64 of 8.8.8.8: judged by the IPv4 it carries
        "https://[::ffff:0:808:808]/",  # IPv4-translated 8.8.8.8
        "https://[2002:808:808::1]/",  # 6to4 of 8.8.8.8
    ],
)
def test_deployed_a_public_address_is_taken_however_it_is_written(api, workspace, monkeypatch, url):
    answer = _deployed_webhook(api, workspace, monkeypatch, url)

    assert answer.status == 201, (url, answer.body)


def test_a_refused_address_that_carries_an_ipv4_names_it(api, workspace, monkeypatch):
    answer = _deployed_webhook(api, workspace, monkeypatch, "https://[64:ff9b::a9fe:a9fe]/")

    assert answer.status == 400
    assert answer.body["error"]["message"] == (
        "url resolves to an address tally does not call (private, loopback, link-local, "
        "multicast or reserved: 64:ff9b::a9fe:a9fe, which carries 169.254.169.254)"
    )


def test_deployed_a_public_https_url_is_taken(api, workspace, monkeypatch):
    _, key = workspace
    monkeypatch.setenv("TALLY_WEBHOOK_URLS", "public-https")
    warm_cache.reset_all()
    resolve_publicly(monkeypatch, "hooks.example.com")

    answer = api(
        "POST",
        "/account/webhooks",
        key=key,
        body={"url": "https://hooks.example.com/t", "events": EVENTS},
    )

    assert answer.status == 201, answer.body


# ------------------------------------------------------------------ delivery


def make_hook(api, key: str, url: str, events: list[str] = EVENTS) -> dict:
    answer = api("POST", "/account/webhooks", key=key, body={"url": url, "events": events})
    assert answer.status == 201, answer.body
    return answer.body


def deliveries(api, key: str, hook: dict) -> list[dict]:
    answer = api("GET", f"/account/webhooks/{hook['id']}/deliveries", key=key)
    assert answer.status == 200, answer.body
    return answer.body["list"]


def test_an_event_is_delivered_signed_once_per_webhook_that_takes_it(api, workspace, receiver):
    ws, key = workspace
    taker, other = receiver(), receiver()
    hook = make_hook(api, key, taker.url)
    make_hook(api, key, other.url, events=["tally.counter.bound_reached"])
    event = bus_event(ws)

    assert deliver(event) == {"deliveries": 1}
    assert deliver(event) == {"deliveries": 0}  # the same event published again

    ((headers, body),) = taker.got
    assert other.got == []
    assert json.loads(body) == event["detail"]
    assert headers["webhook-id"] == event["detail"]["id"]
    assert verified(hook["secret"], body, headers) == event["detail"]
    with pytest.raises(Exception, match="signature"):
        verified(make_hook(api, key, taker.url)["secret"], body, headers)
    (logged,) = deliveries(api, key, hook)
    assert logged["status"] == "delivered" and logged["attempts"] == 1
    assert logged["last_status_code"] == 200 and logged["event_id"] == event["detail"]["id"]


def test_a_failed_first_attempt_is_retried_on_schedule_with_the_same_id(
    api, workspace, receiver, monkeypatch
):
    ws, key = workspace
    flaky = receiver([500, 503])
    hook = make_hook(api, key, flaky.url)
    event = bus_event(ws)

    deliver(event)
    (waiting,) = deliveries(api, key, hook)
    assert waiting["status"] == "pending" and waiting["attempts"] == 1
    assert waiting["last_status_code"] == 500 and "500" in waiting["last_error"]
    assert waiting["next_attempt_at"] is not None
    assert sweep() == {"retried": 0}  # not due yet

    later(monkeypatch, 61)
    assert sweep() == {"retried": 1}  # 503
    assert sweep() == {"retried": 0}
    later(monkeypatch, 301)
    assert sweep() == {"retried": 1}  # 200

    assert flaky.ids() == [event["detail"]["id"]] * 3
    assert all(verified(hook["secret"], b, h) for h, b in flaky.got)
    (done,) = deliveries(api, key, hook)
    assert done["status"] == "delivered" and done["attempts"] == 3
    assert done["next_attempt_at"] is None and done["last_error"] is None


def test_a_delivery_that_fails_for_a_day_is_failed_for_good_and_logged(
    api, workspace, receiver, monkeypatch, caplog
):
    ws, key = workspace
    down = receiver([500] * 20)
    hook = make_hook(api, key, down.url)
    deliver(bus_event(ws))

    start = clock.now()
    for seconds in (60, 300, 1800, 7200, 18000, 36000, 86400):
        assert sweep() == {"retried": 0}  # not before its time
        monkeypatch.setattr(clock, "now", lambda s=seconds: start + timedelta(seconds=s + 1))
        assert sweep() == {"retried": 1}
    later(monkeypatch, 200_000)
    assert sweep() == {"retried": 0}

    (failed,) = deliveries(api, key, hook)
    assert failed["status"] == "failed" and failed["attempts"] == 8
    assert len(down.got) == 8


def test_a_receiver_that_is_down_is_a_failed_attempt_not_a_failed_function(api, workspace):
    ws, key = workspace
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    hook = make_hook(api, key, f"http://127.0.0.1:{closed}/")

    assert deliver(bus_event(ws)) == {"deliveries": 1}

    (waiting,) = deliveries(api, key, hook)
    assert waiting["status"] == "pending" and waiting["last_status_code"] is None
    assert "Connection" in waiting["last_error"] or "refused" in waiting["last_error"]


def test_a_deleted_webhooks_waiting_deliveries_end_without_a_call(
    api, workspace, receiver, monkeypatch
):
    ws, key = workspace
    flaky = receiver([500])
    hook = make_hook(api, key, flaky.url)
    deliver(bus_event(ws))
    api("DELETE", f"/account/webhooks/{hook['id']}", key=key)

    later(monkeypatch, 61)
    sweep()

    assert len(flaky.got) == 1


def test_deliveries_are_listed_newest_first_a_page_at_a_time(api, workspace, receiver):
    ws, key = workspace
    hook = make_hook(api, key, receiver().url)
    sent = [bus_event(ws, n=n) for n in range(5)]
    for event in sent:
        deliver(event)
    path = f"/account/webhooks/{hook['id']}/deliveries?limit=2"

    pages, cursor = [], None
    while True:
        answer = api("GET", path + (f"&cursor={cursor}" if cursor else ""), key=key)
        assert answer.status == 200, answer.body
        pages.append([d["event_id"] for d in answer.body["list"]])
        cursor = answer.body["next_cursor"]
        if not cursor:
            break

    seen = [i for page in pages for i in page]
    assert sorted(seen) == sorted(e["detail"]["id"] for e in sent) and len(seen) == 5
    assert api("GET", path + "&cursor=garbage", key=key).status == 400
