"""What each write costs, in write units, as DynamoDB Local counts them (ReturnConsumedCapacity
asked on every write of tally's client, in the test only): an item's size per started 1 KB,
each index the write touches, and twice that inside a transaction. moto's ConsumedCapacity
follows none of these rules, so these run on DynamoDB Local only."""

from __future__ import annotations

import pytest

from tally import billing
from tests.conftest import record_read_units, record_write_units

pytestmark = pytest.mark.dynamodb_local_only(
    "moto reports half a unit a write, none for index writes and nothing for a transaction"
)

BUCKET = ("UpdateItem", "RateLimitsTable", 1.0)  # the rate-limit take of a request
COUNTER = ("UpdateItem", "CountersTable", 1.0)


def test_cost_a_counter_change_writes_1_unit(api, workspace):
    _, key = workspace
    changes = [
        ("GET", "/v2/acme/c/up"),
        ("GET", "/v2/acme/c/down"),
        ("POST", "/account/counters/c/7"),
    ]
    units = record_write_units()

    api("GET", "/v2/acme/c/up", key=key)  # a new counter, on a path new to this container
    assert units.pop() == [BUCKET, BUCKET, COUNTER]  # a new-path token and the path's bucket
    for method, path in changes:  # every path known from now on
        api(method, path, key=key)
    units.pop()

    for method, path in changes:
        api(method, path, key=key)
        assert units.pop() == [BUCKET, COUNTER], path


def test_cost_billing_a_counter_writes_6_units_and_reads_1_item_and_marks_1_unit_each(
    api, workspace, counter_stream
):
    """The change that crosses the threshold costs its 1 unit and nothing more. Its mark, written
    by the stream's function, is 1 unit (no index), and so is dropping it. The run reads the mark
    (one item, by a Scan of the marks) and writes the transaction: the invoice item 1 unit and its
    copy in the by_time index 1 more, the counter's update 1, each doubled in a transaction."""
    _, key = workspace
    billed = {"billing": {"threshold": 10, "amount": 7, "description": "per 10"}}
    api("PUT", "/account/counters/c/settings", key=key, body=billed)
    api("POST", "/account/counters/c/4", key=key)
    api("POST", "/account/counters/c/4", key=key)
    api("GET", "/v2/acme/c/up", key=key)  # 9; both paths known to this container
    counter_stream()
    units = record_write_units()

    api("POST", "/account/counters/c/4", key=key)  # reaches 13: due
    assert units.pop() == [BUCKET, COUNTER]
    counter_stream()
    assert _marks(units.pop()) == [("PutItem", "BillingDueTable", 1.0)]
    reads = record_read_units()

    report = billing.run()

    assert report.items_created == 1
    assert reads == [("Scan", "BillingDueTable", 1.0, 1)]  # 1 item: strongly consistent, 1 unit
    assert sorted(units.pop()) == [
        ("TransactWriteItems", "CountersTable", 2.0),
        ("TransactWriteItems", "InvoiceItemsTable", 4.0),
    ]
    counter_stream()  # the billing's record: 3 left, below 10, so the mark goes
    assert _marks(units.pop()) == [("DeleteItem", "BillingDueTable", 1.0)]


def _marks(units: list) -> list:
    """The writes to the marks (the stream's function also writes history buckets)."""
    return [u for u in units if u[1] == "BillingDueTable"]


def test_cost_an_invoice_item_post_writes_2_units(api, workspace):
    """The item and its copy in the by_time index (projection ALL)."""
    _, key = workspace
    body = {"amount": 500, "description": "setup fee"}
    api("POST", "/account/invoice-items", key=key, body=body)  # the path known
    units = record_write_units()

    assert api("POST", "/account/invoice-items", key=key, body=body).status == 201
    assert units.pop() == [BUCKET, ("PutItem", "InvoiceItemsTable", 2.0)]


def test_cost_a_webhook_delivery_writes_4_units_and_a_published_event_none(
    api, workspace, receiver
):
    from tests.api.test_webhooks import bus_event, deliver, make_hook

    ws, key = workspace
    make_hook(api, key, receiver().url)
    units = record_write_units()

    deliver(bus_event(ws))

    # The delivery recorded (with its entry in the `retry` index, so that a crash before the
    # attempt is retried), then the attempt recorded (the entry dropped): 2 + 2.
    assert units.pop() == [("PutItem", "WebhooksTable", 2.0), ("UpdateItem", "WebhooksTable", 2.0)]
