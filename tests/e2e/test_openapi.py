"""The OpenAPI document, as a tenant's tooling fetches it through Envoy."""

import json
from pathlib import Path

import httpx

COMMITTED = Path(__file__).resolve().parents[2] / "generated" / "openapi.json"


def test_openapi_document_is_served_without_a_key(api: httpx.Client) -> None:
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert "post" in document["paths"]["/api/v1/notifications/send"]
    assert document == json.loads(COMMITTED.read_text())


def test_other_methods_on_the_document_path_are_not_found(api: httpx.Client) -> None:
    response = api.post("/api/v1/openapi.json", json={})
    assert response.status_code == 404
    assert response.json()["code"] == 5
