"""Events from the real streams: changes made through the API, read back from the counters' and
invoice items' streams (moto's or DynamoDB Local's), derived into events as PublishEventsFunction
does, and put on a bus that records them. Each documented event exactly once per crossing, each
valid against its JSON Schema, nothing for a refused change."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import boto3
import jsonschema
import pytest

from tally import aws, billing, events
from tally_local.gateway import LambdaContext
from tally_local.streams import read_all
from tests.conftest import TEMPLATE

PUBLISH = TEMPLATE.functions["PublishEventsFunction"]
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"


def stream(ddb, table: str) -> list[dict]:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    streams = boto3.client(
        "dynamodbstreams",
        region_name="us-east-1",
        endpoint_url=endpoint or "https://streams.dynamodb.us-east-1.amazonaws.com",
    )
    return read_all(ddb, streams, table)


class Bus:
    """An EventBridge client that takes what it is given, or refuses the entries `refuse` names."""

    def __init__(self, refuse=lambda entry: False) -> None:
        self.entries: list[dict] = []
        self.refuse = refuse

    def put_events(self, Entries):
        answers = []
        for entry in Entries:
            if self.refuse(entry):
                answers.append({"ErrorCode": "InternalFailure", "ErrorMessage": "refused"})
            else:
                self.entries.append(entry)
                answers.append({"EventId": str(len(self.entries))})
        return {"FailedEntryCount": sum("ErrorCode" in a for a in answers), "Entries": answers}

    def details(self) -> list[dict]:
        return [json.loads(e["Detail"]) for e in self.entries]


@pytest.fixture
def bus(monkeypatch) -> Bus:
    recorder = Bus()
    monkeypatch.setattr(aws, "events", lambda: recorder)
    return recorder


def publish(records: list[dict]) -> dict:
    return PUBLISH.load()({"Records": records}, LambdaContext(PUBLISH))


def check_schema(detail: dict) -> None:
    schema = json.loads((SCHEMAS / f"{detail['type']}.json").read_text())
    jsonschema.validate(detail, schema, format_checker=jsonschema.FormatChecker())


def test_a_counter_driven_past_its_levels_publishes_each_crossing_once(api, workspace, ddb, bus):
    ws, key = workspace
    settings = {
        "upper_bound": 10,
        "billing": {"threshold": 5, "amount": 100, "description": "5 calls"},
        "alerts": [{"at": 3}, {"at_percent_of_upper_bound": 80}],
    }
    assert api("PUT", "/account/counters/calls/settings", key=key, body=settings).status == 200
    for _ in range(10):
        assert api("GET", f"/v2/{ws}/calls/up", key=key).status == 200
    assert api("GET", f"/v2/{ws}/calls/up", key=key).status == 409  # refused: nothing written
    assert api("GET", f"/v2/{ws}/calls/set?value=2", key=key).status == 200
    assert api("GET", f"/v2/{ws}/calls/up", key=key).status == 200  # 3: the alert again

    answer = publish(stream(ddb, "CountersTable"))

    assert answer == {"batchItemFailures": []}
    details = bus.details()
    for detail in details:
        check_schema(detail)
        assert detail["workspace"] == ws and detail["data"]["counter"] == "calls"
    crossings = Counter(
        (d["type"], d["data"].get("level") or d["data"].get("threshold") or d["data"].get("bound"))
        for d in details
    )
    assert crossings == {
        ("tally.counter.alert", 3): 2,  # up through 3, and again after the set to 2
        ("tally.counter.threshold_crossed", 5): 1,
        ("tally.counter.alert", 8): 1,  # 80 % of the upper bound 10
        ("tally.counter.bound_reached", "upper"): 1,
    }
    assert len({d["id"] for d in details}) == len(details)
    assert {e["Source"] for e in bus.entries} == {"tally"}
    assert [e["DetailType"] for e in bus.entries] == [d["type"] for d in details]


def test_a_redelivered_batch_publishes_the_same_ids(api, workspace, ddb, bus):
    ws, key = workspace
    api("PUT", "/account/counters/q/settings", key=key, body={"alerts": [{"at": 2}]})
    for _ in range(3):
        api("GET", f"/v2/{ws}/q/up", key=key)
    records = stream(ddb, "CountersTable")

    publish(records)
    publish(records)

    ids = [d["id"] for d in bus.details()]
    assert len(ids) == 2 and ids[0] == ids[1]


def test_records_whose_events_the_bus_refused_are_reported_for_a_retry(
    api, workspace, ddb, monkeypatch
):
    ws, key = workspace
    api("PUT", "/account/counters/q/settings", key=key, body={"alerts": [{"at": 1}, {"at": 3}]})
    for _ in range(3):
        api("GET", f"/v2/{ws}/q/up", key=key)
    records = stream(ddb, "CountersTable")
    refusing = Bus(refuse=lambda entry: '"level":3' in entry["Detail"])
    monkeypatch.setattr(aws, "events", lambda: refusing)

    answer = publish(records)

    (failed,) = answer["batchItemFailures"]
    crossing_3 = next(r for r in records if any(e.data.get("level") == 3 for e in events.derive(r)))
    assert failed["itemIdentifier"] == crossing_3["dynamodb"]["SequenceNumber"]
    assert [d["data"]["level"] for d in refusing.details()] == [1]


def test_a_bus_that_cannot_be_reached_fails_every_record_with_events(
    api, workspace, ddb, monkeypatch
):
    ws, key = workspace
    api("PUT", "/account/counters/q/settings", key=key, body={"alerts": [{"at": 1}]})
    api("GET", f"/v2/{ws}/q/up", key=key)
    records = stream(ddb, "CountersTable")

    class Down:
        def put_events(self, Entries):
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="https://events")

    monkeypatch.setattr(aws, "events", lambda: Down())

    answer = publish(records)

    with_events = [r for r in records if events.derive(r)]
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == [
        r["dynamodb"]["SequenceNumber"] for r in with_events
    ]


def test_settings_changes_publish_nothing(api, workspace, ddb, bus):
    _ws, key = workspace
    body = {"upper_bound": 5, "alerts": [{"at": 0}], "description": "x"}
    api("PUT", "/account/counters/q/settings", key=key, body=body)
    api("PUT", "/account/counters/q/settings", key=key, body={"lower_bound": -5})

    publish(stream(ddb, "CountersTable"))

    assert bus.entries == []


def test_invoice_items_from_the_api_and_from_billing_each_publish_one_event(
    api, workspace, ddb, bus, counter_stream
):
    ws, key = workspace
    item = {"amount": 250, "description": "setup fee"}
    assert api("POST", "/account/invoice-items", key=key, body=item).status == 201
    billed = {"billing": {"threshold": 2, "amount": 40, "description": "2 calls"}}
    api("PUT", "/account/counters/calls/settings", key=key, body=billed)
    for _ in range(5):
        api("GET", f"/v2/{ws}/calls/up", key=key)
    counter_stream()
    assert billing.run().items_created == 1

    publish(stream(ddb, "InvoiceItemsTable"))

    details = bus.details()
    for detail in details:
        check_schema(detail)
    made = [(d["type"], d["data"]["invoice_item"]["source"]) for d in details]
    assert made == [
        ("tally.invoice_item.created", "api"),
        ("tally.invoice_item.created", "billing"),
    ]
    assert details[1]["data"]["invoice_item"]["amount"] == 80  # 2 thresholds x 40 cents
    # when the item was made, as its own timestamp says (the same on every redelivery)
    assert [d["timestamp"] for d in details] == [
        d["data"]["invoice_item"]["timestamp"] for d in details
    ]


def test_every_documented_type_has_a_schema_and_every_schema_a_type():
    assert {p.name.removesuffix(".json") for p in SCHEMAS.glob("*.json")} == set(events.TYPES)
    for path in SCHEMAS.glob("*.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))
