"""Slack and voice in raw mode, each channel's history, and WhatsApp's webhook
plumbing, end to end through Envoy and the provider sandbox."""

import hashlib
import hmac
import json
import secrets
from datetime import datetime

import httpx

from tests.conftest import Tenant
from tests.e2e.waiting import wait_for_status

SEND = "/api/v1/notifications/send"


def test_slack_raw_is_delivered_on_successful_post(tenant: Tenant, sandbox: httpx.Client) -> None:
    text = f"*payments* alert: severity high {secrets.token_hex(3)}"
    sent = tenant.post(
        SEND,
        {
            "recipient": {"slack_user_id": "U123456"},
            "notification": {"channels": ["slack"], "body": text},
        },
    )
    assert sent.status_code == 200, sent.text
    final = wait_for_status(tenant, sent.json()["notification_id"], {"delivered", "failed"})
    assert final["status"] == "delivered"
    assert final["deliveries"][0]["attempts"] == 1
    posted = sandbox.get("/sandbox/api/messages", params={"channel": "slack", "to": "U123456"})
    assert text in [m["body"] for m in posted.json()["messages"]]


def test_voice_raw_speaks_the_body_and_completes(tenant: Tenant, sandbox: httpx.Client) -> None:
    body = f"Your order ORD-{secrets.token_hex(2)} & more is confirmed"
    sent = tenant.post(
        SEND,
        {
            "recipient": {"phone": "+14155550123"},
            "notification": {"channels": ["voice"], "body": body},
        },
    )
    assert sent.status_code == 200, sent.text
    final = wait_for_status(tenant, sent.json()["notification_id"], {"delivered", "failed"})
    assert final["status"] == "delivered"
    calls = sandbox.get("/sandbox/api/messages", params={"channel": "voice", "to": "+14155550123"})
    # The TwiML <Say> carried the text, XML-escaped on the wire and spoken as written.
    assert body in [m["body"] for m in calls.json()["messages"]]


def test_history_records_each_attempt_and_transition(tenant: Tenant) -> None:
    sent = tenant.post(
        SEND,
        {
            "recipient": {"phone": "+15005550202"},
            "notification": {"channels": ["sms"], "body": f"history {secrets.token_hex(3)}"},
        },
    ).json()
    final = wait_for_status(tenant, sent["notification_id"], {"delivered"}, timeout=60)
    history = final["deliveries"][0]["history"]
    kinds = [(e["kind"], e["status"]) for e in history]
    assert kinds == [
        ("status", "queued"),
        ("attempt", "queued"),
        ("attempt", "queued"),
        ("attempt", "queued"),
        ("status", "sent"),
        ("status", "delivered"),
    ]
    assert [e["detail"] for e in history if e["kind"] == "attempt"] == [
        "Twilio unavailable (via twilio)",
        "Twilio unavailable (via twilio)",
        "accepted via twilio",
    ]
    times = [datetime.fromisoformat(e["occurred_at"]) for e in history]
    assert times == sorted(times)
    # The list stays light: history is only on GET of one notification.
    listed = tenant.get("/api/v1/notifications").json()["notifications"][0]
    assert listed["deliveries"][0]["history"] == []


def test_slack_retry_after_is_honoured(tenant: Tenant) -> None:
    sent = tenant.post(
        SEND,
        {
            "recipient": {"slack_user_id": "URATELIMIT"},
            "notification": {"channels": ["slack"], "body": f"rl {secrets.token_hex(3)}"},
        },
    ).json()
    final = wait_for_status(tenant, sent["notification_id"], {"delivered"}, timeout=60)
    attempts = [e for e in final["deliveries"][0]["history"] if e["kind"] == "attempt"]
    assert [a["detail"] for a in attempts] == ["Slack rate limit (via slack)", "accepted via slack"]
    gap = datetime.fromisoformat(attempts[1]["occurred_at"]) - datetime.fromisoformat(
        attempts[0]["occurred_at"]
    )
    # Retry-After: 1, while the configured initial backoff is 0.2 s.
    assert gap.total_seconds() >= 0.95


def test_whatsapp_webhook_handshake_as_meta_performs_it(
    sandbox: httpx.Client, webhooks: httpx.Client
) -> None:
    verified = sandbox.post("/sandbox/api/whatsapp/verify-webhook")
    assert verified.status_code == 200, verified.text
    challenge = "1158201444"
    ok = webhooks.get(
        "/callbacks/whatsapp",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": "sandbox-verify-token",
            "hub.challenge": challenge,
        },
    )
    assert ok.status_code == 200
    assert ok.text == challenge
    assert ok.headers["content-type"].startswith("text/plain")
    wrong = webhooks.get(
        "/callbacks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
    )
    assert wrong.status_code == 403


def test_whatsapp_status_webhook_needs_meta_signature(webhooks: httpx.Client) -> None:
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {"statuses": [{"id": "wamid.unknown", "status": "delivered"}]},
                        }
                    ],
                }
            ],
        }
    ).encode()
    unsigned = webhooks.post("/callbacks/whatsapp", content=body)
    assert unsigned.status_code == 403
    signature = "sha256=" + hmac.new(b"sandbox-meta-secret", body, hashlib.sha256).hexdigest()
    signed = webhooks.post(
        "/callbacks/whatsapp", content=body, headers={"X-Hub-Signature-256": signature}
    )
    # Signed but about no delivery of ours: acknowledged, nothing changes.
    assert signed.status_code == 200
    tampered = webhooks.post(
        "/callbacks/whatsapp", content=body + b" ", headers={"X-Hub-Signature-256": signature}
    )
    assert tampered.status_code == 403
