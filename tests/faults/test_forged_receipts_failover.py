"""Vonage and SendGrid receipts as an attacker would send them over the
webhook Envoy: forged, tampered, replayed, stale, for another recipient.
Each is refused with 403 and changes nothing the tenant or PostgreSQL sees.
Signed as the sandbox signs them (its public secrets), so only what the
check is about is wrong."""

import base64
import hmac
import json
import secrets
import time
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from runner.stack import Stack
from tests.conftest import signup
from tests.faults.test_forged_receipts import SILENT_PHONE, Sent, assert_refused, seen, silent

# The sandbox's public secrets (sandbox/config.py).
VONAGE_SECRET = "sandbox-vonage-signature-secret"
SENDGRID_PRIVATE_KEY = (
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJ/BvTNa1GCt21LJuuCJ4ZggIhOzMZuoc"
    "lTpSvSkAYSehRANCAATjs9uN4uXj/u/irWB+JAJukj2q248HJxlK9hbU/tB4aW4bxgNSryW5TftNAGQX"
    "FhYhcrqmwcrznuJdZb/a81SU"
)


def vonage_signature(params: dict[str, str]) -> str:
    """Vonage's sha256 `sig`: HMAC over every other field, sorted, as `&name=value`."""
    data = "".join(
        f"&{k}={v.replace('&', '_').replace('=', '_')}" for k, v in sorted(params.items())
        if k != "sig"
    )  # fmt: skip
    return hmac.new(VONAGE_SECRET.encode(), data.encode(), "sha256").hexdigest().upper()


@pytest.fixture(scope="module")
def victim_sms(stack: Stack, api: httpx.Client) -> Sent:
    return silent(stack, signup(api), "sms", SILENT_PHONE)


@pytest.fixture(scope="module")
def victim_email(stack: Stack, api: httpx.Client) -> Sent:
    return silent(stack, signup(api), "email", f"noreceipt+{secrets.token_hex(4)}@example.com")


def vonage_form(delivery_id: str, status: str, *, at: float | None = None) -> dict[str, str]:
    form = {
        "msisdn": "15005550302",
        "to": "15005550006",
        "messageId": uuid.uuid4().hex.upper()[:16],
        "status": status,
        "err-code": "3" if status == "failed" else "0",
        "client-ref": delivery_id,
        "timestamp": str(int(time.time() if at is None else at)),
        "nonce": str(uuid.uuid4()),
    }
    form["sig"] = vonage_signature(form)
    return form


def test_vonage_receipts_forged_tampered_replayed_or_stale_are_refused(
    stack: Stack, webhooks: httpx.Client, victim_sms: Sent
) -> None:
    before = seen(stack, victim_sms)
    forged = vonage_form(victim_sms.delivery_id, "failed")
    forged["sig"] = "0" * 64
    assert_refused(webhooks.post("/callbacks/vonage", data=forged), "INVALID_SIGNATURE")
    # A genuine interim receipt, retargeted or restated: the signature covers both.
    harmless = vonage_form("dlv_someone_else", "accepted")
    retargeted = {**harmless, "client-ref": victim_sms.delivery_id, "status": "failed"}
    assert_refused(webhooks.post("/callbacks/vonage", data=retargeted), "INVALID_SIGNATURE")
    # The same signed receipt twice: its nonce is spent the first time.
    interim = vonage_form(victim_sms.delivery_id, "accepted")
    assert webhooks.post("/callbacks/vonage", data=interim).status_code == 200
    assert_refused(webhooks.post("/callbacks/vonage", data=interim), "RECEIPT_REPLAYED")
    for skew in (-301, 301):
        stale = vonage_form(victim_sms.delivery_id, "failed", at=time.time() + skew)
        assert_refused(webhooks.post("/callbacks/vonage", data=stale), "RECEIPT_STALE")
    no_nonce = vonage_form(victim_sms.delivery_id, "failed")
    del no_nonce["nonce"]
    no_nonce["sig"] = vonage_signature(no_nonce)
    assert_refused(webhooks.post("/callbacks/vonage", data=no_nonce), "RECEIPT_REPLAYED")
    # Signed, fresh and unused, but another message than the delivery's.
    other = vonage_form(victim_sms.delivery_id, "failed")
    assert_refused(webhooks.post("/callbacks/vonage", data=other), "RECEIPT_MISMATCH")
    assert seen(stack, victim_sms) == before


def _sendgrid_key() -> ec.EllipticCurvePrivateKey:
    key = serialization.load_der_private_key(base64.b64decode(SENDGRID_PRIVATE_KEY), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def sendgrid_post(
    webhooks: httpx.Client,
    events: list[dict[str, Any]],
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    at: float | None = None,
    body: bytes | None = None,
    timestamp: str | None = None,
) -> httpx.Response:
    raw = body if body is not None else json.dumps(events).encode()
    stamp = timestamp or str(int(time.time() if at is None else at))
    signature = (key or _sendgrid_key()).sign(stamp.encode() + raw, ec.ECDSA(hashes.SHA256()))
    return webhooks.post(
        "/callbacks/sendgrid",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        },
    )


def bounce(sent: Sent, email: str) -> list[dict[str, Any]]:
    return [
        {
            "email": email,
            "event": "bounce",
            "delivery_id": sent.delivery_id,
            "sg_message_id": "forged.filter0001",
            "timestamp": int(time.time()),
        }
    ]


def test_sendgrid_events_forged_tampered_replayed_or_stale_are_refused(
    stack: Stack, webhooks: httpx.Client, victim_email: Sent, victim_sms: Sent
) -> None:
    before = (seen(stack, victim_email), seen(stack, victim_sms))
    events = bounce(victim_email, victim_email.address)
    other_key = ec.generate_private_key(ec.SECP256R1())
    assert_refused(sendgrid_post(webhooks, events, key=other_key), "INVALID_SIGNATURE")
    # Signed bytes, then a body changed to name the victim.
    stamp = str(int(time.time()))
    harmless = json.dumps([{"event": "processed", "email": "x@example.com"}]).encode()
    signature = _sendgrid_key().sign(stamp.encode() + harmless, ec.ECDSA(hashes.SHA256()))
    tampered = webhooks.post(
        "/callbacks/sendgrid",
        content=json.dumps(events).encode(),
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        },
    )
    assert_refused(tampered, "INVALID_SIGNATURE")
    # The same signed bytes twice (a harmless event): spent the first time.
    first = sendgrid_post(webhooks, [], body=harmless, timestamp=stamp)
    assert first.status_code == 200, first.text
    assert_refused(sendgrid_post(webhooks, [], body=harmless, timestamp=stamp), "RECEIPT_REPLAYED")
    for skew in (-301, 301):
        stale = sendgrid_post(webhooks, events, at=time.time() + skew)
        assert_refused(stale, "RECEIPT_STALE")
    # Fresh and signed, but for another recipient, or for an SMS.
    assert_refused(
        sendgrid_post(webhooks, bounce(victim_email, "attacker@example.com")), "RECEIPT_MISMATCH"
    )
    assert_refused(
        sendgrid_post(webhooks, bounce(victim_sms, victim_sms.address)), "RECEIPT_WRONG_CHANNEL"
    )
    assert (seen(stack, victim_email), seen(stack, victim_sms)) == before
