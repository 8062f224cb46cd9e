"""The integration guide's quickstart, followed to the letter through Envoy:
signup, a raw email and a raw SMS, then tracking them to `delivered`."""

import json
from typing import Any

import httpx

from runner.stack import Stack
from tests.conftest import Tenant
from tests.e2e.waiting import wait_for, wait_for_status

# Section 4 of the guide, verbatim.
GUIDE_EMAIL = """{
  "recipient": {"email": "user@example.com"},
  "notification": {
    "channels": ["email"],
    "subject": "Order Update",
    "body": "Your order shipped",
    "data": {"order_id": "ORD-1001"}
  }
}"""

GUIDE_SMS = """{
  "recipient": {"phone": "+14155550123"},
  "notification": {
    "channels": ["sms"],
    "body": "Your OTP is 549921"
  }
}"""


def send_raw(tenant: Tenant, payload: str) -> httpx.Response:
    """POSTs the guide's bytes exactly as written, as a tenant's curl would."""
    return tenant.api.post(
        "/api/v1/notifications/send",
        content=payload.encode(),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )


def sandbox_messages(sandbox: httpx.Client, channel: str, to: str) -> list[dict[str, Any]]:
    response = sandbox.get("/sandbox/api/messages", params={"channel": channel, "to": to})
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def test_signup_returns_tenant_and_key_once(api: httpx.Client) -> None:
    payload = {"name": "Acme", "email": "quickstart@acme.example", "password": "correct horse 42"}
    first = api.post("/portal/signup", json=payload)
    assert first.status_code == 200
    body = first.json()
    # csrf_token goes with the session cookie the portal uses (test_portal_api.py).
    assert set(body) == {"tenant_id", "api_key", "csrf_token"}
    assert body["api_key"].startswith("clk_")
    again = api.post("/portal/signup", json={**payload, "email": "QuickStart@acme.example"})
    assert again.status_code == 409
    assert again.json()["details"][0]["reason"] == "EMAIL_TAKEN"


def test_guide_email_raw_payload_is_delivered(tenant: Tenant, sandbox: httpx.Client) -> None:
    response = send_raw(tenant, GUIDE_EMAIL)
    assert response.status_code == 200, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert set(accepted) == {"notification_id", "status"}

    final = wait_for_status(tenant, accepted["notification_id"], {"delivered", "failed"})
    assert final["status"] == "delivered"
    assert final["channels"] == ["email"]
    [delivery] = final["deliveries"]
    assert set(delivery) == {
        "channel", "status", "attempts", "reason", "updated_at", "history", "subject", "body"
    }  # fmt: skip
    # What was sent, as the portal's notification page shows it.
    assert (delivery["subject"], delivery["body"]) == ("Order Update", "Your order shipped")
    assert (delivery["channel"], delivery["status"], delivery["attempts"], delivery["reason"]) == (
        "email",
        "delivered",
        1,
        "",
    )
    received = [
        m
        for m in sandbox_messages(sandbox, "email", "user@example.com")
        if m["subject"] == "Order Update"
    ]
    assert received and received[0]["body"].strip() == "Your order shipped"


def test_guide_sms_raw_payload_is_delivered(tenant: Tenant, sandbox: httpx.Client) -> None:
    response = send_raw(tenant, GUIDE_SMS)
    assert response.status_code == 200, response.text
    notification_id = response.json()["notification_id"]

    final = wait_for_status(tenant, notification_id, {"delivered", "failed"})
    assert final["status"] == "delivered"
    [delivery] = final["deliveries"]
    assert (delivery["channel"], delivery["status"], delivery["attempts"]) == (
        "sms",
        "delivered",
        1,
    )
    bodies = [m["body"] for m in sandbox_messages(sandbox, "sms", "+14155550123")]
    assert "Your OTP is 549921" in bodies


def test_status_passes_through_sent_before_delivered(tenant: Tenant, stack: Stack) -> None:
    """The list endpoint filters by status, so each step is observable."""
    response = send_raw(tenant, GUIDE_SMS)
    notification_id = response.json()["notification_id"]
    final = wait_for_status(tenant, notification_id, {"delivered"})
    assert final["created_at"] <= final["updated_at"]
    delivered = tenant.get("/api/v1/notifications", params={"status": "delivered"}).json()
    assert notification_id in [n["notification_id"] for n in delivered["notifications"]]


def test_two_channels_are_tracked_separately(tenant: Tenant) -> None:
    response = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": {"email": "user@example.com", "phone": "+14155550123"},
            "notification": {"channels": ["sms", "email"], "subject": "Hi", "body": "Both"},
        },
    )
    assert response.status_code == 200, response.text
    final = wait_for_status(tenant, response.json()["notification_id"], {"delivered", "failed"})
    assert [d["channel"] for d in final["deliveries"]] == ["sms", "email"]
    assert [d["status"] for d in final["deliveries"]] == ["delivered", "delivered"]


def test_workflow_is_findable_by_tenant_in_temporal(tenant: Tenant, stack: Stack) -> None:
    response = send_raw(tenant, GUIDE_SMS)
    notification_id = response.json()["notification_id"]
    wait_for_status(tenant, notification_id, {"delivered"})
    query = f"TenantId = '{tenant.tenant_id}'"
    url = f"http://127.0.0.1:{stack.ports.temporal_http}/api/v1/namespaces/default/workflows"

    def listed() -> list[str]:
        body = httpx.get(url, params={"query": query}).json()
        return [e["execution"]["workflowId"] for e in body.get("executions", [])]

    ids = wait_for(lambda: listed() or None, timeout=15)
    assert ids == [f"notification-{notification_id}"]
    # The workflow's input names the notification, for engineers reading it in the UI.
    detail = httpx.get(f"{url}/notification-{notification_id}").json()
    assert json.dumps(detail).count(notification_id) >= 1
