"""Events and webhooks through a real `tally serve`: a counter with billing, bounds and alerts
is driven past its levels while billing runs on its schedule; the streams are read, the events
put on the local bus, handed to DeliverWebhooksFunction and POSTed to a receiver on a local
port, which answers its first delivery 500. Each documented event arrives exactly once per id
(after its retry), signed; nothing is published for a refused change."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from unittest import mock

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from tests.serve import ADMIN, Server
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory, dynamodb_backend):
    with mock.patch.dict("os.environ", {"TALLY_WEBHOOK_RETRY_SCHEDULE": "1,2,3,4,5,6,7"}):
        running = Server(
            tmp_path_factory.mktemp("events"),
            schedule_interval=0.5,  # billing and the webhook retries, twice a second
            endpoint=dynamodb_backend.endpoint,
        )
    yield running
    running.stop()


def verified(secret: str, body: str, headers: dict) -> dict:
    sent = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 300  # the real clock here

    return Verifier(secret).verify(body, headers)


def wait_for(check, timeout: float = 45.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return found


def test_each_event_reaches_the_webhook_once_per_id_signed_through_tally_serve(server):
    status, made = server.call(
        "/admin/workspaces", method="POST", key=ADMIN, body={"workspace": "hooked"}
    )
    assert status == 201, made
    key = made["api_key"]
    receiver = Receiver([500])  # the first delivery fails: retried with the same id
    every = [
        "tally.counter.threshold_crossed",
        "tally.counter.bound_reached",
        "tally.counter.alert",
        "tally.invoice_item.created",
    ]
    status, hook = server.call(
        "/account/webhooks", method="POST", key=key, body={"url": receiver.url, "events": every}
    )
    assert status == 201, hook
    settings = {
        "upper_bound": 6,
        "billing": {"threshold": 4, "amount": 25, "description": "4 calls"},
        "alerts": [{"at": 2}, {"at_percent_of_upper_bound": 50}],  # 2 and 3
    }
    assert (
        server.call("/account/counters/calls/settings", method="PUT", key=key, body=settings)[0]
        == 200
    )

    # Up to the bound, one refused change past it; billing takes 4 of 6 meanwhile or after.
    for _ in range(6):
        assert server.call("/v2/hooked/calls/up", key=key)[0] == 200
    assert server.call("/v2/hooked/calls/up", key=key)[0] in (200, 409)
    # A quota of 2 on a counter of its own: the third up is refused and publishes nothing.
    quota = {"upper_bound": 2}
    assert (
        server.call("/account/counters/quota/settings", method="PUT", key=key, body=quota)[0] == 200
    )
    assert [server.call("/v2/hooked/quota/up", key=key)[0] for _ in range(3)] == [200, 200, 409]
    status, _ = server.call(
        "/account/invoice-items", method="POST", key=key, body={"amount": 9, "description": "fee"}
    )
    assert status == 201

    def arrived():
        kinds = Counter(json.loads(body)["type"] for _, body in receiver.got)
        return (
            kinds if kinds["tally.invoice_item.created"] >= 2 and len(receiver.got) >= 7 else None
        )

    wait_for(arrived)
    time.sleep(3)  # anything late or doubled would land now

    details = [verified(hook["secret"], body, headers) for headers, body in receiver.got]
    by_id: dict[str, list[dict]] = {}
    for detail, (headers, _) in zip(details, receiver.got, strict=True):
        assert headers["webhook-id"] == detail["id"]
        by_id.setdefault(detail["id"], []).append(detail)
    # One id was sent twice (its first attempt answered 500); every other exactly once.
    assert sorted(len(v) for v in by_id.values())[-1] == 2
    assert sum(len(v) == 2 for v in by_id.values()) == 1
    kinds = Counter(v[0]["type"] for v in by_id.values())
    assert kinds["tally.counter.alert"] >= 2  # 2, 3 (and again, if billing took the value below)
    assert kinds["tally.counter.threshold_crossed"] >= 1
    assert kinds["tally.invoice_item.created"] >= 2  # the API's and billing's
    sources = {
        v[0]["data"]["invoice_item"]["source"]
        for v in by_id.values()
        if v[0]["type"] == "tally.invoice_item.created"
    }
    assert sources == {"api", "billing"}
    # The value after all changes and billing: 6 or 7 ups counted, less what billing took.
    status, deliveries = server.call(f"/account/webhooks/{hook['id']}/deliveries", key=key)
    assert status == 200
    assert {d["event_id"] for d in deliveries["list"]} == set(by_id)
    assert all(d["status"] == "delivered" for d in deliveries["list"])
    assert sorted(d["attempts"] for d in deliveries["list"])[-1] == 2
    quota_events = [v[0] for v in by_id.values() if v[0]["data"].get("counter") == "quota"]
    assert [(d["type"], d["data"]["value"]) for d in quota_events] == [
        ("tally.counter.bound_reached", 2)
    ]
    assert "event tally.counter.alert" in server.log()  # one line per published event
    receiver.server.shutdown()
