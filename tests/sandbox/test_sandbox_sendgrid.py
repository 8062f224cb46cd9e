"""SendGrid v3 Mail Send and its ECDSA-signed Event Webhook."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .helpers import Received, Receiver, SandboxProcess

API_KEY = "SG.sandbox-sendgrid-key"
# The public half of the sandbox's default key, as SendGrid's settings show it.
PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE47PbjeLl4/7v4q1gfiQCbpI9qtuPBycZSvYW1P7QeGluG8YDUq8l"
    "uU37TQBkFxYWIXK6psHK857iXWW/2vNUlA=="
)


def verify(hook: Received, public_key: str = PUBLIC_KEY) -> bool:
    # Twilio SendGrid "Event Webhook Security Features": ECDSA (P-256, SHA-256)
    # over the timestamp header followed by the raw payload; base64 DER signature.
    key = serialization.load_der_public_key(base64.b64decode(public_key))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    signature = base64.b64decode(hook.headers["X-Twilio-Email-Event-Webhook-Signature"])
    timestamp = hook.headers["X-Twilio-Email-Event-Webhook-Timestamp"].encode()
    try:
        key.verify(signature, timestamp + hook.body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def mail(to: str, **extra: Any) -> dict[str, Any]:
    return {
        "personalizations": [{"to": [{"email": to}], "custom_args": {"clarion_id": "d-1"}}],
        "from": {"email": "noreply@clarion.test"},
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "Hi there"}],
        **extra,
    }


async def post(
    client: httpx.AsyncClient, sandbox: SandboxProcess, body: Any, key: str = API_KEY
) -> httpx.Response:
    return await client.post(
        sandbox.http + "/v3/mail/send", json=body, headers={"Authorization": f"Bearer {key}"}
    )


def events_for(receiver: Receiver, message_id: str) -> list[dict[str, Any]]:
    hooks = receiver.matching(lambda r: r.path == "/hooks/sendgrid")
    return [
        e for h in hooks for e in h.json() if str(e.get("sg_message_id", "")).startswith(message_id)
    ]


async def test_accepted_with_message_id_then_signed_events(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    to = f"user+{uuid.uuid4().hex[:8]}@example.com"
    response = await post(client, sandbox, mail(to))
    assert response.status_code == 202, response.text
    assert response.content == b""
    message_id = response.headers["X-Message-Id"]
    assert len(message_id) == 22
    hooks = await receiver.wait_for(
        lambda r: (
            r.path == "/hooks/sendgrid" and message_id in r.body.decode() and b"delivered" in r.body
        )
    )
    assert hooks
    events = events_for(receiver, message_id)
    assert [e["event"] for e in events] == ["processed", "delivered"]
    for e in events:
        assert e["email"] == to
        assert e["clarion_id"] == "d-1"  # custom_args ride on each event
        assert e["sg_message_id"].startswith(message_id + ".")
    for hook in receiver.matching(
        lambda r: r.path == "/hooks/sendgrid" and message_id in r.body.decode()
    ):
        assert verify(hook)
        tampered = Received(hook.method, hook.path, hook.query, hook.headers, hook.body + b" ")
        assert not verify(tampered)
    key = await client.get(
        sandbox.http + "/v3/user/webhooks/event/settings/signed",
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert key.json()["public_key"] == PUBLIC_KEY


async def test_bounce_event_for_rejected_recipient(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    response = await post(client, sandbox, mail(f"reject+{uuid.uuid4().hex[:6]}@example.com"))
    assert response.status_code == 202
    message_id = response.headers["X-Message-Id"]
    await receiver.wait_for(
        lambda r: (
            r.path == "/hooks/sendgrid" and message_id in r.body.decode() and b"bounce" in r.body
        )
    )
    bounce = [e for e in events_for(receiver, message_id) if e["event"] == "bounce"]
    assert len(bounce) == 1
    assert bounce[0]["type"] == "bounce" and bounce[0]["status"].startswith("5.")


async def test_errors(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    unauthorized = await post(client, sandbox, mail("a@example.com"), key="SG.wrong")
    assert unauthorized.status_code == 401
    assert unauthorized.json()["errors"][0]["message"]
    no_from = mail("a@example.com")
    del no_from["from"]
    missing = await post(client, sandbox, no_from)
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "from"
    bad_to = await post(client, sandbox, mail("not-an-address"))
    assert bad_to.status_code == 400
    assert bad_to.json()["errors"][0]["field"] == "personalizations.0.to.0.email"
    no_content = mail("a@example.com")
    del no_content["content"]
    assert (await post(client, sandbox, no_content)).json()["errors"][0]["field"] == "content"
