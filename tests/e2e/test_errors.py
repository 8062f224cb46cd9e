"""Bad input gets a JSON error naming the field and the fix, and leaves
nothing behind: no notification and no workflow."""

from typing import Any

import httpx
import pytest

from runner.stack import Stack
from tests.conftest import Tenant

SEND = "/api/v1/notifications/send"


def reason(response: httpx.Response) -> str:
    details: list[dict[str, Any]] = response.json()["details"]
    info = [d for d in details if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert len(info) == 1 and info[0]["domain"] == "clarion"
    return str(info[0]["reason"])


def assert_nothing_stored(tenant: Tenant) -> None:
    assert tenant.get("/api/v1/notifications").json()["notifications"] == []


def workflow_count(stack: Stack, tenant: Tenant) -> int:
    url = f"http://127.0.0.1:{stack.ports.temporal_http}/api/v1/namespaces/default/workflows"
    body = httpx.get(url, params={"query": f"TenantId = '{tenant.tenant_id}'"}).json()
    return len(body.get("executions", []))


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "clk_wrong"}, {"X-API-Key": ""}, {"Authorization": "Bearer x"}],
)
def test_missing_or_wrong_key_is_401(api: httpx.Client, headers: dict[str, str]) -> None:
    for method, path in [
        ("POST", SEND),
        ("GET", "/api/v1/notifications"),
        ("GET", "/api/v1/channels/capabilities"),
        ("GET", "/api/v1/api-keys"),
    ]:
        response = api.request(method, path, headers=headers, json={} if method == "POST" else None)
        assert response.status_code == 401, (path, response.text)
        assert reason(response) == "INVALID_API_KEY"
        assert "X-API-Key" in response.json()["message"]


def test_whatsapp_without_template_is_400_naming_template_id(tenant: Tenant, stack: Stack) -> None:
    response = tenant.post(
        SEND,
        {
            "recipient": {"phone": "+14155550123"},
            "notification": {"channels": ["whatsapp"], "data": {"name": "Alex"}},
        },
    )
    assert response.status_code == 400
    assert reason(response) == "TEMPLATE_REQUIRED"
    assert "template_id" in response.json()["message"]
    assert_nothing_stored(tenant)
    assert workflow_count(stack, tenant) == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (
            {"recipient": {}, "notification": {"channels": ["email"], "body": "x"}},
            "recipient.email",
        ),
        (
            {"recipient": {"email": "nope"}, "notification": {"channels": ["email"], "body": "x"}},
            "recipient.email",
        ),
        ({"recipient": {}, "notification": {"channels": ["sms"], "body": "x"}}, "recipient.phone"),
        (
            {
                "recipient": {"phone": "415-555-0123"},
                "notification": {"channels": ["sms"], "body": "x"},
            },
            "recipient.phone",
        ),
    ],
)
def test_recipient_field_missing_names_field(
    tenant: Tenant, payload: dict[str, Any], field: str
) -> None:
    response = tenant.post(SEND, payload)
    assert response.status_code == 400
    assert reason(response) == "RECIPIENT_FIELD_MISSING"
    assert field in response.json()["message"]
    violations = response.json()["details"][1]["field_violations"]
    assert violations[0]["field"] == field
    assert_nothing_stored(tenant)


@pytest.mark.parametrize(
    ("notification", "expected_reason"),
    [
        ({"channels": ["fax"], "body": "x"}, "INVALID_CHANNEL"),
        ({"channels": [], "body": "x"}, "INVALID_CHANNEL"),
        ({"body": "x"}, "INVALID_CHANNEL"),
        ({"channels": ["sms"], "body": "x" * 1601}, "BODY_TOO_LONG"),
        ({"channels": ["sms"]}, "BODY_REQUIRED"),
        ({"channels": ["sms"], "template_id": "missing", "data": {}}, "TEMPLATE_NOT_FOUND"),
    ],
)
def test_invalid_notification_is_400(
    tenant: Tenant, notification: dict[str, Any], expected_reason: str
) -> None:
    response = tenant.post(
        SEND, {"recipient": {"phone": "+14155550123"}, "notification": notification}
    )
    assert response.status_code == 400, response.text
    assert reason(response) == expected_reason
    assert_nothing_stored(tenant)


def test_malformed_json_gets_json_error(tenant: Tenant) -> None:
    response = tenant.api.post(
        SEND,
        content=b'{"recipient": ',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == 3 and body["message"] and body["details"] == []


def test_wrong_json_type_gets_json_error(tenant: Tenant) -> None:
    response = tenant.post(SEND, {"recipient": "user@example.com", "notification": {}})
    assert response.status_code == 400
    assert response.json()["code"] == 3


@pytest.mark.parametrize("path", ["/api/v1/nope", "/elsewhere", "/api/v2/notifications/send"])
def test_unknown_path_gets_json_404(tenant: Tenant, path: str) -> None:
    response = tenant.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == 5


def test_unknown_query_parameter_is_rejected(tenant: Tenant) -> None:
    response = tenant.get("/api/v1/notifications", params={"colour": "red"})
    assert response.status_code == 400
    assert "colour" in response.json()["message"]


def test_unknown_and_foreign_ids_are_the_same_404(tenant: Tenant, api: httpx.Client) -> None:
    from tests.conftest import signup

    other = signup(api)
    sent = other.post(
        SEND,
        {
            "recipient": {"phone": "+14155550123"},
            "notification": {"channels": ["sms"], "body": "x"},
        },
    )
    foreign_id = sent.json()["notification_id"]
    foreign = tenant.get(f"/api/v1/notifications/{foreign_id}")
    unknown = tenant.get("/api/v1/notifications/ntf_000000000000000000000000")
    odd = tenant.get("/api/v1/notifications/send")
    assert foreign.status_code == unknown.status_code == odd.status_code == 404
    assert foreign.json() == unknown.json() == odd.json()
    assert other.get(f"/api/v1/notifications/{foreign_id}").status_code == 200


def test_grpc_headers_do_not_leak_into_json_responses(tenant: Tenant) -> None:
    ok = tenant.get("/api/v1/channels/capabilities")
    bad = tenant.get("/api/v1/notifications/ntf_000000000000000000000000")
    for response in (ok, bad):
        assert "grpc-status" not in response.headers
        assert "grpc-message" not in response.headers
