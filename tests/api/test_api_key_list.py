"""GET /account/api-keys: an admin key lists its workspace's keys, newest first, a page at a time:
ids, scopes and times, never a secret or its hash; a cursor never reaches another workspace."""

from __future__ import annotations

import pytest

from tally import keys
from tests.api.test_api_backstack import BAD_PAGING
from tests.conftest import ADMIN_TOKEN, DynamoDBFaults, record_calls

KEYS = "/account/api-keys"


def _make(api, admin: str, *scopes: str) -> dict:
    made = api("POST", KEYS, key=admin, body={"scopes": list(scopes)})
    assert made.status == 201, made.body
    return made.body


def _every_page(api, key: str, limit: int) -> tuple[list[dict], set[int]]:
    """Every key listed, following next_cursor, and the totals each page gave."""
    listed, totals, cursor = [], set(), None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = api("GET", KEYS + query, key=key)
        assert page.status == 200, page.body
        assert len(page.body["list"]) <= limit
        listed += page.body["list"]
        totals.add(page.body["total"])
        cursor = page.body["next_cursor"]
        if not cursor:
            return listed, totals


def test_an_admin_key_lists_every_key_of_its_workspace_newest_first_and_no_secret(
    api, ddb, workspace
):
    _, admin = workspace
    made = [
        _make(api, admin, "read"),
        _make(api, admin, "read", "write"),
        _make(api, admin, "admin"),
    ]
    api("DELETE", f"{KEYS}/{made[0]['key_id']}", key=admin)

    answer = api("GET", KEYS, key=admin)

    assert answer.status == 200
    listed = answer.body["list"]
    assert answer.body["total"] == 4 and answer.body["next_cursor"] is None
    assert {k["key_id"] for k in listed} == {m["key_id"] for m in made} | {admin.split("_")[1]}
    times = [k["created_at"] for k in listed]
    assert times == sorted(times, reverse=True)
    by_id = {k["key_id"]: k for k in listed}
    assert by_id[made[1]["key_id"]]["scopes"] == ["read", "write"]
    revoked = by_id[made[0]["key_id"]]
    assert revoked["revoked"] is True and revoked["revoked_at"] >= revoked["created_at"]
    assert by_id[made[2]["key_id"]] == {
        "key_id": made[2]["key_id"],
        "scopes": ["admin"],
        "created_at": made[2]["created_at"],
        "revoked": False,
        "revoked_at": None,
    }
    text = str(answer.body)
    for secret in [admin, *(m["api_key"] for m in made)]:
        # tly_<key id>_<secret>: the secret may hold "_" itself (base64url)
        assert secret.split("_", 2)[2] not in text and keys.hash_secret(secret) not in text


def test_pages_follow_the_cursor_through_every_key_once_and_only_this_workspaces(
    api, workspace, demo
):
    _, admin = workspace
    made = {_make(api, admin, "read")["key_id"] for _ in range(6)}
    _make(api, demo, "read")  # another workspace's key, never listed here

    listed, totals = _every_page(api, admin, limit=2)

    ids = [k["key_id"] for k in listed]
    assert len(ids) == len(set(ids)) == 7 and totals == {7}
    assert set(ids) == made | {admin.split("_")[1]}


def test_another_workspaces_cursor_reads_nothing_of_that_workspace(api, workspace, demo):
    _, admin = workspace
    for _ in range(3):
        _make(api, demo, "read")
    theirs = api("GET", f"{KEYS}?limit=1", key=demo).body
    assert theirs["next_cursor"]
    mine = {k["key_id"] for k in _every_page(api, admin, limit=1)[0]}

    answer = api("GET", f"{KEYS}?cursor={theirs['next_cursor']}", key=admin)

    assert answer.status == 200
    assert {k["key_id"] for k in answer.body["list"]} <= mine


@pytest.mark.parametrize("scopes, status", [(["read"], 403), (["read", "write"], 403)])
def test_only_an_admin_key_lists_keys(api, workspace, scopes, status):
    _, admin = workspace
    key = _make(api, admin, *scopes)["api_key"]

    assert api("GET", KEYS, key=key).status == status
    assert api("GET", KEYS).status == 401
    assert api("GET", KEYS, key=ADMIN_TOKEN).status == 401  # the operator has no workspace


@pytest.mark.parametrize(
    "query",
    [
        *BAD_PAGING,
        "?cursor=eyJrIjoiIiwiYyI6IiJ9",  # {"k":"","c":""}: DynamoDB would refuse empty keys
        "?cursor=eyJrIjoiQUJDIiwiYyI6IjIwMjYifQ",  # {"k":"ABC","c":"2026"}: no key id
        "?cursor=eyJpIjoiaXZpX3giLCJjIjoieCJ9",  # an invoice items cursor
    ],
)
def test_bad_paging_is_400_naming_the_field_and_writes_nothing(api, workspace, query):
    _, admin = workspace
    calls = record_calls(tables=True)

    answer = api("GET", KEYS + query, key=admin)

    assert answer.status == 400
    assert set(answer.body["error"]["fields"]) <= {"limit", "cursor"}
    assert answer.body["error"]["fields"]
    assert {table for op, table in calls if op != "GetItem"} == {"RateLimitsTable"}


def test_a_dynamodb_failure_is_503_in_the_backstack_shape(api, workspace, monkeypatch):
    _, admin = workspace
    api("GET", KEYS, key=admin)  # the key and its bucket known: only the Query fails below
    DynamoDBFaults(
        monkeypatch,
        lambda op: "refuse:ProvisionedThroughputExceededException:400" if op == "Query" else None,
    )

    answer = api("GET", KEYS, key=admin)

    assert answer.status == 503
    assert answer.body["error"]["type"] == "system" and "Retry-After" in answer.headers


def test_cost_a_page_of_keys_is_its_bucket_and_two_queries_of_the_index(api, workspace):
    _, admin = workspace
    api("GET", KEYS, key=admin)
    calls = record_calls(tables=True)

    api("GET", KEYS, key=admin)

    assert calls == [
        ("UpdateItem", "RateLimitsTable"),
        ("Query", "ApiKeysTable"),
        ("Query", "ApiKeysTable"),
    ]
