"""The CounterAPI V2 dialect and the key endpoints, as a caller sees them over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import ADMIN_TOKEN, DynamoDBFaults, record_calls

# ------------------------------------------------------------------ the README session


def test_readme_session_up_read_and_stats(api, workspace):
    _, key = workspace

    up = api("GET", "/v2/acme/visits/up", key=key)
    read = api("GET", "/v2/acme/visits", key=key)
    stats = api("GET", "/v2/acme/visits/stats", key=key)

    assert up.status == read.status == stats.status == 200
    assert up.body["code"] == "200"
    data = read.body["data"]
    assert {k: data[k] for k in ("id", "name", "workspace_slug", "value")} == {
        "id": "acme/visits",
        "name": "visits",
        "workspace_slug": "acme",
        "value": 1,
    }
    assert set(data) >= {"up_count", "down_count", "description", "created_at", "updated_at"}
    assert stats.body["data"]["stats"]["today"] == {"up": 1, "down": 0}
    assert set(stats.body["data"]["stats"]["temporal"]) == {"hours", "weekdays", "quarters"}


def test_up_down_set_reset_answer_the_new_value(api, workspace):
    _, key = workspace
    assert api("GET", "/v2/acme/c/up", key=key).body["data"]["value"] == 1
    assert api("GET", "/v2/acme/c/down", key=key).body["data"]["value"] == 0
    assert api("GET", "/v2/acme/c/down", key=key).body["data"]["value"] == -1
    assert api("GET", "/v2/acme/c/set?value=41", key=key).body["data"]["value"] == 41
    reset = api("GET", "/v2/acme/c/reset", key=key).body["data"]
    assert (reset["value"], reset["up_count"], reset["down_count"]) == (0, 1, 2)


@pytest.mark.parametrize(
    ("route", "does"), [("up", "adds 1"), ("down", "subtracts 1"), ("reset", "sets 0")]
)
@pytest.mark.parametrize("value", ["5", "", "-3"])
def test_a_value_sent_to_up_down_or_reset_is_refused_naming_set_and_changes_nothing(
    api, workspace, route, does, value
):
    _, key = workspace
    api("GET", "/v2/acme/c/set?value=41", key=key)

    refused = api("GET", f"/v2/acme/c/{route}?value={value}", key=key)

    assert refused.status == 400
    assert refused.body["code"] == "400"
    assert refused.body["message"] == (
        f"{route} {does} and takes no value: to set the counter to N, send "
        "/v2/acme/c/set?value=N (with a write key)"
    )
    assert refused.body["fields"] == {"value": f"not taken by {route}"}
    data = api("GET", "/v2/acme/c", key=key).body["data"]
    assert (data["value"], data["up_count"], data["down_count"]) == (41, 0, 0)
    # Other query parameters (a page's cache-buster) still change nothing in what up does.
    assert api("GET", f"/v2/acme/c/{route}?_=1732440000", key=key).status == 200


def test_a_value_sent_to_the_up_badge_is_a_refusal_badge_and_counts_nothing(api, workspace):
    _, key = workspace
    api("GET", "/v2/acme/c/set?value=41", key=key)

    refused = api("GET", "/v2/acme/c/up/badge.svg?value=5", key=key)

    assert refused.status == 400
    assert refused.headers["Content-Type"].startswith("image/svg+xml")
    assert api("GET", "/v2/acme/c", key=key).body["data"]["value"] == 41


def test_a_value_sent_to_an_anonymous_up_of_a_public_counter_is_refused_too(api, workspace):
    _, key = workspace
    api("PUT", "/account/counters/open/settings", key=key, body={"visibility": "public"})
    assert api("GET", "/v2/acme/open/up").body["data"]["value"] == 1

    assert api("GET", "/v2/acme/open/up?value=100").status == 400
    assert api("GET", "/v2/acme/open").body["data"]["value"] == 1


def test_read_after_change_is_never_stale(api, workspace):
    _, key = workspace
    for expected in range(1, 21):
        api("GET", "/v2/acme/fresh/up", key=key)
        assert api("GET", "/v2/acme/fresh", key=key).body["data"]["value"] == expected


# ------------------------------------------------------------------ workspaces and keys


def test_creating_a_workspace_needs_the_admin_token(api):
    assert api("POST", "/admin/workspaces", body={"workspace": "x"}).status == 401
    wrong = api("POST", "/admin/workspaces", key="guess", body={"workspace": "x"})
    assert wrong.status == 401
    assert wrong.body["error"]["type"] == "user"


def test_an_existing_workspace_is_409_and_its_key_still_works(api, workspace):
    _, key = workspace
    again = api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "acme"})

    assert again.status == 409
    assert again.body["error"]["code"] == 409
    assert api("GET", "/v2/acme/c/up", key=key).status == 200


@pytest.mark.parametrize(
    "body",
    [
        '{"workspace": "Bad Name"}',
        '{"workspace": ""}',
        "{}",
        '{"workspace": 7}',
        "[1]",
        "{nope",
        "",
    ],
)
def test_a_bad_workspace_request_is_400_naming_the_field(api, body):
    answer = api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body=body)

    assert answer.status == 400
    assert answer.body["error"]["fields"]


def test_an_oversized_body_is_400(api):
    answer = api(
        "POST", "/admin/workspaces", key=ADMIN_TOKEN, body='{"workspace": "' + "a" * 20_000 + '"}'
    )
    assert answer.status == 400
    assert answer.body["error"]["fields"] == {"body": "too large"}


def test_secrets_are_stored_only_as_hashes(api, ddb, workspace):
    _, key = workspace
    made = api("POST", "/account/api-keys", key=key, body={"scopes": ["read"]}).body["api_key"]

    stored = str(ddb.scan(TableName="ApiKeysTable")["Items"])
    assert key not in stored and made not in stored
    assert key.split("_", 2)[2] not in stored


def test_a_read_key_reads_but_cannot_change_or_make_keys(api, workspace):
    _, admin = workspace
    api("GET", "/v2/acme/c/up", key=admin)
    read = api("POST", "/account/api-keys", key=admin, body={"scopes": ["read"]})
    assert read.status == 201
    reader = read.body["api_key"]

    assert api("GET", "/v2/acme/c", key=reader).status == 200
    assert api("GET", "/v2/acme/c/up", key=reader).status == 403
    assert api("GET", "/v2/acme/c/reset", key=reader).status == 403
    assert api("POST", "/account/api-keys", key=reader, body={"scopes": ["read"]}).status == 403
    assert api("GET", "/v2/acme/c", key=admin).body["data"]["value"] == 1


def test_a_write_key_changes_counters_but_cannot_make_keys(api, workspace):
    _, admin = workspace
    writer = api("POST", "/account/api-keys", key=admin, body={"scopes": ["write"]}).body["api_key"]

    assert api("GET", "/v2/acme/c/up", key=writer).status == 200
    assert api("GET", "/v2/acme/c/set?value=5", key=writer).status == 200
    assert api("POST", "/account/api-keys", key=writer, body={"scopes": ["read"]}).status == 403


@pytest.mark.parametrize("scopes", [[], ["root"], "admin", [1], None])
def test_bad_scopes_are_400(api, workspace, scopes):
    _, admin = workspace
    answer = api("POST", "/account/api-keys", key=admin, body={"scopes": scopes})
    assert answer.status == 400
    assert "scopes" in answer.body["error"]["fields"]


def test_a_revoked_key_is_refused(api, workspace):
    _, admin = workspace
    made = api("POST", "/account/api-keys", key=admin, body={"scopes": ["write"]}).body
    assert api("GET", "/v2/acme/c/up", key=made["api_key"]).status == 200

    revoked = api("DELETE", f"/account/api-keys/{made['key_id']}", key=admin)

    assert revoked.status == 200 and revoked.body["revoked"] is True
    assert api("GET", "/v2/acme/c/up", key=made["api_key"]).status == 401
    assert api("DELETE", f"/account/api-keys/{made['key_id']}", key=admin).status == 200


def test_a_key_cannot_revoke_itself_so_a_workspace_always_keeps_an_admin_key(api, workspace):
    _, admin = workspace
    own_id = admin.split("_")[1]

    refused = api("DELETE", f"/account/api-keys/{own_id}", key=admin)

    assert refused.status == 409 and refused.body["error"]["fields"] == {
        "key_id": "the caller's own key"
    }
    assert api("GET", "/v2/acme/c/up", key=admin).status == 200
    # Rotation: a new admin key revokes the old one.
    new = api("POST", "/account/api-keys", key=admin, body={"scopes": ["admin"]}).body
    assert api("DELETE", f"/account/api-keys/{own_id}", key=new["api_key"]).status == 200
    assert api("GET", "/v2/acme/c/up", key=admin).status == 401


def test_two_admin_keys_revoking_each_other_cannot_both_win(api, workspace):
    # The second revocation comes from a container whose key cache still trusts the first
    # revoked key: the transaction checks the caller's key itself, so it is refused.
    from tally import keys
    from tally.errors import Unauthorized

    _, admin = workspace
    first_id = admin.split("_")[1]
    second = api("POST", "/account/api-keys", key=admin, body={"scopes": ["admin"]}).body
    keys.revoke_key("acme", first_id, by=second["key_id"])

    with pytest.raises(Unauthorized):
        keys.revoke_key("acme", second["key_id"], by=first_id)

    assert api("GET", "/v2/acme/c/up", key=second["api_key"]).status == 200
    assert api("GET", "/v2/acme/c/up", key=admin).status == 401


def test_repeating_a_revocation_answers_the_first_time(api, workspace, monkeypatch):
    from tally import clock

    _, admin = workspace
    made = api("POST", "/account/api-keys", key=admin, body={"scopes": ["read"]}).body
    first = api("DELETE", f"/account/api-keys/{made['key_id']}", key=admin).body
    later = clock.now() + timedelta(hours=1)
    monkeypatch.setattr(clock, "now", lambda: later)

    again = api("DELETE", f"/account/api-keys/{made['key_id']}", key=admin).body

    assert again == first and first["revoked_at"] < later.isoformat()


def test_a_key_of_another_workspace_cannot_be_revoked(api, workspace, demo):
    _, admin = workspace
    answer = api("DELETE", "/account/api-keys/demo", key=admin)

    assert answer.status == 404
    assert api("GET", "/v2/demo/c/up", key=demo).status == 200


def test_a_forged_secret_with_a_real_key_id_is_refused(api, workspace):
    _, admin = workspace
    key_id = admin.split("_")[1]
    assert api("GET", "/v2/acme/c", key=f"tly_{key_id}_forged").status == 401
    assert api("GET", "/v2/acme/c", key="not-a-key").status == 401


@pytest.mark.parametrize("key_id", ["a" * 3000, "ÄBC", "UPPER", ""])
def test_a_malformed_key_id_is_401_without_a_lookup(api, workspace, key_id):
    calls = record_calls(tables=True)
    answer = api("GET", "/v2/acme/c", key=f"tly_{key_id}_secret")

    assert answer.status == 401
    assert not [call for call in calls if call[1] == "ApiKeysTable"]


def _refuse_changes(monkeypatch, times: int, code: str) -> DynamoDBFaults:
    """DynamoDB refuses the next `times` counter changes with `code`, applying nothing."""
    left = [times]

    def decide(operation: str) -> str | None:
        if operation == "UpdateItem" and left[0] > 0:
            left[0] -= 1
            return f"refuse:{code}:400"
        return None

    return DynamoDBFaults(monkeypatch, decide)


def test_a_change_meeting_a_billing_transaction_is_retried(api, workspace, monkeypatch):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    api("GET", "/v2/acme/c/up", key=key)
    # The next up's rate-limit take is refused once (and retried), then its change twice.
    _refuse_changes(monkeypatch, 3, "TransactionConflictException")

    answer = api("GET", "/v2/acme/c/up", key=key)

    assert (answer.status, answer.body["data"]["value"]) == (200, 3)


def test_a_change_refused_past_the_retries_is_503_and_changes_nothing(api, workspace, monkeypatch):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    faults = _refuse_changes(monkeypatch, 10, "ProvisionedThroughputExceededException")

    answer = api("GET", "/v2/acme/c/up", key=key)
    faults.stop()

    assert (answer.status, answer.headers["Retry-After"]) == (503, "1")
    assert answer.body["code"] == "503"
    assert api("GET", "/v2/acme/c", key=key).body["data"]["value"] == 1
