"""A provider that takes the request and never answers: the call times out
with its outcome unknown, and the next attempt reconciles before sending
anything again (workflows/reconcile.py). Counted at the sandbox, which takes
every create as a new message, as the real providers do.

The sandbox's callbacks are delayed past the retry here, so that a receipt
cannot settle the delivery first: only the look-up can."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runner.stack import Ports, Stack
from tests.conftest import TEST_SETTINGS, Tenant, signup
from tests.e2e.waiting import wait_for
from tests.faults.conftest import sandbox_requests

HANG_NUMBER = "+15005550305"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A private platform (its own embedded PostgreSQL) whose provider calls
    time out after 2 s and whose sandbox sends receipts only after 30 s."""
    stack = Stack(
        data_dir=tmp_path_factory.mktemp("no-answer"),
        ports=Ports.free(),
        overrides={
            **TEST_SETTINGS,
            "CLARION_PROVIDER_TIMEOUT_SECONDS": "2",
            "SANDBOX_CALLBACK_DELAY": "30",
        },
        headless=True,
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def api(platform: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.api_url, timeout=30) as client:
        yield client


@pytest.fixture
def tenant(api: httpx.Client) -> Tenant:
    return signup(api)


def _send(tenant: Tenant, recipient: dict[str, str], channel: str, body: str) -> str:
    notification: dict[str, Any] = {"channels": [channel], "body": body}
    if channel == "email":
        notification["subject"] = "no answer"
    response = tenant.post(
        "/api/v1/notifications/send", {"recipient": recipient, "notification": notification}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["notification_id"])


def _settled(tenant: Tenant, notification_id: str) -> dict[str, Any]:
    """The delivery once its attempts are over (handed over, or failed)."""

    def check() -> dict[str, Any] | None:
        body = tenant.get(f"/api/v1/notifications/{notification_id}").json()
        delivery: dict[str, Any] = body["deliveries"][0]
        return delivery if delivery["status"] in ("sent", "delivered", "failed") else None

    result: dict[str, Any] = wait_for(check, timeout=60)
    return result


def _details(delivery: dict[str, Any]) -> list[str]:
    return [e["detail"] for e in delivery["history"] if e["kind"] == "attempt"]


def _creates(platform: Stack, channel: str, body: str) -> list[dict[str, Any]]:
    messages = httpx.get(
        f"{platform.sandbox_url}/sandbox/api/messages",
        params={"channel": channel, "limit": "10000"},
        timeout=30,
    ).json()["messages"]
    return [m for m in messages if body in (m.get("body") or "")]


@pytest.mark.parametrize("channel", ["sms", "voice"])
def test_twilio_create_without_answer_is_found_by_look_up_and_not_sent_again(
    platform: Stack, tenant: Tenant, channel: str
) -> None:
    body = f"no answer {channel} {tenant.tenant_id}"
    delivery = _settled(tenant, _send(tenant, {"phone": HANG_NUMBER}, channel, body))
    assert delivery["status"] == "sent", delivery
    details = _details(delivery)
    assert any("outcome unknown" in d for d in details), details
    assert any("the provider has it" in d and "adopted" in d for d in details), details
    assert len(_creates(platform, channel, body)) == 1
    assert delivery["attempts"] == 1


def test_slack_post_without_answer_is_found_in_the_dm_history(
    platform: Stack, tenant: Tenant
) -> None:
    body = f"no answer slack {tenant.tenant_id}"
    delivery = _settled(tenant, _send(tenant, {"slack_user_id": "UHANG"}, "slack", body))
    assert delivery["status"] == "delivered", delivery
    assert any("the provider has it" in d for d in _details(delivery)), _details(delivery)
    assert len(_creates(platform, "slack", body)) == 1


def test_whatsapp_without_answer_fails_as_outcome_unknown_rather_than_sending_twice(
    platform: Stack, tenant: Tenant
) -> None:
    created = tenant.post(
        "/api/v1/templates",
        {
            "template_id": "no_answer",
            "channels": {"whatsapp": {"body": "Order {{order}} shipped", "language": "en_US"}},
        },
    )
    assert created.status_code == 200, created.text
    wait_for(
        lambda: (
            tenant.get("/api/v1/templates/no_answer").json()["whatsapp_approval"]["status"]
            == "approved"
        ),
        timeout=30,
    )
    response = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": {"phone": HANG_NUMBER},
            "notification": {
                "channels": ["whatsapp"],
                "template_id": "no_answer",
                "data": {"order": tenant.tenant_id},
            },
        },
    )
    assert response.status_code == 200, response.text
    delivery = _settled(tenant, response.json()["notification_id"])
    assert delivery["status"] == "failed", delivery
    assert delivery["reason"].startswith("outcome unknown"), delivery
    # The only WhatsApp message this platform was asked to send.
    creates = [
        r
        for r in sandbox_requests(platform, channel="whatsapp")
        if r["outcome"] == "accepted" and "messages" in str(r["operation"])
    ]
    assert len(creates) == 1, creates


def test_email_without_answer_is_sent_again_with_the_same_message_id(
    platform: Stack, tenant: Tenant
) -> None:
    body = f"no answer email {tenant.tenant_id}"
    address = f"hang+{tenant.tenant_id}@example.com"
    delivery = _settled(tenant, _send(tenant, {"email": address}, "email", body))
    details = _details(delivery)
    assert any("cannot be asked: sending again" in d for d in details), details
    copies = _creates(platform, "email", body)
    # SMTP cannot be asked; both copies carry the delivery's Message-ID.
    assert len(copies) >= 2
    assert len({c["provider_message_id"] for c in copies}) == 1, copies
