"""The CounterAPI V2 dialect and the key endpoints, as a caller sees them over HTTP."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tally import aws
from tests.conftest import ADMIN_TOKEN


def _public(ddb, workspace: str, name: str) -> None:
    # Counter settings (visibility) get their endpoint with the Backstack API; set it directly.
    ddb.update_item(
        TableName="CountersTable",
        Key={"workspace": {"S": workspace}, "counter": {"S": name}},
        UpdateExpression="SET vis = :p",
        ExpressionAttributeValues={":p": {"S": "public"}},
    )


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
    calls = []
    aws.dynamodb().meta.events.register(
        "before-parameter-build.dynamodb.GetItem",
        lambda params, **_: calls.append(params["TableName"]),
    )
    answer = api("GET", "/v2/acme/c", key=f"tly_{key_id}_secret")

    assert answer.status == 401
    assert "ApiKeysTable" not in calls


def test_a_change_meeting_a_billing_transaction_is_retried_then_503(api, workspace, monkeypatch):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    client = aws.dynamodb_unretried()

    def in_a_transaction(**_):
        raise ClientError(
            {"Error": {"Code": "TransactionConflictException", "Message": "busy"}}, "UpdateItem"
        )

    monkeypatch.setattr(client, "update_item", in_a_transaction)
    answer = api("GET", "/v2/acme/c/up", key=key)
    monkeypatch.undo()

    assert (answer.status, answer.headers["Retry-After"]) == (503, "1")
    assert api("GET", "/v2/acme/c", key=key).body["data"]["value"] == 1


# ------------------------------------------------------------------ private and public


def test_a_private_counter_answers_401_without_a_key_and_404_to_another_workspace(
    api, workspace, demo
):
    _, key = workspace
    api("GET", "/v2/acme/secret/up", key=key)

    for path in ("/v2/acme/secret", "/v2/acme/secret/stats", "/v2/acme/secret/up"):
        assert api("GET", path).status == 401
        assert api("GET", path, key=demo).status == 404
    assert api("GET", "/v2/acme/secret", key=key).body["data"]["value"] == 1


def test_a_missing_counter_looks_exactly_like_a_private_one(api, workspace, demo):
    _, key = workspace
    api("GET", "/v2/acme/secret/up", key=key)

    for who in (None, demo):
        hidden = api("GET", "/v2/acme/secret", key=who)
        missing = api("GET", "/v2/acme/never", key=who)
        assert (hidden.status, hidden.body["message"]) == (missing.status, missing.body["message"])
    assert api("GET", "/v2/acme/never", key=key).status == 404
    assert api("GET", "/v2/acme/never/up").status == 401  # and it was not created
    assert api("GET", "/v2/acme/never", key=key).status == 404


def test_anyone_may_read_up_and_down_a_public_counter(api, ddb, workspace, demo):
    _, key = workspace
    api("GET", "/v2/acme/hits/up", key=key)
    _public(ddb, "acme", "hits")

    assert api("GET", "/v2/acme/hits/up").body["data"]["value"] == 2
    assert api("GET", "/v2/acme/hits/up", key=demo).body["data"]["value"] == 3
    assert api("GET", "/v2/acme/hits/down").body["data"]["value"] == 2
    assert api("GET", "/v2/acme/hits").body["data"]["visibility"] == "public"
    assert api("GET", "/v2/acme/hits/stats").status == 200


def test_reset_and_set_of_a_public_counter_still_need_a_write_key(api, ddb, workspace, demo):
    _, key = workspace
    api("GET", "/v2/acme/hits/up", key=key)
    _public(ddb, "acme", "hits")

    assert api("GET", "/v2/acme/hits/reset").status == 401
    assert api("GET", "/v2/acme/hits/set?value=9").status == 401
    assert api("GET", "/v2/acme/hits/reset", key=demo).status == 404
    assert api("GET", "/v2/acme/hits", key=key).body["data"]["value"] == 1


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "value", ["1.5", "1e3", "0x10", "--1", "", "9223372036854775808", "-9223372036854775809", "a"]
)
def test_set_refuses_a_value_that_is_not_a_64_bit_integer(api, workspace, value):
    _, key = workspace
    api("GET", "/v2/acme/c/set?value=3", key=key)

    answer = api("GET", f"/v2/acme/c/set?value={value}", key=key)

    assert answer.status == 400
    assert answer.body["code"] == "400" and "value" in answer.body["fields"]
    assert api("GET", "/v2/acme/c", key=key).body["data"]["value"] == 3


def test_set_without_a_value_is_400(api, workspace):
    _, key = workspace
    assert api("GET", "/v2/acme/c/set", key=key).status == 400


@pytest.mark.parametrize(
    "path", ["/v2/acme/-dash/up", "/v2/acme/" + "x" * 129 + "/up", "/v2/ACME/c/up", "/v2/a%20b/c"]
)
def test_a_bad_name_is_400_naming_the_field(api, workspace, path):
    _, key = workspace
    answer = api("GET", path, key=key)
    assert answer.status == 400
    assert answer.body["fields"]


def test_an_unknown_path_is_404_and_a_wrong_method_405_in_the_callers_dialect(api):
    v2_missing = api("GET", "/v2/acme/c/sideways")
    account_missing = api("GET", "/account/nothing")
    wrong_method = api("POST", "/v2/acme/c/up")
    delete_workspaces = api("GET", "/admin/workspaces")

    assert (v2_missing.status, v2_missing.body["code"]) == (404, "404")
    assert (account_missing.status, account_missing.body["error"]["code"]) == (404, 404)
    assert (wrong_method.status, wrong_method.body["code"]) == (405, "405")
    assert wrong_method.headers["Allow"] == "GET"
    assert delete_workspaces.status == 405 and delete_workspaces.headers["Allow"] == "POST"


# ------------------------------------------------------------------ failures


def test_a_dynamodb_throttle_is_503_with_retry_after_and_changes_nothing(
    api, workspace, monkeypatch
):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    client = aws.dynamodb_unretried()

    def throttled(**_):
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
            "UpdateItem",
        )

    monkeypatch.setattr(client, "update_item", throttled)
    answer = api("GET", "/v2/acme/c/up", key=key)
    monkeypatch.undo()

    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.body == {"code": "503", "message": "temporarily unavailable, retry later"}


def test_an_unexpected_error_is_a_500_in_the_dialect_without_a_stack_trace(
    api, workspace, monkeypatch, caplog
):
    _, key = workspace
    from tally import counters

    def broken(*_, **__):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(counters, "change", broken)
    answer = api("GET", "/v2/acme/c/up", key=key)

    assert answer.status == 500
    assert answer.body["code"] == "500"
    assert "request id" in answer.body["message"]
    assert "secret internals" not in str(answer.body) and "Traceback" not in str(answer.body)
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert logged and logged[0].exc_info is not None  # the stack goes to the log, with the id
