"""Provider callbacks enter through the webhook Envoy and are trusted only when
signed."""

import hashlib
import hmac
import json
import secrets
import time

import httpx
import psycopg

from providers.twilio.webhooks import twilio_signature
from runner.stack import Stack
from tests.conftest import Tenant
from tests.e2e.waiting import wait_for_status

TWILIO_TOKEN = "sandbox-twilio-token"
MAILGUN_KEY = "sandbox-mailgun-key"


def delivered_sms(tenant: Tenant) -> tuple[str, dict[str, object]]:
    sent = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": {"phone": "+14155550123"},
            "notification": {"channels": ["sms"], "body": "cb"},
        },
    ).json()
    return sent["notification_id"], wait_for_status(tenant, sent["notification_id"], {"delivered"})


def test_unsigned_or_wrongly_signed_callbacks_get_403(webhooks: httpx.Client) -> None:
    form = {"MessageSid": "SM1", "MessageStatus": "failed"}
    unsigned = webhooks.post("/callbacks/twilio?delivery_id=dlv_x", data=form)
    wrong = webhooks.post(
        "/callbacks/twilio?delivery_id=dlv_x", data=form, headers={"X-Twilio-Signature": "bad="}
    )
    mailgun = webhooks.post("/callbacks/mailgun", json={"signature": {}, "event-data": {}})
    for response in (unsigned, wrong, mailgun):
        assert response.status_code == 403
        assert response.json()["details"][0]["reason"] == "INVALID_SIGNATURE"


def test_callback_route_refusals_use_the_api_error_shape(webhooks: httpx.Client) -> None:
    unknown = webhooks.post("/callbacks/plivo", content=b"{}")
    assert unknown.status_code == 404
    assert unknown.json()["details"][0]["reason"] == "NOT_FOUND"
    too_large = webhooks.post(
        "/callbacks/whatsapp",
        content=b"x" * (2 * 1024 * 1024),
        headers={"X-Hub-Signature-256": "sha256=00"},
    )
    assert too_large.status_code == 413
    assert too_large.json()["code"] == 3
    wrong_method = webhooks.delete("/callbacks/twilio")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["message"]


def test_webhooks_and_the_api_have_separate_gateways(
    api: httpx.Client, webhooks: httpx.Client
) -> None:
    # A bulk send's receipt storm must not queue tenants' requests in the
    # same Envoy; each gateway refuses the other's paths.
    on_api = api.post("/callbacks/twilio?delivery_id=dlv_x", data={"MessageStatus": "sent"})
    assert on_api.status_code == 404
    assert on_api.json()["code"] == 5
    on_webhooks = webhooks.get("/api/v1/channels/capabilities")
    assert on_webhooks.status_code == 404
    assert on_webhooks.json()["code"] == 5


def test_late_failed_receipt_does_not_undo_delivered(
    tenant: Tenant, stack: Stack, webhooks: httpx.Client
) -> None:
    notification_id, before = delivered_sms(tenant)
    delivery_id, message_sid = _delivery(stack, notification_id)
    path = f"/callbacks/twilio?delivery_id={delivery_id}"
    form = {"MessageSid": message_sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    signature = twilio_signature(TWILIO_TOKEN, stack.webhook_url + path, sorted(form.items()))
    response = webhooks.post(path, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    after = tenant.get(f"/api/v1/notifications/{notification_id}").json()
    assert after["status"] == "delivered"
    assert after["deliveries"] == before["deliveries"]


def test_signed_mailgun_event_is_accepted_and_duplicates_change_nothing(
    tenant: Tenant, stack: Stack, webhooks: httpx.Client
) -> None:
    # A duplicate with its own signature (Mailgun's tokens are one-use: a
    # replayed one is refused, see tests/faults/test_forged_receipts.py).
    sent = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": {"email": "user@example.com"},
            "notification": {"channels": ["email"], "subject": "dup", "body": "dup"},
        },
    ).json()
    final = wait_for_status(tenant, sent["notification_id"], {"delivered"})
    delivery_id, _ = _delivery(stack, sent["notification_id"])
    for _ in range(2):
        timestamp, token = str(int(time.time())), secrets.token_hex(25)
        signature = hmac.new(
            MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256
        ).hexdigest()
        event = {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {
                "event": "delivered",
                "recipient": "User@Example.com",
                "message": {"headers": {"message-id": f"{delivery_id}@clarion.local"}},
            },
        }
        response = webhooks.post("/callbacks/mailgun", content=json.dumps(event))
        assert response.status_code == 200, response.text
    assert tenant.get(f"/api/v1/notifications/{sent['notification_id']}").json() == final


def _delivery(stack: Stack, notification_id: str) -> tuple[str, str]:
    """The delivery id the platform gave the provider (in the callback URL or
    Message-ID) and the provider's message id; tenants never need them, so
    they are read from the database."""
    assert stack.database_url
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute(
            "SELECT id, provider_message_id FROM deliveries WHERE notification_id = %s",
            (notification_id,),
        ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])
