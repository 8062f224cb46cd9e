"""What tenants see when providers refuse, fail, retry or stay silent. Each
case uses one of the sandbox's documented trigger recipients, and `attempts`
must equal the provider calls the sandbox received."""

import secrets
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_SETTINGS, Tenant
from tests.e2e.waiting import wait_for, wait_for_status

MAX_ATTEMPTS = int(TEST_SETTINGS["CLARION_DELIVERY_MAX_ATTEMPTS"])
RECEIPT_TIMEOUT = float(TEST_SETTINGS["CLARION_RECEIPT_TIMEOUT_SECONDS"])


def provider_calls(sandbox: httpx.Client, channel: str, to: str) -> int:
    requests = sandbox.get(
        "/sandbox/api/requests", params={"channel": channel, "to": to, "limit": 10_000}
    ).json()["requests"]
    # SMTP logs a refusal at RCPT and an acceptance at DATA; each is one call.
    # A Slack attempt is conversations.open then chat.postMessage: a successful
    # open is the lookup before the call, not an attempt of its own.
    return sum(
        1
        for r in requests
        if not (r["operation"] == "conversations.open" and r["outcome"] == "accepted")
    )


RECIPIENT_FIELD = {"sms": "phone", "voice": "phone", "email": "email", "slack": "slack_user_id"}


def send(tenant: Tenant, channel: str, to: str) -> str:
    field = RECIPIENT_FIELD[channel]
    response = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": {field: to},
            "notification": {
                "channels": [channel],
                "subject": "Outcome test",
                # A unique body: the sandbox counts transient failures per (to, body).
                "body": f"outcome test {secrets.token_hex(4)}",
            },
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["notification_id"])


CASES = [
    # channel, recipient, final status, attempts, reason
    ("sms", "+15005550001", "failed", 1, "invalid phone number"),
    ("sms", "+15005550004", "failed", 1, "recipient unsubscribed"),
    ("sms", "+15005550202", "delivered", 3, ""),
    ("sms", "+15005550429", "delivered", 2, ""),
    (
        "sms",
        "+15005550209",
        "failed",
        MAX_ATTEMPTS,
        f"provider unavailable after {MAX_ATTEMPTS} attempts",
    ),
    ("sms", "+15005550301", "failed", 1, "recipient phone is unreachable"),
    ("email", "reject@example.com", "failed", 1, "email address rejected by the receiving server"),
    ("email", "bounce@example.com", "failed", 1, "email bounced: the mailbox rejected it"),
    ("email", "tempfail2@example.com", "delivered", 3, ""),
    ("voice", "+15005550304", "failed", 1, "line busy"),
    ("voice", "+15005550301", "failed", 1, "no answer"),
    ("voice", "+15005550202", "delivered", 3, ""),
    ("voice", "+15005550001", "failed", 1, "invalid phone number"),
    ("slack", "UNOTFOUND", "failed", 1, "Slack user not found"),
    ("slack", "URATELIMIT", "delivered", 2, ""),
    ("slack", "UERROR500", "delivered", 3, ""),
]


@pytest.mark.parametrize(("channel", "to", "status", "attempts", "reason"), CASES)
def test_trigger_recipient_outcome(
    tenant: Tenant,
    sandbox: httpx.Client,
    channel: str,
    to: str,
    status: str,
    attempts: int,
    reason: str,
) -> None:
    before = provider_calls(sandbox, channel, to)
    notification_id = send(tenant, channel, to)
    final = wait_for_status(tenant, notification_id, {"delivered", "failed"}, timeout=60)
    [delivery] = final["deliveries"]
    assert (final["status"], delivery["status"]) == (status, status)
    assert delivery["attempts"] == attempts
    assert delivery["reason"] == reason
    assert provider_calls(sandbox, channel, to) - before == attempts


def test_missing_receipt_stays_sent_and_says_so(tenant: Tenant) -> None:
    notification_id = send(tenant, "sms", "+15005550302")

    def noted() -> dict[str, Any] | None:
        body: dict[str, Any] = tenant.get(f"/api/v1/notifications/{notification_id}").json()
        return body if body["deliveries"][0]["reason"] else None

    final = wait_for(noted, timeout=RECEIPT_TIMEOUT + 20)
    [delivery] = final["deliveries"]
    assert final["status"] == delivery["status"] == "sent"
    assert delivery["attempts"] == 1
    assert "no delivery receipt" in delivery["reason"]
