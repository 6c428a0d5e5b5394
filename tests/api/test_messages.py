"""Refusals that tell the caller what to fix: the message alone says what was wrong and what to
send instead, in the dialect's shape, and the refused call changed nothing."""

from __future__ import annotations

import boto3
import pytest

from tests.conftest import ADMIN_TOKEN


def test_set_without_a_value_says_the_value_is_missing(api, workspace):
    _, key = workspace

    answer = api("GET", "/v2/acme/c/set", key=key)

    assert answer.status == 400
    assert answer.body == {
        "code": "400",
        "message": "value is missing: send set?value=N, N a signed decimal integer such as 42",
        "fields": {"value": "missing"},
    }
    assert api("GET", "/v2/acme/c", key=key).status == 404  # nothing was set


def test_set_with_a_value_that_is_no_integer_says_what_an_integer_looks_like(api, workspace):
    _, key = workspace

    answer = api("GET", "/v2/acme/c/set?value=1.5", key=key)

    assert answer.status == 400
    assert answer.body["message"].startswith("value must be a signed decimal integer such as 42")


def test_a_workspace_key_on_an_admin_route_is_told_it_is_not_the_operators_token(api, workspace):
    _, key = workspace

    answer = api("POST", "/admin/workspaces", key=key, body={"workspace": "other"})

    assert answer.status == 401
    assert answer.body["error"]["message"] == (
        "this is an API key of workspace 'acme'; /admin routes take the operator's admin token, "
        "not a workspace key"
    )
    assert (
        api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "other"}).status == 201
    )


@pytest.mark.parametrize(
    ("bearer", "says"),
    [
        (None, "the operator's admin token is required: send it as Authorization: Bearer <token>"),
        ("not-the-token", "this is not the operator's admin token"),
    ],
)
def test_an_admin_route_without_the_token_says_what_to_send(api, ddb, bearer, says):
    answer = api(
        "PUT", "/admin/workspaces/acme/rate-limit", key=bearer, body={"quota": 1, "window": 1}
    )

    assert answer.status == 401
    assert answer.body["error"]["message"] == says


def test_a_route_needing_a_key_says_how_to_send_one(api, workspace):
    answer = api("GET", "/account/counters")

    assert answer.status == 401
    assert answer.body["error"]["message"] == (
        "a valid API key is required: send it as Authorization: Bearer <key>"
    )


def test_a_key_without_the_scope_is_told_which_keys_have_it(api, workspace):
    _, admin_key = workspace
    read_key = api("POST", "/account/api-keys", key=admin_key, body={"scopes": ["read"]})
    read_key = read_key.body["api_key"]

    answer = api("GET", "/v2/acme/c/up", key=read_key)

    assert answer.status == 403
    assert answer.body["message"] == (
        "this API key lacks the 'write' scope: use a key with write or admin"
    )


def test_an_unknown_body_field_is_named_with_the_fields_the_call_takes(api, workspace):
    _, key = workspace

    answer = api("POST", "/account/api-keys", key=key, body={"scopes": ["read"], "scope": "x"})

    assert answer.status == 400
    assert answer.body["error"]["message"] == (
        "the request body is invalid: scope: not a field of this call, which takes scopes"
    )


def test_an_invalid_body_names_its_first_bad_field_in_the_message(api, workspace):
    _, key = workspace

    answer = api("POST", "/account/invoice-items", key=key, body={"amount": "5", "colour": "red"})

    assert answer.status == 400
    error = answer.body["error"]
    first, why = next(iter(error["fields"].items()))
    assert error["message"] == (
        f"the request body is invalid: {first}: {why} (and {len(error['fields']) - 1} more in fields)"
    )
    assert error["fields"]["colour"] == "not a field of this call"
    assert api("GET", "/account/invoice-items", key=key).body["total"] == 0


def test_a_method_a_path_does_not_take_names_the_ones_it_does(api, workspace):
    _, key = workspace

    answer = api("POST", "/v2/acme/c/up", key=key)

    assert answer.status == 405
    assert answer.body["message"] == "POST is not allowed on /v2/acme/c/up: use GET"


@pytest.mark.parametrize(
    ("method", "sent", "bare"),
    [
        ("GET", "/v2/acme/c/", "/v2/acme/c"),  # CounterAPI's own document writes this one
        ("GET", "/v2/acme/c/up/", "/v2/acme/c/up"),
        ("GET", "/v2/acme/c/stats//", "/v2/acme/c/stats"),
        ("POST", "/account/counters/c/5/", "/account/counters/c/5"),
        ("GET", "/account/counters/", "/account/counters"),
        ("POST", "/v2/acme/c/up/", "/v2/acme/c/up"),  # the path takes GET: a 405 says so next
    ],
)
def test_a_trailing_slash_is_told_to_send_the_path_without_it(api, workspace, method, sent, bare):
    _, key = workspace

    answer = api(method, sent, key=key)

    assert answer.status == 404
    message = answer.body["message"] if sent.startswith("/v2/") else answer.body["error"]["message"]
    assert message == f"no route for {method} {sent}: send it without the trailing slash"
    assert api("GET", "/v2/acme/c", key=key).status == 404  # nothing was counted
    assert "no route" not in str(api(method, bare, key=key).body)  # without it: a route


@pytest.mark.parametrize("sent", ["/v2/acme/c/nope/", "/v2/", "/"])
def test_a_trailing_slash_on_a_path_that_is_no_route_either_gets_the_plain_404(api, sent):
    answer = api("GET", sent)

    assert answer.status == 404
    assert "trailing slash" not in str(answer.body)


def test_a_body_that_is_not_json_says_where_it_breaks(api, workspace):
    _, key = workspace
    copied = '{\n  "amount": 2500, // cents\n  "description": "API calls",\n}'

    answer = api("POST", "/account/invoice-items", key=key, body=copied)

    assert answer.status == 400
    assert answer.body["error"]["message"] == (
        "the body is not valid JSON: Expecting property name enclosed in double quotes at line 2,"
        " column 19 (JSON has no comments and no trailing commas)"
    )
    assert api("GET", "/account/invoice-items", key=key).body["total"] == 0


def test_a_body_with_a_number_of_5000_digits_says_so(api, workspace):
    _, key = workspace
    body = '{"amount": ' + "1" * 5000 + ', "description": "x"}'

    answer = api("POST", "/account/invoice-items", key=key, body=body)

    assert answer.status == 400
    assert answer.body["error"]["message"] == (
        "the body is not valid JSON: it holds a number of over 4,300 digits"
    )


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        (
            "/account/invoice-items",
            "POST",
            '{"amount": 5, "description": "x", "amount": 7}',
            "amount",
        ),
        ("/account/counters/c/settings", "PUT", '{"upper": {"value": 1, "value": 9}}', "value"),
        ("/admin/workspaces", "POST", '{"workspace": "a", "workspace": "b"}', "workspace"),
    ],
)
def test_a_body_naming_a_field_twice_is_refused_naming_it(
    api, workspace, path, method, body, field
):
    _, key = workspace
    token = ADMIN_TOKEN if path.startswith("/admin") else key

    answer = api(method, path, key=token, body=body)

    assert answer.status == 400
    assert (
        answer.body["error"]["message"] == f"the body names '{field}' twice: send each field once"
    )
    assert answer.body["error"]["fields"] == {field: "sent twice"}
    assert api("GET", "/account/invoice-items", key=key).body["total"] == 0
    if path.startswith("/admin"):  # json's last-wins would have made workspace b
        made = api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "b"})
        assert made.status == 201


def test_a_workspace_that_exists_says_to_choose_another_name(api, workspace):
    answer = api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "acme"})

    assert answer.status == 409
    assert answer.body["error"]["message"] == (
        "workspace 'acme' already exists: choose another name"
    )


def test_a_cursor_this_api_did_not_give_says_where_cursors_come_from(api, workspace):
    _, key = workspace

    answer = api("GET", "/account/invoice-items?cursor=made-up", key=key)

    assert answer.status == 400
    assert "pass back a page's next_cursor as it is" in answer.body["error"]["message"]


@pytest.mark.moto_only("SSM Parameter Store is moto's; DynamoDB Local has none")
def test_an_admin_token_not_yet_stored_in_ssm_is_a_503_saying_what_to_store(api, monkeypatch):
    """Deployed, the token comes from SSM: a first admin call before it is stored is told what
    the operator must do, and works once it is stored."""
    from aws_lambda_powertools.utilities import parameters

    monkeypatch.delenv("TALLY_ADMIN_TOKEN")
    monkeypatch.setenv("TALLY_ADMIN_TOKEN_PARAMETER", "/tally/admin-token")
    parameters.clear_caches()

    before = api("POST", "/admin/workspaces", key="s3cret", body={"workspace": "acme"})
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/tally/admin-token", Value="s3cret", Type="SecureString"
    )
    after = api("POST", "/admin/workspaces", key="s3cret", body={"workspace": "acme"})
    parameters.clear_caches()

    assert before.status == 503
    assert before.body["error"]["message"] == (
        "the admin token is not set up: the operator must store it as the SSM SecureString "
        "that the stack's AdminTokenParameterName names"
    )
    assert before.headers["Retry-After"] == "60"
    assert after.status == 201, after.body
