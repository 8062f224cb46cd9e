"""SendGrid Event Webhook: the signature and the events.

https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features:
X-Twilio-Email-Event-Webhook-Signature is a base64 DER ECDSA signature
(P-256, SHA-256) over the X-Twilio-Email-Event-Webhook-Timestamp value
followed by the raw body; the verification key is base64 DER. The timestamp
must be fresh, and the signed bytes are spent once (a replay repeats them).

Events (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event):
a JSON array; `custom_args` appear as top-level keys (our `delivery_id`);
`sg_message_id` starts with the send's X-Message-Id and a dot."""

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from providers.base import (
    MalformedWebhook,
    OneUseToken,
    ProviderReceipt,
    ReceiptRefused,
    ReceiptStatus,
    SignedWebhook,
    WebhookRequest,
    bad_signature,
)
from providers.signing import as_bytes, timestamp_age_error

ROUTE = "sendgrid"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
FRESHNESS = timedelta(minutes=5)

_FAILURES = {
    "bounce": "email bounced: the mailbox rejected it",
    "dropped": "the provider dropped the email (a previous bounce, unsubscribe or spam report)",
}


def signature_valid(public_key_b64: str, timestamp: str, body: bytes, signature: str) -> bool:
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key_b64))
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey) or not raw:
        return False
    try:
        key.verify(raw, as_bytes(timestamp) + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def events(body: bytes) -> list[ProviderReceipt]:
    """The events that change a delivery's status; raises ValueError on a body
    that is not a JSON array."""
    payload = json.loads(body)
    if not isinstance(payload, list):
        raise ValueError("an Event Webhook body is a JSON array")
    found = []
    for item in payload:
        if not isinstance(item, dict):
            continue
        kind = item.get("event")
        if kind == "delivered":
            status, reason = ReceiptStatus.DELIVERED, ""
        elif kind in _FAILURES:
            status, reason = ReceiptStatus.FAILED, _FAILURES[str(kind)]
        else:
            continue
        delivery_id = str(item.get("delivery_id", ""))
        if not delivery_id:
            continue
        found.append(
            ProviderReceipt(
                delivery_id,
                status,
                reason,
                "email",
                # The X-Message-Id part, which the send recorded.
                str(item.get("sg_message_id", "")).split(".", 1)[0],
                recipient=str(item.get("email", "")),
            )
        )
    return found


class SendGridWebhooks:
    def __init__(self, *, public_key: str) -> None:
        self._public_key = public_key

    def parse(self, request: WebhookRequest, *, now: datetime) -> SignedWebhook:
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature_valid(self._public_key, timestamp, request.body, signature):
            raise bad_signature()
        try:
            receipts = events(request.body)
        except ValueError:
            raise MalformedWebhook("body", "webhook body is not a JSON array") from None
        stale = timestamp_age_error(
            timestamp, now, field="X-Twilio-Email-Event-Webhook-Timestamp", window=FRESHNESS
        )
        if stale:
            raise ReceiptRefused(stale.reason, stale.message, receipts)
        signed = hashlib.sha256(as_bytes(timestamp) + b"\n" + request.body).hexdigest()
        expires = datetime.fromtimestamp(int(timestamp), UTC) + FRESHNESS
        return SignedWebhook(receipts, token=OneUseToken(signed, expires))

    def verify_subscription(self, *, mode: str, verify_token: str, challenge: str) -> str | None:
        return None
