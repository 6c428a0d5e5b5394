"""A transaction whose answer is lost is sent again by tally's retry policy, with the same
ClientRequestToken (botocore makes one per call and keeps it across attempts). DynamoDB answers a
resent token (within 10 minutes) with the first attempt's success instead of running the
transaction again: the second attempt does not meet its own first write. moto ignores the token,
so only DynamoDB Local shows this; on moto the same requests meet their own write (a new
workspace answers 409, a billing run counts its own item as a conflict)."""

from __future__ import annotations

import pytest

from tally import aws, billing, invoices
from tests.conftest import ADMIN_TOKEN, DynamoDBFaults

pytestmark = pytest.mark.dynamodb_local_only(
    "moto ignores ClientRequestToken: a resent transaction runs again and fails its condition"
)


def _lose_the_first_transaction_answer(monkeypatch) -> list[int]:
    """The first TransactWriteItems is applied and its answer lost; the HTTP status of every
    TransactWriteItems answer botocore finally returns is recorded in the list."""
    sent = [0]

    def decide(operation: str) -> str | None:
        if operation != "TransactWriteItems":
            return None
        sent[0] += 1
        return "lost" if sent[0] == 1 else None

    answered: list[int] = []
    aws.dynamodb().meta.events.register(
        "after-call.dynamodb.TransactWriteItems",
        lambda http_response, **_: answered.append(http_response.status_code),
    )
    DynamoDBFaults(monkeypatch, decide)
    return answered


def _items(ddb, table: str) -> list[dict]:
    return ddb.scan(TableName=table, ConsistentRead=True)["Items"]


def test_a_workspace_whose_creation_answer_is_lost_is_created_once_and_answered_201(
    api, ddb, monkeypatch
):
    answered = _lose_the_first_transaction_answer(monkeypatch)

    made = api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "acme"})

    assert made.status == 201, made.body
    assert answered == [200]  # the resent transaction: the first one's success, not a conflict
    assert [i["workspace"]["S"] for i in _items(ddb, "WorkspacesTable")] == ["acme"]
    assert [i["key_id"]["S"] for i in _items(ddb, "ApiKeysTable")] == [made.body["key_id"]]
    assert api("GET", "/v2/acme/c/up", key=made.body["api_key"]).status == 200


def test_a_revocation_whose_answer_is_lost_is_applied_once_and_answered(
    api, ddb, workspace, monkeypatch
):
    _, admin = workspace
    made = api("POST", "/account/api-keys", key=admin, body={"scopes": ["read"]}).body
    answered = _lose_the_first_transaction_answer(monkeypatch)

    revoked = api("DELETE", f"/account/api-keys/{made['key_id']}", key=admin)

    assert revoked.status == 200 and revoked.body["revoked"] is True
    assert answered == [200]
    stored = ddb.get_item(TableName="ApiKeysTable", Key={"key_id": {"S": made["key_id"]}})
    assert stored["Item"]["revoked_at"]["S"] == revoked.body["revoked_at"]
    assert api("GET", "/v2/acme/c", key=made["api_key"]).status == 401


def test_a_billing_transaction_whose_answer_is_lost_bills_once_and_reports_it(
    api, ddb, workspace, monkeypatch, counter_stream
):
    _, key = workspace
    billed = {"billing": {"threshold": 10, "amount": 7, "description": "per 10"}}
    assert api("PUT", "/account/counters/c/settings", key=key, body=billed).status == 200
    assert api("POST", "/account/counters/c/25", key=key).status == 200
    counter_stream()
    answered = _lose_the_first_transaction_answer(monkeypatch)

    report = billing.run()

    assert answered == [200]
    # On moto: items_created 0 and skipped_for_conflict 1, the item made but not reported.
    assert (report.items_created, report.units_billed, report.skipped_for_conflict) == (1, 20, 0)
    assert [i["amount"] for i in invoices.page("acme", limit=10)["list"]] == [14]
    assert api("GET", "/account/counters", key=key).body["counters"]["c"] == 5
