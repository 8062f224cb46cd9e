"""Logs never carry secrets or personal data: after real sends (one
delivered, one refused by the provider, one refused by the API), no log of a
Clarion process holds the message body, the API key, or a full phone number.
The sandbox's log is left out: it stands in for the provider."""

import secrets

from runner.stack import Stack
from tests.conftest import Tenant
from tests.e2e.waiting import wait_for_status

SEND = "/api/v1/notifications/send"


def _platform_logs(stack: Stack) -> str:
    logs = sorted((stack.data_dir / "logs").glob("*.log"))
    return "\n".join(p.read_text(errors="replace") for p in logs if p.name != "sandbox.log")


def test_logs_hold_no_body_key_or_phone_number(stack: Stack, tenant: Tenant) -> None:
    otp = f"Your OTP is {secrets.randbelow(10**8):08d}"
    delivered_to = f"+1415{secrets.randbelow(10**6) + 7_000_000:07d}"
    sent = []
    for to in [delivered_to, "+15005550001"]:
        response = tenant.post(
            SEND,
            {"recipient": {"phone": to}, "notification": {"channels": ["sms"], "body": otp}},
        )
        assert response.status_code == 200, response.text
        sent.append(response.json()["notification_id"])
    refused = tenant.post(
        SEND, {"recipient": {"phone": delivered_to}, "notification": {"channels": ["sms"]}}
    )
    assert refused.status_code == 400
    wait_for_status(tenant, sent[0], {"delivered"})
    wait_for_status(tenant, sent[1], {"failed"})

    logs = _platform_logs(stack)
    # The refusal was logged (with the provider's words), but masked.
    assert "+[redacted]01" in logs
    assert otp.split()[-1] not in logs
    assert tenant.api_key not in logs
    assert tenant.api_key[4:] not in logs
    assert delivered_to not in logs
    assert "+15005550001" not in logs
    assert "$argon2" not in logs
