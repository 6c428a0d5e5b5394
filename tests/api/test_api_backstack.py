"""The Backstack account dialect: add and reset, session, settings with atomic bounds, invoice
items, and how it shares every counter with the V2 dialect."""

from __future__ import annotations

import pytest

from tests.conftest import record_calls


def _add(api, key, name, value):
    return api("POST", f"/account/counters/{name}/{value}", key=key)


def _settings(api, key, name, body):
    return api("PUT", f"/account/counters/{name}/settings", key=key, body=body)


# ------------------------------------------------------------------ add, reset, session


def test_add_takes_a_signed_integer_and_answers_the_total(api, workspace):
    _, key = workspace
    assert _add(api, key, "foo_downloads", 1).body == {"id": "foo_downloads", "value": 1}
    assert _add(api, key, "foo_downloads", 41).body == {"id": "foo_downloads", "value": 42}
    assert _add(api, key, "foo_downloads", -2).body == {"id": "foo_downloads", "value": 40}
    assert _add(api, key, "foo_downloads", "+3").body["value"] == 43


@pytest.mark.parametrize(
    "value", ["1.5", "1e3", "0x10", "--1", "one", "9223372036854775808", "+-1", " 1"]
)
def test_add_refuses_anything_but_a_64_bit_decimal_and_changes_nothing(api, workspace, value):
    _, key = workspace
    _add(api, key, "c", 5)

    answer = _add(api, key, "c", value)

    assert answer.status == 400
    assert answer.body["error"]["type"] == "user"
    assert "value" in answer.body["error"]["fields"]
    assert api("GET", "/account/counters", key=key).body == {"counters": {"c": 5}}


def test_delete_resets_to_zero(api, workspace):
    _, key = workspace
    _add(api, key, "c", 7)

    answer = api("DELETE", "/account/counters/c", key=key)

    assert (answer.status, answer.body) == (200, {"id": "c", "value": 0})


def test_the_session_aggregates_every_counter_of_the_account(api, workspace, demo):
    _, key = workspace
    _add(api, key, "a", 3)
    _add(api, key, "b", -1)
    _add(api, demo, "elsewhere", 1)

    session = api("GET", "/app/session", key=key)

    assert session.status == 200
    assert session.body == {
        "account": {"id": "acme", "counters": {"a": 3, "b": -1}},
        "key": {"key_id": key.split("_")[1], "scopes": ["admin"]},  # who asked, no secret
    }
    assert api("GET", "/account/counters", key=key).body == {"counters": {"a": 3, "b": -1}}


def test_the_session_names_the_scopes_of_the_key_that_asked(api, workspace):
    _, admin = workspace
    made = api("POST", "/account/api-keys", key=admin, body={"scopes": ["write", "read"]}).body

    session = api("GET", "/app/session", key=made["api_key"]).body

    assert session["key"] == {"key_id": made["key_id"], "scopes": ["read", "write"]}


def test_counter_details_show_totals_today_and_visibility_and_settings_to_an_admin(api, workspace):
    _, admin = workspace
    reader = api("POST", "/account/api-keys", key=admin, body={"scopes": ["read"]}).body["api_key"]
    _add(api, admin, "a", 5)
    _add(api, admin, "a", -2)
    billing = {"threshold": 100, "amount": 250, "description": "calls"}
    setup = {"lower_bound": -5, "upper_bound": 10, "billing": billing, "description": "<b>x</b>"}
    api("PUT", "/account/counters/a/settings", key=admin, body=setup)
    api("PUT", "/account/counters/b/settings", key=admin, body={"visibility": "public"})

    shown = api("GET", "/account/counters?details=true", key=admin).body
    read = api("GET", "/account/counters?details=true", key=reader).body

    assert shown["counters"] == read["counters"] == {"a": 3, "b": 0}
    a = shown["details"]["a"]
    assert (a["value"], a["up_count"], a["down_count"], a["today"]) == (
        3,
        5,
        2,
        {"up": 5, "down": 2},
    )
    assert (a["visibility"], a["description"]) == ("private", "<b>x</b>")
    assert (a["lower_bound"], a["upper_bound"], a["billing"]) == (-5, 10, billing)
    assert shown["details"]["b"]["visibility"] == "public"
    assert shown["details"]["b"]["billing"] is None
    assert read["details"]["a"] == {
        k: v for k, v in a.items() if k not in ("lower_bound", "upper_bound", "billing")
    }


@pytest.mark.parametrize("query", ["?details=1", "?details=yes", "?details="])
def test_details_other_than_true_or_false_is_400(api, workspace, query):
    _, key = workspace
    answer = api("GET", "/account/counters" + query, key=key)
    assert answer.status == 400 and answer.body["error"]["fields"] == {"details": "true or false"}


def test_an_account_with_ten_thousand_counters_lists_them_all(api, ddb, workspace):
    _, key = workspace
    for start in range(0, 10_000, 25):
        ddb.batch_write_item(
            RequestItems={
                "CountersTable": [
                    {
                        "PutRequest": {
                            "Item": {
                                "workspace": {"S": "acme"},
                                "counter": {"S": f"c{i:05d}"},
                                "v": {"N": str(i)},
                                "desc": {"S": "x" * 300},  # big items: several 1 MB pages
                            }
                        }
                    }
                    for i in range(start, start + 25)
                ]
            }
        )

    counters = api("GET", "/account/counters", key=key).body["counters"]
    details = api("GET", "/account/counters?details=true", key=key).body["details"]

    assert len(counters) == 10_000
    assert sum(counters.values()) == sum(range(10_000))
    assert len(details) == 10_000 and details["c09999"]["value"] == 9_999


def test_backstack_needs_a_key_and_the_right_scope(api, workspace):
    _, admin = workspace
    reader = api("POST", "/account/api-keys", key=admin, body={"scopes": ["read"]}).body["api_key"]

    missing = _add(api, None, "c", 1)
    assert missing.status == 401 and missing.body["error"]["code"] == 401
    assert _add(api, reader, "c", 1).status == 403
    assert api("DELETE", "/account/counters/c", key=reader).status == 403
    assert api("GET", "/app/session", key=reader).status == 200
    assert api("GET", "/app/session").status == 401


def test_a_warm_backstack_add_is_one_call_for_the_change_and_one_for_the_rate_limit(api, workspace):
    _, key = workspace
    _add(api, key, "c", 1)  # the key and policy are now cached and today's bucket exists
    calls = record_calls(tables=True)

    _add(api, key, "c", 1)

    assert calls == [("UpdateItem", "RateLimitsTable"), ("UpdateItem", "CountersTable")]


# ------------------------------------------------------------------ settings and bounds


def test_settings_of_a_counter_never_set_up_are_the_defaults(api, workspace):
    _, key = workspace
    answer = api("GET", "/account/counters/new/settings", key=key)

    assert answer.body == {
        "id": "new",
        "visibility": "private",
        "description": "",
        "lower_bound": None,
        "upper_bound": None,
        "billing": None,
        "alerts": [],
        "shards": 1,
    }


def test_settings_are_stored_and_read_back(api, workspace):
    _, key = workspace
    body = {
        "visibility": "public",
        "description": "API calls",
        "lower_bound": -5,
        "upper_bound": 100,
        "billing": {"threshold": 1000, "amount": 500, "description": "API calls over 1000"},
        "alerts": [{"at": 50}, {"at_percent_of_upper_bound": 90}],
    }
    put = _settings(api, key, "api_calls", body)
    got = api("GET", "/account/counters/api_calls/settings", key=key)

    assert put.status == 200
    assert put.body == got.body == {"id": "api_calls", **body, "shards": 1}
    assert api("GET", "/account/counters", key=key).body == {"counters": {"api_calls": 0}}


def test_a_settings_change_keeps_fields_it_does_not_name_and_null_clears(api, workspace):
    _, key = workspace
    _settings(api, key, "c", {"description": "d", "upper_bound": 10})

    after = _settings(api, key, "c", {"upper_bound": None, "visibility": "public"}).body

    assert (after["description"], after["upper_bound"], after["visibility"]) == (
        "d",
        None,
        "public",
    )
    assert _add(api, key, "c", 1000).status == 200


@pytest.mark.parametrize(
    "body",
    [
        {"lower_bound": 5, "upper_bound": 1},
        {"visibility": "secret"},
        {"upper_bound": 1.5},
        {"upper_bound": "10"},
        {"upper_bound": True},
        {"lower_bound": -(2**63) - 1},
        {"billing": {"threshold": 0, "amount": 500, "description": "x"}},
        {"billing": {"threshold": 10, "amount": 0, "description": "x"}},
        {"billing": {"threshold": 10, "amount": 5, "description": ""}},
        {"billing": {"threshold": 10, "amount": 5}},
        {"billing": {"threshold": 10, "amount": 5, "description": "x" * 101}},
        {"description": "x" * 101},
        {"colour": "red"},
    ],
)
def test_bad_settings_are_400_naming_the_field_and_change_nothing(api, workspace, body):
    _, key = workspace
    _settings(api, key, "c", {"description": "before"})

    answer = _settings(api, key, "c", body)

    assert answer.status == 400
    assert answer.body["error"]["fields"]
    assert api("GET", "/account/counters/c/settings", key=key).body["description"] == "before"


def test_a_bound_the_current_value_breaks_is_409_and_changes_nothing(api, workspace):
    _, key = workspace
    _add(api, key, "c", 3)

    above = _settings(api, key, "c", {"lower_bound": 4, "description": "new"})
    below = _settings(api, key, "c", {"upper_bound": 2})
    unset_counter = _settings(api, key, "fresh", {"lower_bound": 1})

    assert (above.status, below.status, unset_counter.status) == (409, 409, 409)
    assert above.body["error"]["fields"] == {"lower_bound": "violated"}
    settings = api("GET", "/account/counters/c/settings", key=key).body
    assert (settings["lower_bound"], settings["upper_bound"], settings["description"]) == (
        None,
        None,
        "",
    )
    assert _settings(api, key, "c", {"lower_bound": 3, "upper_bound": 3}).status == 200


def test_a_change_past_a_bound_is_refused_whole_in_either_dialect(api, workspace):
    _, key = workspace
    _settings(api, key, "seats", {"lower_bound": 0, "upper_bound": 10})
    _add(api, key, "seats", 9)

    too_many = _add(api, key, "seats", 2)
    v2_up = api("GET", "/v2/acme/seats/up", key=key)
    v2_over = api("GET", "/v2/acme/seats/up", key=key)
    too_few = _add(api, key, "seats", -11)
    set_out = api("GET", "/v2/acme/seats/set?value=11", key=key)

    assert too_many.status == 409 and too_many.body["error"]["fields"] == {
        "value": "above upper bound"
    }
    assert "10" in too_many.body["error"]["message"]
    assert v2_up.body["data"]["value"] == 10
    assert (v2_over.status, v2_over.body["code"]) == (409, "409")
    assert too_few.status == 409
    assert set_out.status == 409
    data = api("GET", "/v2/acme/seats", key=key).body["data"]
    assert (data["value"], data["up_count"], data["down_count"]) == (10, 10, 0)


def test_a_new_bound_never_crosses_the_other_stored_bound(api, workspace):
    _, key = workspace
    _settings(api, key, "c", {"lower_bound": -10, "upper_bound": 10})

    assert _settings(api, key, "c", {"upper_bound": -20}).status == 409
    assert _settings(api, key, "c", {"lower_bound": 20}).status == 409
    settings = api("GET", "/account/counters/c/settings", key=key).body
    assert (settings["lower_bound"], settings["upper_bound"]) == (-10, 10)


def test_reset_is_refused_when_zero_is_outside_the_bounds(api, workspace):
    _, key = workspace
    _settings(api, key, "c", {"lower_bound": -10, "upper_bound": 10})
    _add(api, key, "c", 5)
    _settings(api, key, "c", {"lower_bound": 5})

    assert api("DELETE", "/account/counters/c", key=key).status == 409
    assert api("GET", "/account/counters", key=key).body["counters"]["c"] == 5


def test_moving_a_bound_counts_from_the_value_at_that_moment(api, workspace):
    _, key = workspace
    _add(api, key, "c", 50)
    _settings(api, key, "c", {"upper_bound": 60})
    _add(api, key, "c", -20)  # 30: room to 60 is now 30

    assert _add(api, key, "c", 31).status == 409
    assert _add(api, key, "c", 30).body["value"] == 60


def test_settings_need_the_admin_scope(api, workspace):
    _, admin = workspace
    writer = api("POST", "/account/api-keys", key=admin, body={"scopes": ["write"]}).body["api_key"]

    assert _settings(api, writer, "c", {"visibility": "public"}).status == 403
    assert api("GET", "/account/counters/c/settings", key=writer).status == 403


# ------------------------------------------------------------------ public counters


def test_a_public_counter_takes_anonymous_up_and_down_within_its_bounds(api, workspace):
    _, key = workspace
    _settings(api, key, "likes", {"visibility": "public", "lower_bound": 0})

    assert api("GET", "/v2/acme/likes/up").body["data"]["value"] == 1
    assert api("GET", "/v2/acme/likes/down").body["data"]["value"] == 0
    refused = api("GET", "/v2/acme/likes/down")
    assert (refused.status, refused.body["code"]) == (409, "409")
    assert api("GET", "/v2/acme/likes/reset").status == 401
    assert api("GET", "/v2/acme/likes").body["data"]["value"] == 0


def test_making_a_counter_private_again_hides_it(api, workspace):
    _, key = workspace
    _settings(api, key, "c", {"visibility": "public"})
    assert api("GET", "/v2/acme/c/up").status == 200

    _settings(api, key, "c", {"visibility": "private"})

    assert api("GET", "/v2/acme/c/up").status == 401
    assert api("GET", "/v2/acme/c").status == 401


# ------------------------------------------------------------------ one domain, two dialects


def test_a_backstack_add_shows_in_v2_with_the_same_stats(api, workspace):
    _, key = workspace
    _add(api, key, "api_calls", 41)
    _add(api, key, "api_calls", -1)

    data = api("GET", "/v2/acme/api_calls/stats", key=key).body["data"]

    assert (data["value"], data["up_count"], data["down_count"]) == (40, 41, 1)
    assert data["stats"]["today"] == {"up": 41, "down": 1}


def test_a_v2_up_shows_in_the_backstack_session(api, workspace):
    _, key = workspace
    api("GET", "/v2/acme/visits/up", key=key)
    api("GET", "/v2/acme/visits/up", key=key)

    assert api("GET", "/app/session", key=key).body["account"]["counters"] == {"visits": 2}


# ------------------------------------------------------------------ invoice items


def test_an_invoice_item_is_created_with_its_id_and_source(api, workspace):
    _, key = workspace
    answer = api(
        "POST", "/account/invoice-items", key=key, body={"amount": 500, "description": "API calls"}
    )

    assert answer.status == 201
    item = answer.body
    assert item["id"].startswith("ivi_")
    assert {
        k: item[k] for k in ("account_id", "amount", "description", "invoice_id", "source")
    } == {
        "account_id": "acme",
        "amount": 500,
        "description": "API calls",
        "invoice_id": None,
        "source": "api",
    }
    assert item["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 0, "description": "x"},
        {"amount": 1.5, "description": "x"},
        {"amount": "500", "description": "x"},
        {"amount": True, "description": "x"},
        {"amount": 10**12 + 1, "description": "x"},
        {"amount": 5, "description": ""},
        {"amount": 5, "description": "x" * 501},
        {"amount": 5},
        {"description": "x"},
        {"amount": 5, "description": "x", "invoice_id": "inv_1"},
    ],
)
def test_a_bad_invoice_item_is_400_and_creates_nothing(api, workspace, body):
    _, key = workspace
    answer = api("POST", "/account/invoice-items", key=key, body=body)

    assert answer.status == 400
    assert answer.body["error"]["fields"]
    assert api("GET", "/account/invoice-items", key=key).body["total"] == 0


def test_a_400_names_every_bad_field_at_once_nested_ones_by_their_path(api, workspace):
    _, key = workspace
    item = {"amount": 0, "description": "", "invoice_id": "inv_1"}
    answer = api("POST", "/account/invoice-items", key=key, body=item)
    assert set(answer.body["error"]["fields"]) == {"amount", "description", "invoice_id"}

    change = {"billing": {"threshold": 10, "amount": "5"}, "visibility": "secret"}
    answer = _settings(api, key, "c", change)
    fields = answer.body["error"]["fields"]
    assert set(fields) == {"billing.amount", "billing.description", "visibility"}
    assert fields["billing.description"] == "Field required"


def test_a_negative_amount_offsets_and_items_list_newest_first_with_pages(api, workspace, demo):
    _, key = workspace
    made = [
        api(
            "POST", "/account/invoice-items", key=key, body={"amount": a, "description": f"#{i}"}
        ).body["id"]
        for i, a in enumerate([500, 250, -250, 100, 10**12])
    ]
    api("POST", "/account/invoice-items", key=demo, body={"amount": 1, "description": "other"})

    seen, cursor = [], None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api("GET", "/account/invoice-items" + query, key=key).body
        assert page["total"] == 5 and len(page["list"]) <= 2
        seen += [item["id"] for item in page["list"]]
        cursor = page["next_cursor"]
        if not cursor:
            break

    assert seen == list(reversed(made))


BAD_PAGING = ["?limit=0", "?limit=101", "?limit=x", "?cursor=!!", "?cursor=" + "A" * 600]


@pytest.mark.parametrize(
    "query",
    [
        *BAD_PAGING,
        "?cursor=eyJpIjoiIiwiYyI6IiJ9",  # {"i":"","c":""}: DynamoDB would refuse empty keys
        "?cursor=eyJpIjogIml2aV8xIn0",  # no "c"
    ],
)
def test_bad_paging_is_400(api, workspace, query):
    _, key = workspace
    answer = api("GET", "/account/invoice-items" + query, key=key)
    assert answer.status == 400
    assert answer.body["error"]["fields"]


def test_invoice_items_need_write_to_create_and_read_to_list(api, workspace):
    _, admin = workspace
    reader = api("POST", "/account/api-keys", key=admin, body={"scopes": ["read"]}).body["api_key"]

    assert (
        api(
            "POST", "/account/invoice-items", key=reader, body={"amount": 1, "description": "x"}
        ).status
        == 403
    )
    assert api("GET", "/account/invoice-items", key=reader).status == 200
    assert api("GET", "/account/invoice-items").status == 401
