"""Counters on the web: workspaces that choose public counters, conditional reads (ETag / 304),
badges and shields.io JSON, and CORS as API Gateway applies it (in tally serve's gateway)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from werkzeug.test import Client

from tally_local.gateway import Gateway
from tally_local.template import Template
from tests.conftest import ADMIN_TOKEN, TEMPLATE, record_calls

SVG = "image/svg+xml"


def _workspace(api, name: str, **extra) -> str:
    made = api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body={"workspace": name, **extra})
    assert made.status == 201, made.body
    return made.body["api_key"]


def _settings(api, key, **change):
    return api("PUT", "/account/settings", key=key, body=change)


def _svg(api, path, **headers):
    response = api.client.open(path, headers=headers)
    return response.status_code, response.headers, response.get_data(as_text=True)


# ------------------------------------------------------------------ default visibility


def test_a_new_workspace_is_private_unless_it_asks(api):
    private = _workspace(api, "quiet")
    public = _workspace(api, "loud", default_visibility="public")

    assert api("GET", "/account/settings", key=private).body["default_visibility"] == "private"
    assert api("GET", "/account/settings", key=public).body == {
        "workspace": "loud",
        "default_visibility": "public",
        "rate_limit": None,
    }
    api("GET", "/v2/quiet/c/up", key=private)
    api("GET", "/v2/loud/c/up", key=public)
    assert api("GET", "/v2/quiet/c").status == 401
    assert api("GET", "/v2/loud/c").body["data"]["visibility"] == "public"
    assert api("GET", "/v2/loud/c/up").body["data"]["value"] == 2  # anyone may count


def test_a_counter_without_its_own_visibility_follows_its_workspace_at_every_request(
    api, workspace
):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    assert api("GET", "/v2/acme/c/up").status == 401

    assert _settings(api, key, default_visibility="public").status == 200
    assert api("GET", "/v2/acme/c/up").body["data"]["value"] == 2
    assert api("GET", "/v2/acme/never-seen/up").body["data"]["value"] == 1  # created by anyone

    assert _settings(api, key, default_visibility="private").body["default_visibility"] == "private"
    assert api("GET", "/v2/acme/c/up").status == 401
    assert api("GET", "/v2/acme/c").status == 401


def test_a_counters_own_visibility_wins_and_null_hands_it_back_to_the_workspace(api, workspace):
    _, key = workspace
    _settings(api, key, default_visibility="public")
    own = api("PUT", "/account/counters/c/settings", key=key, body={"visibility": "private"})
    assert own.body["visibility"] == "private"
    assert api("GET", "/v2/acme/c/up").status == 401

    follows = api("PUT", "/account/counters/c/settings", key=key, body={"visibility": None})
    assert follows.body["visibility"] == "public"
    assert api("GET", "/account/counters/c/settings", key=key).body["visibility"] == "public"
    assert api("GET", "/v2/acme/c/up").status == 200


@pytest.mark.parametrize("keyed", [False, True])
def test_a_billed_counter_never_takes_an_anonymous_change_whatever_its_visibility(
    api, workspace, ddb, keyed
):
    _, key = workspace
    _settings(api, key, default_visibility="public")
    billing = {"threshold": 10, "amount": 500, "description": "calls"}
    api("PUT", "/account/counters/c/settings", key=key, body={"visibility": "public"})
    api("PUT", "/account/counters/c/settings", key=key, body={"billing": billing})
    api("PUT", "/account/counters/d/settings", key=key, body={"billing": billing})
    headers = {"Idempotency-Key": "visit-1"} if keyed else {}
    other = _workspace(api, "other")

    for name in ("c", "d"):  # own visibility public; following the public workspace
        assert api("GET", f"/v2/acme/{name}/up", headers=headers).status == 401
        assert api("GET", f"/v2/acme/{name}/down", headers=headers).status == 401
        assert _svg(api, f"/v2/acme/{name}/up/badge.svg", **headers)[0] == 401
        assert api("GET", f"/v2/acme/{name}/up", key=other, headers=headers).status == 404
        assert api("GET", f"/v2/acme/{name}").status == 200  # reading stays open

    assert api("GET", "/account/counters", key=key).body["counters"] == {"c": 0, "d": 0}
    assert ddb.scan(TableName="IdempotencyTable")["Count"] == 0


def test_workspace_settings_need_an_admin_key_and_valid_values(api, workspace):
    _, key = workspace
    reader = api("POST", "/account/api-keys", key=key, body={"scopes": ["write"]}).body["api_key"]

    assert _settings(api, reader, default_visibility="public").status == 403
    assert api("GET", "/account/settings", key=reader).status == 403
    assert api("GET", "/account/settings").status == 401
    for bad in ({"default_visibility": "everyone"}, {"default_visibility": None}, {}, {"x": 1}):
        answer = api("PUT", "/account/settings", key=key, body=bad)
        assert answer.status == 400, bad
        assert answer.body["error"]["fields"]
    bad_create = {"workspace": "w2", "default_visibility": "open"}
    assert api("POST", "/admin/workspaces", key=ADMIN_TOKEN, body=bad_create).status == 400
    assert api("GET", "/account/settings", key=key).body["default_visibility"] == "private"


# ------------------------------------------------------------------ conditional reads

READS = [
    "/v2/acme/c",
    "/v2/acme/c/stats",
    "/account/counters",
    "/app/session",
    "/account/invoice-items",
    "/account/counters/c/settings",
    "/account/settings",
    "/v2/acme/c/badge.svg",
    "/v2/acme/c/shield.json",
]


@pytest.mark.parametrize("path", READS)
def test_a_read_carries_an_etag_and_answers_304_to_it_with_no_body(api, workspace, path):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    first = api.client.get(path, headers={"Authorization": f"Bearer {key}"})
    tag = first.headers["ETag"]
    assert first.status_code == 200 and tag.startswith('"') and tag.endswith('"')
    assert "no-cache" in first.headers["Cache-Control"]

    for sent in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        again = api.client.get(
            path, headers={"Authorization": f"Bearer {key}", "If-None-Match": sent}
        )
        assert again.status_code == 304, sent
        assert again.get_data() == b""
        assert again.headers["ETag"] == tag
        assert "RateLimit" in again.headers

    stale = api.client.get(path, headers={"Authorization": f"Bearer {key}", "If-None-Match": '"x"'})
    assert stale.status_code == 200 and stale.headers["ETag"] == tag


@pytest.mark.parametrize("path", ["/v2/acme/c", "/account/counters", "/v2/acme/c/badge.svg"])
def test_a_change_changes_the_tag(api, workspace, path):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    auth = f"Bearer {key}"
    tag = _svg(api, path, Authorization=auth)[1]["ETag"]
    api("GET", "/v2/acme/c/up", key=key)

    status, headers, _ = _svg(api, path, Authorization=auth, **{"If-None-Match": tag})
    assert status == 200 and headers["ETag"] != tag


def test_cost_a_304_costs_what_a_200_costs(api, workspace):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)
    tag = api("GET", "/v2/acme/c", key=key).headers["ETag"]
    calls = record_calls()
    api("GET", "/v2/acme/c", key=key)
    full = calls.pop()
    assert api("GET", "/v2/acme/c", key=key, headers={"If-None-Match": tag}).status == 304
    assert calls.pop() == full == ["UpdateItem", "GetItem"]


def test_refusals_and_changes_carry_no_etag(api, workspace):
    _, key = workspace
    assert "ETag" not in api("GET", "/v2/acme/missing", key=key).headers
    assert "ETag" not in api("GET", "/v2/acme/c/up", key=key).headers
    assert "ETag" not in api("GET", "/v2/acme/c").headers  # 401


# ------------------------------------------------------------------ badges and shields


def _public(api, key, name="c"):
    api("PUT", f"/account/counters/{name}/settings", key=key, body={"visibility": "public"})


def test_a_public_counter_is_a_badge_anyone_can_show(api, workspace):
    _, key = workspace
    _public(api, key)
    api("POST", "/account/counters/c/41", key=key)

    status, headers, svg = _svg(api, "/v2/acme/c/badge.svg?label=visits&color=green")
    assert status == 200 and headers["Content-Type"].startswith(SVG)
    assert headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = "".join(root.itertext())
    assert "visits" in text and "41" in text
    assert "#97ca00" in svg  # shields.io's green


def test_the_up_badge_counts_one_hit_and_shows_it(api, workspace):
    _, key = workspace
    _public(api, key)
    shown = []
    for _ in range(3):
        status, headers, svg = _svg(api, "/v2/acme/c/up/badge.svg")
        assert status == 200 and headers["Content-Type"].startswith(SVG)
        assert "ETag" not in headers
        shown.append("".join(ET.fromstring(svg).itertext()))
    assert ["1" in shown[0], "2" in shown[1], "3" in shown[2]] == [True] * 3
    assert api("GET", "/v2/acme/c", key=key).body["data"]["up_count"] == 3


def test_hostile_labels_are_text_in_the_badge(api, workspace):
    _, key = workspace
    _public(api, key)
    status, _, svg = _svg(api, "/v2/acme/c/badge.svg?label=%3Cscript%3Ealert(1)%3C/script%3E")

    assert status == 200
    assert "<script" not in svg and "&lt;script&gt;" in svg
    ET.fromstring(svg)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("color=%23fff", "color"),
        ("color=red;fill:url(x)", "color"),
        ("color=javascript:x", "color"),
        ("label=", "label"),
        ("label=" + "x" * 65, "label"),
        ("label=a%0Ab", "label"),
        ("label=%E2%80%AEevil", "label"),
    ],
)
def test_a_bad_label_or_color_is_a_400_image_and_counts_nothing(api, workspace, query, field):
    _, key = workspace
    _public(api, key)
    for path in ("/v2/acme/c/badge.svg", "/v2/acme/c/up/badge.svg"):
        status, headers, svg = _svg(api, f"{path}?{query}")
        assert status == 400 and headers["Content-Type"].startswith(SVG), path
        ET.fromstring(svg)
    shield = api("GET", f"/v2/acme/c/shield.json?{query}")
    assert shield.status == 400 and field in shield.body["fields"]
    assert api("GET", "/v2/acme/c", key=key).body["data"]["value"] == 0


def test_a_private_counter_refuses_badges_as_it_refuses_reads_as_images(api, workspace):
    _, key = workspace
    api("GET", "/v2/acme/secret/up", key=key)
    other = _workspace(api, "other")

    for path in ("/v2/acme/secret/badge.svg", "/v2/acme/secret/up/badge.svg"):
        status, headers, svg = _svg(api, path)
        assert status == 401 and headers["Content-Type"].startswith(SVG)
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert "private" in "".join(ET.fromstring(svg).itertext())
        status, headers, _ = _svg(api, path, Authorization=f"Bearer {other}")
        assert status == 404 and headers["Content-Type"].startswith(SVG)
    assert api("GET", "/v2/acme/secret/shield.json").status == 401
    assert api("GET", "/v2/acme/secret/shield.json", key=other).status == 404
    assert api("GET", "/v2/acme/secret", key=key).body["data"]["value"] == 1
    status, _, svg = _svg(api, "/v2/acme/secret/badge.svg", Authorization=f"Bearer {key}")
    assert status == 200 and "1" in "".join(ET.fromstring(svg).itertext())


def test_shield_json_follows_the_shields_io_endpoint_schema(api, workspace):
    _, key = workspace
    _public(api, key)
    api("POST", "/account/counters/c/7", key=key)

    answer = api("GET", "/v2/acme/c/shield.json?label=hits&color=ff69b4")
    assert answer.status == 200
    assert answer.body == {"schemaVersion": 1, "label": "hits", "message": "7", "color": "ff69b4"}
    assert api("GET", "/v2/acme/c/shield.json").body["label"] == "c"


def test_the_up_badge_is_rate_limited_like_up(api, workspace):
    _, key = workspace
    _public(api, key)
    api(
        "PUT", "/admin/workspaces/acme/rate-limit", key=ADMIN_TOKEN, body={"quota": 3, "window": 60}
    )
    answers = [_svg(api, "/v2/acme/c/up/badge.svg") for _ in range(4)]

    # The operator's PUT above came from this address too: its bucket for acme had one less.
    statuses = [status for status, _, _ in answers]
    assert statuses[0] == 200 and statuses[-1] == 429 and statuses.count(200) <= 3
    _, headers, svg = answers[-1]
    assert headers["Content-Type"].startswith(SVG) and "Retry-After" in headers
    assert "rate limited" in "".join(ET.fromstring(svg).itertext())
    assert api("GET", "/v2/acme/c", key=key).body["data"]["value"] == statuses.count(200)


# ------------------------------------------------------------------ CORS, as API Gateway does it

ORIGIN = "https://blog.example"


def _gateway(origins: str | None = None) -> Client:
    template = Template()
    if origins is not None:
        template.parameters["CorsAllowOrigins"] = origins
    return Client(Gateway(template, log=io.StringIO()))


def test_the_template_defines_cors_once_on_the_http_api():
    cors = TEMPLATE.cors()
    assert cors.allow_origins == ("*",)
    assert set(cors.allow_headers) >= {"Authorization", "Content-Type", "Idempotency-Key"}
    assert set(cors.expose_headers) >= {
        "RateLimit", "RateLimit-Policy", "X-RateLimit-Limit", "X-RateLimit-Remaining",
        "Retry-After", "Idempotent-Replayed", "ETag",
    }  # fmt: skip
    assert cors.allow_credentials is False and cors.max_age


def test_a_preflight_is_answered_by_the_gateway_without_calling_a_function(ddb, monkeypatch):
    from tally_local import gateway

    called = []
    monkeypatch.setattr(gateway, "invoke", lambda fn, event: called.append(fn))
    answer = _gateway().options(
        "/account/counters/c/5",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key,content-type",
        },
    )

    assert answer.status_code == 204 and not called
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    allowed = answer.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "idempotency-key", "content-type"} <= set(allowed.split(","))
    assert "Access-Control-Allow-Credentials" not in answer.headers


def test_every_answer_to_a_page_carries_the_cors_headers_errors_included(
    api, workspace, monkeypatch
):
    _, key = workspace
    client = _gateway()
    auth = {"Origin": ORIGIN, "Authorization": f"Bearer {key}"}
    answers = {
        "200": client.get("/v2/acme/c/up", headers=auth),
        "401": client.get("/v2/acme/c", headers={"Origin": ORIGIN}),
        "404": client.get("/v2/acme/c/sideways", headers=auth),
        "405": client.post("/v2/acme/c/up", headers=auth),
        "400": client.post("/account/counters/c/x", headers=auth),
    }
    api(
        "PUT", "/admin/workspaces/acme/rate-limit", key=ADMIN_TOKEN, body={"quota": 1, "window": 60}
    )
    client.get("/v2/acme/d/up", headers=auth)
    answers["429"] = client.get("/v2/acme/d/up", headers=auth)
    monkeypatch.setattr("tally.counters.change", lambda *a, **k: 1 / 0)
    answers["500"] = client.get("/v2/acme/e/up", headers=auth)

    for status, answer in answers.items():
        assert str(answer.status_code) == status
        assert answer.headers["Access-Control-Allow-Origin"] == "*", status
        exposed = answer.headers["Access-Control-Expose-Headers"]
        assert "RateLimit" in exposed and "Retry-After" in exposed and "ETag" in exposed


def test_without_an_origin_no_cors_headers_and_a_plain_options_is_routed(ddb):
    client = _gateway()
    answer = client.get("/v2/acme/c")
    assert not [h for h, _ in answer.headers.items() if h.startswith("Access-Control")]
    assert client.options("/v2/acme/c").status_code == 405  # no preflight: the $default route


def test_a_narrowed_origin_list_answers_only_those_origins(ddb):
    client = _gateway("https://a.example,https://b.example")
    preflight = {"Access-Control-Request-Method": "GET"}

    allowed = client.options("/v2/acme/c", headers={"Origin": "https://b.example", **preflight})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert allowed.headers["Vary"] == "Origin"
    refused = client.options("/v2/acme/c", headers={"Origin": "https://evil.example", **preflight})
    assert refused.status_code == 204
    assert "Access-Control-Allow-Origin" not in refused.headers
    plain = client.get("/v2/acme/c", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in plain.headers


def test_cors_headers_a_function_returns_are_replaced_as_api_gateway_does(ddb, monkeypatch):
    from tally_local import gateway

    monkeypatch.setattr(
        gateway,
        "invoke",
        lambda fn, event: {
            "statusCode": 200,
            "headers": {"Access-Control-Allow-Origin": "https://evil.example", "X-Other": "1"},
            "body": "{}",
        },
    )
    answer = _gateway("https://a.example").get(
        "/v2/acme/c", headers={"Origin": "https://a.example"}
    )
    assert answer.headers["Access-Control-Allow-Origin"] == "https://a.example"
    assert answer.headers["X-Other"] == "1"


def test_a_replayed_up_badge_is_an_svg_and_counts_once(api, workspace):
    _, key = workspace
    _public(api, key)
    once = {"Idempotency-Key": "view-1"}
    first = _svg(api, "/v2/acme/c/up/badge.svg", **once)
    again = _svg(api, "/v2/acme/c/up/badge.svg", **once)

    assert first[0] == again[0] == 200
    assert again[1]["Content-Type"].startswith(SVG) and again[1]["Idempotent-Replayed"] == "true"
    assert again[2] == first[2]
    assert api("GET", "/v2/acme/c", key=key).body["data"]["value"] == 1


def test_a_refused_badge_is_not_kept_by_caches_either(api, workspace):
    _, key = workspace
    api("GET", "/v2/acme/secret/up", key=key)
    for path in ("/v2/acme/secret/badge.svg", "/v2/acme/secret/up/badge.svg"):
        status, headers, _ = _svg(api, path)
        assert status == 401
        assert headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    status, _, _ = _svg(api, "/v2/acme/secret/badge.svg?color=%23bad")
    assert status == 400  # the look is checked before the counter is read


def test_a_keyed_anonymous_change_counts_on_a_counter_public_through_its_workspace(api, workspace):
    _, key = workspace
    _settings(api, key, default_visibility="public")
    other = _workspace(api, "other")
    api("GET", "/v2/acme/c/up")  # exists now, with no visibility of its own

    assert api("GET", "/v2/acme/c/up", headers={"Idempotency-Key": "k1"}).status == 200
    assert api("GET", "/v2/acme/c/down", key=other, headers={"Idempotency-Key": "k2"}).status == 200
    assert _svg(api, "/v2/acme/c/up/badge.svg", **{"Idempotency-Key": "k3"})[0] == 200
    assert api("GET", "/v2/acme/c", key=key).body["data"]["value"] == 2


def test_a_counter_set_up_but_never_changed_was_updated_when_it_was_created(api, workspace):
    _, key = workspace
    _public(api, key)
    data = api("GET", "/v2/acme/c").body["data"]
    assert data["updated_at"] == data["created_at"] != "1970-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "path",
    ["/v2/acme/c", "/v2/acme/c/nope/x", "/account/counters", "/v2/acme/c/badge.svg", "/nowhere"],
)
def test_every_answer_says_it_is_what_its_type_says_and_a_badge_runs_nothing(api, workspace, path):
    _, key = workspace
    api("GET", "/v2/acme/c/up", key=key)

    answer = api("GET", path, key=key)

    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    if answer.headers["Content-Type"].startswith("image/svg+xml"):
        assert answer.headers["Content-Security-Policy"] == (
            "default-src 'none'; style-src 'unsafe-inline'"
        )
