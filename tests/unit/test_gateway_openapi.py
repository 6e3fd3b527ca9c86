"""The OpenAPI document and the reference page come from the same declarations
that check requests: every served /api route is in them, with its rules."""

import re

import httpx
import pytest
import schemathesis
from starlette.routing import Route

from gateway.app import ENDPOINTS, create_app
from gateway.openapi import document, reference_page
from gateway_kit import gateway_settings

@pytest.fixture(scope="module")
def app():
    return create_app(gateway_settings(BRIGHTRUN_JWT_SECRET="unused-but-required-by-the-gateway"))


def _served(app) -> set[tuple[str, str]]:
    paths = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            paths |= {(method, route.path) for method in route.methods if method != "HEAD"}
    return paths


def test_every_served_api_route_is_in_the_document_and_nothing_else(app):
    doc = document(ENDPOINTS)
    documented = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert documented == _served(app)
    assert doc["openapi"] == "3.1.0"
    # schemathesis reads it as a valid OpenAPI 3.1 schema.
    assert len(list(schemathesis.openapi.from_dict(doc).get_all_operations())) == len(documented)


def test_a_body_schema_states_the_validators_rules():
    doc = document(ENDPOINTS)
    body = doc["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["dataset_id", "preset_id"] and body["additionalProperties"] is False
    epochs = body["properties"]["hyperparameters"]["properties"]["epochs"]
    assert (epochs["type"], epochs["minimum"], epochs["maximum"]) == ("integer", 1, 20)
    assert "cost_per_gpu_hour" not in body["properties"]["gpu_config"]["properties"]
    listing = doc["paths"]["/api/jobs"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"page", "limit", "cursor", "status"}


def test_the_reference_page_lists_every_operation_and_loads_nothing_from_elsewhere():
    doc = document(ENDPOINTS)
    page = reference_page(doc)
    for path, item in doc["paths"].items():
        for method in item:
            assert f"<code class=m>{method.upper()}</code><code>{path}</code>" in page
    assert not re.search(r"<script|<link|src=|https?://", page)


async def test_both_are_served_without_a_token(app):
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
            spec = await http.get("/openapi.json")
            docs = await http.get("/docs")
    assert spec.status_code == 200 and spec.json()["paths"]["/api/jobs/presets"]
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
