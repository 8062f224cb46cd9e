"""Twilio's status callbacks (messages and calls): X-Twilio-Signature and the
statuses, in tenant words."""

import base64
import hashlib
import hmac
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

from providers.base import (
    ProviderReceipt,
    ReceiptStatus,
    SignedWebhook,
    WebhookRequest,
    bad_signature,
)
from providers.signing import as_bytes, secrets_equal

ROUTE = "twilio"


def status_callback_url(callback_base: str, delivery_id: str) -> str:
    """Twilio posts status callbacks to the URL given with each message or call."""
    return (
        f"{callback_base.rstrip('/')}/callbacks/{ROUTE}?{urlencode({'delivery_id': delivery_id})}"
    )


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 over the full URL followed by
    every POST parameter's name and value, sorted by name; base64."""
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(as_bytes(auth_token), as_bytes(payload), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(
    auth_token: str, url: str, params: list[tuple[str, str]], signature: str
) -> bool:
    return secrets_equal(twilio_signature(auth_token, url, params), signature)


# Twilio's documented error codes for undelivered messages, in tenant words.
_TWILIO_FAILURES = {
    "30003": "recipient phone is unreachable",
    "30004": "recipient blocked the message",
    "30005": "unknown or inactive phone number",
    "30006": "number cannot receive SMS (landline or unreachable carrier)",
    "30007": "message blocked by the carrier as spam",
    "30008": "the carrier could not deliver the message",
}

_TWILIO_STATUSES = {
    "sent": ReceiptStatus.SENT,
    "delivered": ReceiptStatus.DELIVERED,
    "undelivered": ReceiptStatus.FAILED,
    "failed": ReceiptStatus.FAILED,
}


def twilio_message_receipt(delivery_id: str, params: dict[str, str]) -> ProviderReceipt | None:
    """A Twilio StatusCallback; None for interim statuses (queued, sending)."""
    status = _TWILIO_STATUSES.get(params.get("MessageStatus", ""))
    if status is None:
        return None
    reason = ""
    if status is ReceiptStatus.FAILED:
        reason = _TWILIO_FAILURES.get(
            params.get("ErrorCode", ""), "the carrier could not deliver the message"
        )
    return ProviderReceipt(delivery_id, status, reason, "sms", params.get("MessageSid", ""))


# Twilio call statuses. `completed` means the call was answered and the message spoken.
_CALL_FAILURES = {
    "busy": "line busy",
    "no-answer": "no answer",
    "failed": "the call could not be placed",
    "canceled": "the call was canceled",
}


def twilio_call_receipt(delivery_id: str, params: dict[str, str]) -> ProviderReceipt | None:
    """A Twilio call status callback."""
    status = params.get("CallStatus", "")
    if status in ("initiated", "ringing", "in-progress", "answered"):
        moved, reason = ReceiptStatus.SENT, ""
    elif status == "completed":
        moved, reason = ReceiptStatus.DELIVERED, ""
    elif status in _CALL_FAILURES:
        moved, reason = ReceiptStatus.FAILED, _CALL_FAILURES[status]
    else:
        return None
    return ProviderReceipt(delivery_id, moved, reason, "voice", params.get("CallSid", ""))


class TwilioWebhooks:
    def __init__(self, *, auth_token: str, webhook_base_url: str) -> None:
        self._auth_token = auth_token
        self._base_url = webhook_base_url.rstrip("/")

    def parse(self, request: WebhookRequest, *, now: datetime) -> SignedWebhook:
        params = parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        # Twilio signs the URL it was given, which is ours: base URL + path.
        url = self._base_url + request.path
        signature = request.headers.get("x-twilio-signature", "")
        if not twilio_signature_valid(self._auth_token, url, params, signature):
            raise bad_signature()
        delivery_id = dict(parse_qsl(urlsplit(request.path).query)).get("delivery_id", "")
        fields = dict(params)
        if not delivery_id:
            receipt = None
        elif "CallStatus" in fields:
            receipt = twilio_call_receipt(delivery_id, fields)
        else:
            receipt = twilio_message_receipt(delivery_id, fields)
        return SignedWebhook([receipt] if receipt else [])

    def verify_subscription(self, *, mode: str, verify_token: str, challenge: str) -> str | None:
        return None
