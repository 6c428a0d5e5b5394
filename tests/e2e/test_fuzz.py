"""Schemathesis against a real `tally serve`: every operation of openapi.yaml, with generated
requests, valid and invalid, from a fixed seed. No answer may be a server error; every status,
body, content type and header must be as documented, and invalid input must be refused.

`make fuzz` runs the same test with more examples (TALLY_FUZZ_EXAMPLES) before a release;
`pytest -s` prints how many requests each operation got and what it answered."""

from __future__ import annotations

import itertools
import json
import os
import urllib.request
from collections import Counter, defaultdict

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tally_local.demo import DEMO_KEY, DEMO_WORKSPACE
from tally_local.docs import document
from tests.conftest import ROOT
from tests.serve import ADMIN, Server

pytestmark = pytest.mark.e2e
EXAMPLES = int(os.environ.get("TALLY_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("TALLY_FUZZ_SEED", "2026"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
answered: dict[str, Counter[int]] = defaultdict(Counter)  # operation -> status -> requests
_unique = itertools.count()

# Loaded from the file at collection (schemathesis.pytest.from_fixture would load it from the
# server, but needs pytest < 9), so the credentials are the ones known before the server starts:
# the admin token it is given and the key of the demo workspace its embedded DynamoDB seeds.
schema = schemathesis.openapi.from_path(
    ROOT / "openapi.yaml",
    config=SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            # The document describes no links: every operation is fuzzed on its own.
            "phases": {"stateful": {"enabled": False}},
            "auth": {"openapi": {"apiKey": {"bearer": DEMO_KEY}, "adminToken": {"bearer": ADMIN}}},
            # V2 calls aim at the demo workspace, so they reach real counters (it has `visits`).
            "operations": [
                {"include-path-regex": "^/v2/", "parameters": {"workspace": DEMO_WORKSPACE}},
            ],
        }
    ),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory, dynamodb_backend):
    running = Server(tmp_path_factory.mktemp("fuzz"), endpoint=dynamodb_backend.endpoint)
    yield running
    running.stop()
    total = sum(sum(statuses.values()) for statuses in answered.values())
    print(f"\nschemathesis: {len(answered)} operations, {total} requests (seed {SEED})")
    for label, statuses in sorted(answered.items()):
        spread = " ".join(f"{status}x{n}" for status, n in sorted(statuses.items()))
        print(f"  {sum(statuses.values()):5d}  {label:45s} {spread}")


def test_tally_serve_serves_the_document_it_is_fuzzed_with(server):
    """openapi.yaml, its first server the serve's own address (tests/api/test_docs.py)."""
    with urllib.request.urlopen(f"{server.url}/openapi.json", timeout=10) as response:
        served = json.loads(response.read())
    assert served["servers"][0]["url"] == server.url
    assert {**served, "servers": document()["servers"]} == document()


@schema.parametrize()
def test_tally_serve_answers_as_its_document_says(case, server):
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and key:
        # Generated keys repeat ("0", "00", ...): most requests would then be a reuse (422)
        # instead of reaching the handler. Reuse is pinned by tests/api/test_idempotency.py.
        case.headers["Idempotency-Key"] = f"{key}{next(_unique)}"
    response = case.call(base_url=server.url)
    answered[case.operation.label][response.status_code] += 1
    case.validate_response(response, checks=CHECKS)
