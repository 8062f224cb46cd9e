"""API keys: create, list without secrets, revoke, and what each key can see."""

import time

import httpx

from tests.conftest import Tenant, signup


def test_created_key_works_and_listing_hides_secrets(tenant: Tenant) -> None:
    created = tenant.post("/api/v1/api-keys", {"name": "billing-service"})
    assert created.status_code == 200, created.text
    key = created.json()
    assert set(key) == {"key_id", "api_key"}

    second = Tenant(tenant.api, tenant.tenant_id, key["api_key"])
    assert second.get("/api/v1/channels/capabilities").status_code == 200

    listed = tenant.get("/api/v1/api-keys").json()["api_keys"]
    assert [k["name"] for k in listed] == ["billing-service", "default"]
    for entry in listed:
        # Unset timestamps are omitted, as in Google's JSON mapping of protobuf.
        assert set(entry) == {"key_id", "name", "prefix", "created_at", "last_used_at"}
    text = str(listed)
    assert key["api_key"] not in text and tenant.api_key not in text
    assert listed[0]["prefix"] == key["api_key"][:12]
    # Used just now, so last use is recorded.
    assert listed[0]["last_used_at"] is not None


def test_revoked_key_gets_401_within_five_seconds(tenant: Tenant) -> None:
    key = tenant.post("/api/v1/api-keys", {"name": "short-lived"}).json()
    doomed = Tenant(tenant.api, tenant.tenant_id, key["api_key"])
    assert doomed.get("/api/v1/notifications").status_code == 200

    revoked = tenant.delete(f"/api/v1/api-keys/{key['key_id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"]
    listed = {k["key_id"]: k for k in tenant.get("/api/v1/api-keys").json()["api_keys"]}
    assert "revoked_at" in listed[key["key_id"]]
    started = time.monotonic()
    while doomed.get("/api/v1/notifications").status_code != 401:
        assert time.monotonic() - started < 5, "revoked key still accepted after 5 s"
        time.sleep(0.25)
    response = doomed.get("/api/v1/notifications")
    assert response.json()["details"][0]["reason"] == "INVALID_API_KEY"
    # The tenant's other key is unaffected.
    assert tenant.get("/api/v1/notifications").status_code == 200


def test_revoking_another_tenants_key_is_404(tenant: Tenant, api: httpx.Client) -> None:
    other = signup(api)
    key_id = other.get("/api/v1/api-keys").json()["api_keys"][0]["key_id"]
    assert tenant.delete(f"/api/v1/api-keys/{key_id}").status_code == 404
    assert tenant.delete("/api/v1/api-keys/key_000000000000000000000000").status_code == 404
    assert other.get("/api/v1/notifications").status_code == 200


def test_key_name_is_required(tenant: Tenant) -> None:
    response = tenant.post("/api/v1/api-keys", {"name": ""})
    assert response.status_code == 400
    assert response.json()["details"][1]["field_violations"][0]["field"] == "name"
