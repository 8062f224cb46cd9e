"""Receipts as an attacker would send them, as JSON or forms over the webhook
Envoy: replayed, stale, forged, for the wrong channel, tampered or with odd
signature bytes. Each is refused with 403 and changes nothing, as seen by the
tenant API and in PostgreSQL; a genuine receipt still moves its delivery."""

import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from providers.twilio.webhooks import twilio_signature
from runner.stack import Stack
from tests.conftest import Tenant, signup
from tests.e2e.waiting import wait_for, wait_for_status

MAILGUN_KEY = "sandbox-mailgun-key"
TWILIO_TOKEN = "sandbox-twilio-token"
META_SECRET = "sandbox-meta-secret"
# A sandbox number and address whose provider never sends a receipt, so their
# deliveries stay `sent`: a forged receipt that got through would show.
SILENT_PHONE = "+15005550302"


@dataclass(frozen=True)
class Sent:
    tenant: Tenant
    notification_id: str
    delivery_id: str
    address: str


@dataclass(frozen=True)
class Seen:
    """A delivery as its tenant sees it and as PostgreSQL holds it."""

    api: dict[str, Any]
    status: str
    provider_message_id: str | None
    events: int


def _query(stack: Stack, sql: str, *args: object) -> list[tuple[Any, ...]]:
    assert stack.database_url
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        cursor = conn.execute(sql, args)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def seen(stack: Stack, sent: Sent) -> Seen:
    [(status, message_id, events)] = _query(
        stack,
        "SELECT status, provider_message_id,"
        " (SELECT count(*) FROM delivery_events WHERE delivery_id = d.id)"
        " FROM deliveries d WHERE id = %s",
        sent.delivery_id,
    )
    api = sent.tenant.get(f"/api/v1/notifications/{sent.notification_id}").json()
    return Seen(api, status, message_id, events)


def send(stack: Stack, tenant: Tenant, channel: str, address: str) -> Sent:
    recipient = {"email": address} if channel == "email" else {"phone": address}
    response = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": recipient,
            "notification": {"channels": [channel], "subject": "receipt", "body": "receipt"},
        },
    )
    assert response.status_code == 200, response.text
    notification_id = response.json()["notification_id"]
    [(delivery_id, stored_address)] = _query(
        stack, "SELECT id, address FROM deliveries WHERE notification_id = %s", notification_id
    )
    return Sent(tenant, notification_id, delivery_id, stored_address)


def silent(stack: Stack, tenant: Tenant, channel: str, address: str) -> Sent:
    """A delivery that is `sent` and has stopped waiting for its receipt, so
    nothing but a receipt could still change it."""
    victim = send(stack, tenant, channel, address)
    wait_for_status(tenant, victim.notification_id, {"sent"})
    wait_for(
        lambda: _query(
            stack,
            "SELECT 1 FROM delivery_events WHERE delivery_id = %s AND kind = 'note'",
            victim.delivery_id,
        ),
        timeout=30,
    )
    return victim


@pytest.fixture(scope="module")
def victim_email(stack: Stack, api: httpx.Client) -> Sent:
    """Another tenant's email, waiting for its receipt."""
    return silent(stack, signup(api), "email", f"noreceipt+{secrets.token_hex(4)}@example.com")


@pytest.fixture(scope="module")
def victim_sms(stack: Stack, api: httpx.Client) -> Sent:
    return silent(stack, signup(api), "sms", SILENT_PHONE)


@pytest.fixture(scope="module")
def delivered_email(stack: Stack, api: httpx.Client, sandbox: httpx.Client) -> tuple[Sent, Any]:
    """A delivered email and the genuine Mailgun callback that delivered it."""
    tenant = signup(api)
    sent = send(stack, tenant, "email", f"user+{secrets.token_hex(4)}@example.com")
    wait_for_status(tenant, sent.notification_id, {"delivered"})
    return sent, sandbox_callback(sandbox, sent)


def sandbox_callback(sandbox: httpx.Client, sent: Sent) -> dict[str, Any]:
    """A callback the sandbox sent about this delivery, once answered."""

    def answered() -> dict[str, Any] | None:
        found = sandbox.get("/sandbox/api/messages", params={"to": sent.address})
        callbacks = [
            c
            for m in found.json()["messages"]
            for c in m["callbacks"]
            if c["response_status"] and sent.delivery_id in json.dumps(c)
        ]
        return callbacks[0] if callbacks else None

    found: dict[str, Any] = wait_for(answered)
    return found


def mailgun_body(event_data: dict[str, Any], *, at: float | None = None) -> dict[str, Any]:
    """A Mailgun webhook body with a new signature triple, as Mailgun signs it."""
    timestamp, token = str(int(time.time() if at is None else at)), secrets.token_hex(25)
    digest = hmac.new(MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256)
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": digest.hexdigest()},
        "event-data": event_data,
    }


def bounce(delivery_id: str, recipient: str) -> dict[str, Any]:
    return {
        "event": "failed",
        "severity": "permanent",
        "recipient": recipient,
        "message": {"headers": {"message-id": f"{delivery_id}@clarion.local"}},
    }


def assert_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["code"] == 7
    assert body["details"][0]["reason"] == reason, body


def assert_mailgun_refused(
    stack: Stack, webhooks: httpx.Client, victim: Sent, body: dict[str, Any], reason: str
) -> None:
    before = seen(stack, victim)
    assert_refused(webhooks.post("/callbacks/mailgun", json=body), reason)
    assert seen(stack, victim) == before


def test_a_genuine_mailgun_callback_moves_its_delivery(
    stack: Stack, delivered_email: tuple[Sent, Any]
) -> None:
    sent, callback = delivered_email
    assert callback["response_status"] == 200
    assert callback["payload"]["event-data"]["event"] == "delivered"
    after = seen(stack, sent)
    assert after.status == "delivered"
    assert after.api["deliveries"][0]["status"] == "delivered"


def test_a_replayed_mailgun_callback_is_refused(
    stack: Stack, webhooks: httpx.Client, delivered_email: tuple[Sent, Any]
) -> None:
    sent, callback = delivered_email
    before = seen(stack, sent)
    replay = webhooks.post("/callbacks/mailgun", json=callback["payload"])
    assert_refused(replay, "RECEIPT_REPLAYED")
    assert seen(stack, sent) == before


@pytest.mark.parametrize("victim_name", ["victim_email", "victim_sms"])
def test_a_replayed_signature_on_forged_event_data_is_refused(
    request: pytest.FixtureRequest,
    stack: Stack,
    webhooks: httpx.Client,
    delivered_email: tuple[Sent, Any],
    victim_name: str,
) -> None:
    # The attack: one real event's signature on event-data naming
    # another tenant's email, or an SMS (its id is in Twilio's callback URL).
    victim: Sent = request.getfixturevalue(victim_name)
    _, callback = delivered_email
    forged = {
        "signature": callback["payload"]["signature"],
        "event-data": bounce(victim.delivery_id, victim.address),
    }
    assert_mailgun_refused(stack, webhooks, victim, forged, "RECEIPT_REPLAYED")


def test_a_freshly_signed_event_for_another_recipient_is_refused(
    stack: Stack, webhooks: httpx.Client, victim_email: Sent
) -> None:
    forged = mailgun_body(bounce(victim_email.delivery_id, "attacker@example.com"))
    assert_mailgun_refused(stack, webhooks, victim_email, forged, "RECEIPT_MISMATCH")


def test_a_mailgun_event_cannot_touch_an_sms_delivery(
    stack: Stack, webhooks: httpx.Client, victim_sms: Sent
) -> None:
    forged = mailgun_body(bounce(victim_sms.delivery_id, victim_sms.address))
    assert_mailgun_refused(stack, webhooks, victim_sms, forged, "RECEIPT_WRONG_CHANNEL")


# Past the 5-minute window by more than the time the request takes: the
# timestamp is whole seconds, so a skew of +301 can arrive 300.x s ahead.
@pytest.mark.parametrize("skew", [-310, 310, -86_400])
def test_a_mailgun_signature_more_than_five_minutes_off_is_stale(
    stack: Stack, webhooks: httpx.Client, victim_email: Sent, skew: int
) -> None:
    stale = mailgun_body(
        bounce(victim_email.delivery_id, victim_email.address), at=time.time() + skew
    )
    assert_mailgun_refused(stack, webhooks, victim_email, stale, "RECEIPT_STALE")


def test_a_tampered_twilio_callback_is_refused(
    stack: Stack, tenant: Tenant, webhooks: httpx.Client, sandbox: httpx.Client, victim_sms: Sent
) -> None:
    # A genuine callback of the attacker's own SMS, aimed at the victim's
    # delivery, or with its status changed: Twilio's signature covers both.
    own = send(stack, tenant, "sms", "+14155550123")
    wait_for_status(tenant, own.notification_id, {"delivered"})
    callback = sandbox_callback(sandbox, own)
    form = dict(callback["payload"])
    headers = {"X-Twilio-Signature": callback["headers"]["X-Twilio-Signature"]}
    path = urlsplit(callback["url"])
    before = seen(stack, victim_sms)
    retargeted = webhooks.post(
        f"{path.path}?delivery_id={victim_sms.delivery_id}",
        data={**form, "MessageStatus": "undelivered", "ErrorCode": "30003"},
        headers=headers,
    )
    restated = webhooks.post(
        f"{path.path}?{path.query}", data={**form, "MessageStatus": "failed"}, headers=headers
    )
    for response in (retargeted, restated):
        assert_refused(response, "INVALID_SIGNATURE")
    assert seen(stack, victim_sms) == before


def _twilio_post(
    stack: Stack, webhooks: httpx.Client, sent: Sent, form: dict[str, str]
) -> httpx.Response:
    """A callback signed as Twilio signs it, with the sandbox's token."""
    path = f"/callbacks/twilio?delivery_id={sent.delivery_id}"
    signature = twilio_signature(TWILIO_TOKEN, stack.webhook_url + path, sorted(form.items()))
    return webhooks.post(path, data=form, headers={"X-Twilio-Signature": signature})


def test_a_signed_twilio_receipt_must_match_the_delivery(
    stack: Stack, webhooks: httpx.Client, victim_sms: Sent
) -> None:
    before = seen(stack, victim_sms)
    assert before.provider_message_id
    call = _twilio_post(
        stack, webhooks, victim_sms, {"CallSid": before.provider_message_id, "CallStatus": "busy"}
    )
    assert_refused(call, "RECEIPT_WRONG_CHANNEL")
    other_message = _twilio_post(
        stack, webhooks, victim_sms, {"MessageSid": "SM" + "0" * 32, "MessageStatus": "failed"}
    )
    assert_refused(other_message, "RECEIPT_MISMATCH")
    assert seen(stack, victim_sms) == before


def _meta_body(delivery_id: str, message_id: str, status: str) -> bytes:
    item = {"id": message_id, "status": status, "biz_opaque_callback_data": delivery_id}
    value = {"messaging_product": "whatsapp", "statuses": [item]}
    entry = {"id": "100000000000001", "changes": [{"field": "messages", "value": value}]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


def _meta_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_whatsapp_statuses_cannot_touch_an_sms_or_be_tampered_with(
    stack: Stack, webhooks: httpx.Client, victim_sms: Sent
) -> None:
    before = seen(stack, victim_sms)
    body = _meta_body(victim_sms.delivery_id, "wamid.forged", "failed")
    signed = webhooks.post(
        "/callbacks/whatsapp", content=body, headers={"X-Hub-Signature-256": _meta_signature(body)}
    )
    assert_refused(signed, "RECEIPT_WRONG_CHANNEL")
    harmless = _meta_body("dlv_unknown", "wamid.forged", "sent")
    tampered = webhooks.post(
        "/callbacks/whatsapp",
        content=harmless.replace(b"dlv_unknown", victim_sms.delivery_id.encode()),
        headers={"X-Hub-Signature-256": _meta_signature(harmless)},
    )
    assert_refused(tampered, "INVALID_SIGNATURE")
    assert seen(stack, victim_sms) == before


def test_non_ascii_signatures_are_refused_not_errors(
    stack: Stack, webhooks: httpx.Client, victim_sms: Sent, victim_email: Sent
) -> None:
    before = (seen(stack, victim_sms), seen(stack, victim_email))
    odd = "sha256=é€".encode()
    twilio = webhooks.post(
        f"/callbacks/twilio?delivery_id={victim_sms.delivery_id}",
        data={"MessageSid": "SM1", "MessageStatus": "failed"},
        headers={"X-Twilio-Signature": odd},
    )
    meta = webhooks.post(
        "/callbacks/whatsapp",
        content=_meta_body(victim_sms.delivery_id, "wamid.x", "failed"),
        headers={"X-Hub-Signature-256": odd},
    )
    body = mailgun_body(bounce(victim_email.delivery_id, victim_email.address))
    body["signature"]["signature"] = "é" * 64
    mailgun = webhooks.post("/callbacks/mailgun", json=body)
    for response in (twilio, meta, mailgun):
        assert_refused(response, "INVALID_SIGNATURE")
    handshake = webhooks.get(
        "/callbacks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": "vérifié", "hub.challenge": "1"},
    )
    assert_refused(handshake, "INVALID_SIGNATURE")
    assert (seen(stack, victim_sms), seen(stack, victim_email)) == before


def test_a_receipt_records_the_message_id_the_sender_did_not(
    stack: Stack, tenant: Tenant, webhooks: httpx.Client
) -> None:
    # As if the worker died after Twilio accepted and before it committed.
    sent = silent(stack, tenant, "sms", SILENT_PHONE)
    _query(
        stack, "UPDATE deliveries SET provider_message_id = NULL WHERE id = %s", sent.delivery_id
    )
    sid = "SM" + secrets.token_hex(16)
    response = _twilio_post(
        stack, webhooks, sent, {"MessageSid": sid, "MessageStatus": "delivered"}
    )
    assert response.status_code == 200, response.text
    after = seen(stack, sent)
    assert (after.status, after.provider_message_id) == ("delivered", sid)
    assert after.api["status"] == "delivered"


@pytest.mark.parametrize(
    "command",
    [["server"], ["server", "callbacks"], ["workflows.worker"], ["runner"]],
    ids=["api", "callbacks", "worker", "make-run"],
)
def test_without_the_sandbox_default_secrets_refuse_to_start(
    command: list[str], tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "CLARION_RUN_SANDBOX": "false",
        "CLARION_TWILIO_AUTH_TOKEN": "a-real-token",
        "CLARION_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", *command], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0
    assert time.monotonic() - started < 15
    assert "CLARION_MAILGUN_SIGNING_KEY" in done.stderr
    assert "CLARION_META_APP_SECRET" in done.stderr
    assert "CLARION_TWILIO_AUTH_TOKEN" not in done.stderr
