"""Rate limits: a token bucket per caller and path, exact, with headers on every answer."""

from __future__ import annotations

import logging

import pytest

from tally import rate_limit, warm_cache
from tally.rate_limit import Policy
from tests.conftest import ADMIN_TOKEN, rate_limit_table_down, record_calls


def _drain(bucket: str, policy: Policy = rate_limit.DEFAULT) -> int:
    """Take until refused; the number admitted."""
    admitted = 0
    while rate_limit.take(bucket, policy).allowed:
        admitted += 1
    return admitted


# ------------------------------------------------------------------ the bucket


def test_a_fresh_bucket_admits_a_burst_of_its_capacity_then_refuses(ddb, time_):
    first = rate_limit.take("b")
    admitted = 1 + _drain("b")

    assert admitted == 600
    assert (first.remaining, first.full_in_s) == (599, 1)
    refused = rate_limit.take("b")
    assert (refused.allowed, refused.remaining, refused.retry_after_s) == (False, 0, 1)
    assert refused.full_in_s == 60


def test_half_the_window_refills_half_the_bucket_and_a_whole_window_all_of_it(ddb, time_):
    _drain("b")
    time_.move(seconds=30)
    assert _drain("b") == 300
    time_.move(seconds=60)
    assert _drain("b") == 600
    time_.move(seconds=600)  # a long idle bucket is full, never fuller
    assert _drain("b") == 600


def test_refill_is_fractional_tokens_accrue_between_requests(ddb, time_):
    _drain("b")
    time_.move(milliseconds=150)  # 1.5 tokens at 10/s
    assert _drain("b") == 1
    time_.move(milliseconds=50)  # the half token left plus half of one more
    assert _drain("b") == 1
    time_.move(milliseconds=99)
    assert _drain("b") == 0


def test_retry_after_is_computed_from_the_bucket_in_whole_seconds(ddb, time_):
    slow = Policy(quota=2, window=60)  # one token every 30 s
    _drain("b", slow)

    assert rate_limit.take("b", slow).retry_after_s == 30
    time_.move(seconds=12.5)
    assert rate_limit.take("b", slow).retry_after_s == 18  # 17.5 s, rounded up
    time_.move(seconds=17.5)
    assert rate_limit.take("b", slow).allowed


def test_a_refused_take_changes_nothing(ddb, time_):
    slow = Policy(quota=1, window=10)
    rate_limit.take("b", slow)
    for _ in range(5):
        assert not rate_limit.take("b", slow).allowed
    time_.move(seconds=10)
    assert rate_limit.take("b", slow).allowed  # the refusals did not push the refill back


def test_a_bucket_written_by_a_clock_2s_ahead_neither_locks_out_nor_adds_tokens(ddb, time_):
    time_.move(seconds=2)  # container A's clock runs 2 s fast
    assert rate_limit.take("b").allowed
    time_.move(seconds=-2)  # container B, correct clock, same instant
    warm_cache.reset_all()  # a cold container

    admitted_by_b = _drain("b")

    assert 600 - 1 - 20 <= admitted_by_b <= 600 - 1  # at most the skew's refill is withheld
    time_.move(seconds=60 + 2)  # after a window (and the skew) the bucket is whole again
    assert _drain("b") == 600


def test_a_clock_2s_behind_never_gets_tokens_the_bucket_does_not_have(ddb, time_):
    _drain("b")  # drained by a correct clock
    time_.move(seconds=-2)  # a container 2 s slow sees the bucket even emptier
    warm_cache.reset_all()  # a cold container
    assert _drain("b") == 0
    time_.move(seconds=2 + 1)  # one second of refill on the correct clock
    assert _drain("b") == 10


def test_a_take_is_one_dynamodb_call_when_the_container_knows_the_bucket(ddb, time_):
    calls = record_calls()
    rate_limit.take("b")  # new bucket: the hint says "full"
    rate_limit.take("b")  # busy bucket: the hint says "not full"
    time_.move(seconds=120)
    rate_limit.take("b")  # idle again: the hint (tat in the past) says "full"
    assert calls == ["UpdateItem"] * 3

    warm_cache.reset_all()  # a cold container (a new client too) meeting a busy bucket
    calls = record_calls()
    rate_limit.take("b")  # guesses wrong once
    rate_limit.take("b")
    assert calls == ["UpdateItem"] * 3


# ------------------------------------------------------------------ through the API


def _limit(api, workspace: str, quota: int, window: int = 60):
    return api(
        "PUT",
        f"/admin/workspaces/{workspace}/rate-limit",
        key=ADMIN_TOKEN,
        body={"quota": quota, "window": window},
    )


def test_every_answer_carries_the_rate_limit_headers(api, workspace):
    _, key = workspace
    answers = [
        api("GET", "/v2/acme/c/up", key=key),
        api("GET", "/v2/acme/c/nowhere", key=key),
        api("POST", "/account/counters/c/x", key=key),
        api("GET", "/app/session"),  # no key: this address's bucket for paths with no workspace
    ]
    for answer, remaining in zip(answers, (599, 599, 599, 599), strict=True):
        assert answer.headers["RateLimit-Policy"] == '"default";q=600;w=60'
        assert answer.headers["RateLimit"] == f'"default";r={remaining};t=1'
        assert answer.headers["X-RateLimit-Limit"] == "600"
        assert answer.headers["X-RateLimit-Remaining"] == str(remaining)


def test_over_the_limit_is_429_in_the_dialect_and_never_reaches_the_counter(api, workspace, time_):
    _, key = workspace
    assert _limit(api, "acme", 3).status == 200
    ups = [api("GET", "/v2/acme/c/up", key=key) for _ in range(5)]

    assert [a.status for a in ups] == [200, 200, 200, 429, 429]
    refused = ups[3]
    assert refused.body["code"] == "429" and "rate limit" in refused.body["message"]
    assert refused.headers["Retry-After"] == "20"
    assert refused.headers["RateLimit-Policy"] == '"workspace";q=3;w=60'
    assert refused.headers["RateLimit"] == '"workspace";r=0;t=60'
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert api("GET", "/v2/acme/c", key=key).body["data"]["value"] == 3

    backstack = [api("POST", "/account/counters/b/1", key=key) for _ in range(4)][-1]
    assert backstack.status == 429 and backstack.body["error"]["code"] == 429
    assert api("GET", "/account/counters", key=key).body["counters"]["b"] == 3


def test_each_path_and_each_caller_has_its_own_bucket(api, workspace, demo, time_):
    _, key = workspace
    _limit(api, "acme", 2)
    for _ in range(2):
        api("GET", "/v2/acme/a/up", key=key)

    assert api("GET", "/v2/acme/a/up", key=key).status == 429
    assert api("GET", "/v2/acme/b/up", key=key).status == 200  # another path
    assert api("GET", "/v2/acme/a/down", key=key).status == 200  # another path again
    api("PUT", "/account/counters/a/settings", key=key, body={"visibility": "public"})
    assert api("GET", "/v2/acme/a/up").status == 200  # anonymous: bucketed by source IP
    assert api("GET", "/v2/acme/a/up", key=demo).status == 200  # another caller


def test_keys_of_another_workspace_share_their_address_bucket_and_minting_more_gains_nothing(
    api, workspace, time_
):
    _, key = workspace
    _limit(api, "acme", 3)
    api("PUT", "/account/counters/open/settings", key=key, body={"visibility": "public"})
    beta = api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": "beta"})
    minted = [
        api("POST", "/account/api-keys", key=beta.body["api_key"], body={"scopes": ["write"]})
        for _ in range(5)
    ]
    foreign = [beta.body["api_key"]] + [m.body["api_key"] for m in minted]

    ups = [api("GET", "/v2/acme/open/up", key=k).status for k in foreign for _ in range(2)]

    assert ups.count(200) == 3 and ups.count(429) == 9  # acme's quota, not 6 x 3
    assert api("GET", "/v2/acme/open/up").status == 429  # the address's bucket: one for all
    assert api("GET", "/v2/acme/open", key=key).body["data"]["value"] == 3
    assert api("GET", "/v2/acme/open/up", key=key).status == 200  # acme's own key: its own
    assert api("GET", "/v2/beta/c/up", key=foreign[1]).status == 200  # at home: its own


def test_a_limited_caller_recovers_as_the_bucket_refills(api, workspace, time_):
    _, key = workspace
    _limit(api, "acme", 2, window=10)
    api("GET", "/v2/acme/c/up", key=key)
    api("GET", "/v2/acme/c/up", key=key)
    assert api("GET", "/v2/acme/c/up", key=key).status == 429

    time_.move(seconds=5)

    assert api("GET", "/v2/acme/c/up", key=key).status == 200


def test_setting_a_limit_needs_the_admin_token_and_an_existing_workspace(api, workspace):
    _, key = workspace
    body = {"quota": 10, "window": 60}
    assert api("PUT", "/admin/workspaces/acme/rate-limit", key=key, body=body).status == 401
    assert _limit(api, "nobody", 10).status == 404
    for bad in ({"quota": 0, "window": 60}, {"quota": 10}, {"quota": 1.5, "window": 60}):
        answer = api("PUT", "/admin/workspaces/acme/rate-limit", key=ADMIN_TOKEN, body=bad)
        assert answer.status == 400 and answer.body["error"]["fields"]


def test_when_the_bucket_table_fails_requests_are_served_and_a_log_line_says_so(
    api, workspace, monkeypatch, caplog
):
    _, key = workspace
    rate_limit_table_down(monkeypatch, "ProvisionedThroughputExceededException")
    with caplog.at_level(logging.WARNING):
        answer = api("GET", "/v2/acme/c/up", key=key)

    assert answer.status == 200 and answer.body["data"]["value"] == 1
    assert "RateLimit" not in answer.headers
    assert any("failing open" in record.getMessage() for record in caplog.records)


def test_the_operator_has_its_own_buckets_and_can_always_mend_a_quota(api, workspace):
    """Anonymous traffic from the operator's address, or a workspace's tiny quota, never keeps
    the operator from setting that quota again."""
    assert _limit(api, "acme", 1).status == 200  # one request a minute, for anyone
    for _ in range(3):
        api("GET", "/v2/acme/c")  # anonymous, from the operator's own address: drained
    assert api("GET", "/v2/acme/c").status == 429

    mended = _limit(api, "acme", 600)
    assert mended.status == 200
    assert mended.headers["RateLimit-Policy"] == '"default";q=600;w=60'


def test_requests_no_route_took_share_one_bucket_whatever_their_method(api, workspace):
    _, key = workspace
    assert _limit(api, "acme", 5).status == 200
    statuses = [
        api(method, f"/nowhere/{i}", key=key).status
        for i, method in enumerate(["GET", "POST", "PUT", "DELETE", "PATCH", "GET", "POST"])
    ]
    assert statuses[:5] == [404] * 5 and statuses[5:] == [429, 429]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/acme/c/up"), ("POST", "/account/counters/c/1"), ("GET", "/v2/acme/c")],
)
def test_a_request_identifies_its_caller_once(api, workspace, monkeypatch, method, path):
    """The rate limiter, the route's authorization and the idempotency scope share one answer."""
    from tally import keys

    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)  # the counter exists
    seen = []
    authenticate = keys.authenticate
    monkeypatch.setattr(
        keys, "authenticate", lambda *a, **k: seen.append(a) or authenticate(*a, **k)
    )

    answer = api(method, path, key=key, headers={"Idempotency-Key": "once"})

    assert answer.status == 200 and len(seen) == 1
