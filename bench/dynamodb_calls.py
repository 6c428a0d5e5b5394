"""DynamoDB calls per warm request, for every route, counted at the wire (each HTTP request
botocore sends, retries included). A benchmark, not a test.

    .venv/bin/python bench/dynamodb_calls.py
"""

from __future__ import annotations

from common import ADMIN, in_process_api


def main() -> None:
    with in_process_api() as (call, _):
        from tally import aws

        _, made = call("POST", "/admin/workspaces", ADMIN, {"workspace": "acme"})
        key = made["api_key"]
        call(
            "PUT",
            "/account/counters/billed/settings",
            key,
            {"billing": {"threshold": 10**9, "amount": 1, "description": "x"}},
        )
        sent: list[str] = []
        aws.dynamodb().meta.events.register(
            "before-send.dynamodb.*",
            lambda request, **_: sent.append(
                request.headers["X-Amz-Target"].decode().split(".")[-1]
            ),
        )
        counter = iter(range(10**6))

        revocable = [
            call("POST", "/account/api-keys", key, {"scopes": ["read"]})[1]["key_id"]
            for _ in range(3)
        ]

        def revoke():  # each revocation needs a key of its own
            return call("DELETE", f"/account/api-keys/{revocable.pop()}", key)

        routes = [
            ("GET /v2/{workspace}/{name}/up", lambda: call("GET", "/v2/acme/c/up", key)),
            ("GET /v2/{workspace}/{name}", lambda: call("GET", "/v2/acme/c", key)),
            ("GET /v2/{workspace}/{name}/down", lambda: call("GET", "/v2/acme/c/down", key)),
            ("GET /v2/{workspace}/{name}/reset", lambda: call("GET", "/v2/acme/c/reset", key)),
            ("GET /v2/{workspace}/{name}/set", lambda: call("GET", "/v2/acme/c/set?value=5", key)),
            ("GET /v2/{workspace}/{name}/stats", lambda: call("GET", "/v2/acme/c/stats", key)),
            (
                "POST /account/counters/{name}/{value}",
                lambda: call("POST", "/account/counters/c/1", key),
            ),
            (
                "POST /account/counters/{name}/{value} (billed)",
                lambda: call("POST", "/account/counters/billed/1", key),
            ),
            ("DELETE /account/counters/{name}", lambda: call("DELETE", "/account/counters/c", key)),
            ("GET /account/counters", lambda: call("GET", "/account/counters", key)),
            ("GET /app/session", lambda: call("GET", "/app/session", key)),
            (
                "GET /account/counters/{name}/settings",
                lambda: call("GET", "/account/counters/c/settings", key),
            ),
            (
                "PUT /account/counters/{name}/settings",
                lambda: call("PUT", "/account/counters/c/settings", key, {"description": "d"}),
            ),
            (
                "POST /account/invoice-items",
                lambda: call(
                    "POST", "/account/invoice-items", key, {"amount": 1, "description": "x"}
                ),
            ),
            ("GET /account/invoice-items", lambda: call("GET", "/account/invoice-items", key)),
            (
                "POST /account/api-keys",
                lambda: call("POST", "/account/api-keys", key, {"scopes": ["read"]}),
            ),
            ("DELETE /account/api-keys/{key_id}", revoke),
            (
                "POST /admin/workspaces",
                lambda: call(
                    "POST", "/admin/workspaces", ADMIN, {"workspace": f"w{next(counter)}"}
                ),
            ),
            (
                "PUT /admin/workspaces/{workspace}/rate-limit",
                lambda: call(
                    "PUT",
                    "/admin/workspaces/acme/rate-limit",
                    ADMIN,
                    {"quota": 100000, "window": 60},
                ),
            ),
            ("$default (404/405)", lambda: call("GET", "/nowhere", key)),
        ]
        print("| route | calls per warm request | what they are |")
        print("| --- | ---: | --- |")
        for name, run in routes:
            run(), run()  # warm: keys, policy, today's buckets, rate-limit hint
            sent.clear()
            status, _ = run()
            print(f"| `{name}` → {status} | {len(sent)} | {', '.join(sent)} |")


if __name__ == "__main__":
    main()
