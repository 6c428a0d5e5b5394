"""DynamoDB calls per warm request, for every route, counted at the wire (each HTTP request
botocore sends, retries included). A benchmark, not a test.

    .venv/bin/python bench/dynamodb_calls.py
"""

from __future__ import annotations

import argparse

from common import ADMIN, in_process_api


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
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
        call("PUT", "/account/counters/shown/settings", key, {"visibility": "public"})
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

        def revoked_key_path() -> str:  # each revocation needs a key of its own
            return f"/account/api-keys/{revocable.pop()}"

        tags: dict[str, str] = {}

        def unchanged(path: str, bearer: str | None) -> dict:
            """If-None-Match with the tag of the answer as it is (read once, while warming)."""
            if path not in tags:
                call("GET", path, bearer)
                tags[path] = call.headers["ETag"]
            return {"If-None-Match": tags[path]}

        def new_workspace() -> dict:
            return {"workspace": f"w{next(counter)}"}

        # (route, method, path, body, bearer); a callable path or body is made anew each call.
        routes = [
            ("GET /v2/{workspace}/{name}/up", "GET", "/v2/acme/c/up", None, key),
            ("GET /v2/{workspace}/{name}", "GET", "/v2/acme/c", None, key),
            ("GET /v2/{workspace}/{name}/down", "GET", "/v2/acme/c/down", None, key),
            ("GET /v2/{workspace}/{name}/reset", "GET", "/v2/acme/c/reset", None, key),
            ("GET /v2/{workspace}/{name}/set", "GET", "/v2/acme/c/set?value=5", None, key),
            ("GET /v2/{workspace}/{name}/stats", "GET", "/v2/acme/c/stats", None, key),
            ("POST /account/counters/{name}/{value}", "POST", "/account/counters/c/1", None, key),
            (
                "POST /account/counters/{name}/{value} (billed)",
                "POST",
                "/account/counters/billed/1",
                None,
                key,
            ),
            ("DELETE /account/counters/{name}", "DELETE", "/account/counters/c", None, key),
            ("GET /account/counters", "GET", "/account/counters", None, key),
            ("GET /app/session", "GET", "/app/session", None, key),
            (
                "GET /account/counters/{name}/settings",
                "GET",
                "/account/counters/c/settings",
                None,
                key,
            ),
            (
                "PUT /account/counters/{name}/settings",
                "PUT",
                "/account/counters/c/settings",
                {"description": "d"},
                key,
            ),
            (
                "POST /account/invoice-items",
                "POST",
                "/account/invoice-items",
                {"amount": 1, "description": "x"},
                key,
            ),
            ("GET /account/invoice-items", "GET", "/account/invoice-items", None, key),
            ("POST /account/api-keys", "POST", "/account/api-keys", {"scopes": ["read"]}, key),
            ("DELETE /account/api-keys/{key_id}", "DELETE", revoked_key_path, None, key),
            ("POST /admin/workspaces", "POST", "/admin/workspaces", new_workspace, ADMIN),
            (
                "PUT /admin/workspaces/{workspace}/rate-limit",
                "PUT",
                "/admin/workspaces/acme/rate-limit",
                {"quota": 100000, "window": 60},
                ADMIN,
            ),
            ("$default (404/405)", "GET", "/nowhere", None, key),
            ("GET /v2/{workspace}/{name}/badge.svg", "GET", "/v2/acme/shown/badge.svg", None, None),
            (
                "GET /v2/{workspace}/{name}/up/badge.svg",
                "GET",
                "/v2/acme/shown/up/badge.svg",
                None,
                None,
            ),
            (
                "GET /v2/{workspace}/{name}/shield.json",
                "GET",
                "/v2/acme/shown/shield.json",
                None,
                None,
            ),
            ("GET /account/settings", "GET", "/account/settings", None, key),
            (
                "PUT /account/settings",
                "PUT",
                "/account/settings",
                {"default_visibility": "private"},
                key,
            ),
            (
                "GET /v2/{workspace}/{name} + If-None-Match",
                "GET",
                "/v2/acme/c",
                None,
                key,
                unchanged,
            ),
            (
                "GET /v2/{workspace}/{name}/badge.svg + If-None-Match",
                "GET",
                "/v2/acme/shown/badge.svg",
                None,
                None,
                unchanged,
            ),
        ]
        print("| route | calls per warm request | what they are |")
        print("| --- | ---: | --- |")

        def send(method, path, body, bearer, headers=None):
            made = path() if callable(path) else path
            sent = headers(made, bearer) if callable(headers) else headers
            return call(method, made, bearer, body() if callable(body) else body, sent)

        for name, *request in routes:
            send(*request), send(*request)  # warm: keys, policy, today's buckets, rate-limit hint
            sent.clear()
            status, _ = send(*request)
            print(f"| `{name}` → {status} | {len(sent)} | {', '.join(sent)} |")


if __name__ == "__main__":
    main()
