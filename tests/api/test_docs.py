"""`tally serve` describes its API: the OpenAPI document at /openapi.json and Swagger UI at /docs,
every asset served locally (nothing here reaches the internet)."""

from __future__ import annotations

import json
import re

import pytest
from werkzeug.test import Client

from tally_local.docs import document
from tests.conftest import TEMPLATE


@pytest.fixture
def client(api) -> Client:
    return api.client


def test_openapi_json_is_the_document_with_this_serve_as_its_first_server(client):
    response = client.get("/openapi.json")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    served = json.loads(response.get_data())
    assert served["servers"][0] == {"url": "http://localhost", "description": "this tally serve"}
    assert {**served, "servers": document()["servers"]} == document()
    assert served["servers"][1:] == [s for s in document()["servers"] if "amazonaws" in s["url"]]


def test_try_it_out_calls_the_serve_that_gave_the_document_whatever_its_port(client):
    served = client.get("/openapi.json", base_url="http://127.0.0.1:3123")

    servers = [server["url"] for server in json.loads(served.get_data())["servers"]]
    assert servers[0] == "http://127.0.0.1:3123"
    assert not [url for url in servers[1:] if not url.startswith("https://")]  # no other serve


def test_the_docs_page_loads_swagger_ui_from_local_assets_only(client):
    page = client.get("/docs")

    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'url: "/openapi.json"' in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"} <= set(assets)
    for asset in assets:
        assert asset.startswith("/docs/"), f"{asset} is not served by tally serve"
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.get_data()) > 0, asset
    assert "http://" not in html and "https://" not in html


def test_the_docs_are_not_routes_of_the_template():
    paths = {route.path for route in TEMPLATE.routes()}
    assert not {"/openapi.json", "/docs"} & paths


@pytest.mark.parametrize("path", ["/docs/../openapi.yaml", "/docs/nothing.js", "/docs/%2e%2e/x"])
def test_only_the_bundles_own_files_are_served_under_docs(client, path):
    response = client.get(path)

    assert response.status_code == 404  # the $default route's answer
    assert json.loads(response.get_data())["error"]["code"] == 404


def test_other_methods_on_the_docs_paths_are_the_apis_404(client):
    response = client.post("/openapi.json")

    assert response.status_code == 404
