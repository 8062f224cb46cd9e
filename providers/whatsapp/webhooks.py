"""Meta's WhatsApp Cloud API webhooks: X-Hub-Signature-256, message statuses,
template reviews, and the subscription handshake."""

import hashlib
import hmac
import json
from datetime import datetime

from providers.base import (
    MalformedWebhook,
    ProviderReceipt,
    ReceiptStatus,
    SignedWebhook,
    TemplateReview,
    WebhookRequest,
    bad_signature,
)
from providers.signing import as_bytes, secrets_equal

ROUTE = "whatsapp"


def meta_signature_valid(app_secret: str, body: bytes, header: str) -> bool:
    """Meta's X-Hub-Signature-256: `sha256=` + hex HMAC-SHA256 of the raw body."""
    expected = "sha256=" + hmac.new(as_bytes(app_secret), body, hashlib.sha256).hexdigest()
    return secrets_equal(expected, header)


_WHATSAPP_FAILURES = {
    131026: "recipient cannot receive WhatsApp messages",
    131047: "more than 24 hours since the recipient last replied",
    131049: "WhatsApp limited messages to this recipient",
    131050: "recipient opted out of WhatsApp messages from this business",
}


def whatsapp_statuses(payload: dict[str, object]) -> list[ProviderReceipt]:
    """Every message status in a webhook; `read` counts as delivered. The
    delivery id is the biz_opaque_callback_data we sent, empty when Meta
    left it out (then only the wamid identifies the message)."""
    found: list[ProviderReceipt] = []
    entries = payload.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        for change in entry.get("changes", []) if isinstance(entry, dict) else []:
            value = change.get("value") if isinstance(change, dict) else None
            statuses = value.get("statuses") if isinstance(value, dict) else None
            for item in statuses if isinstance(statuses, list) else []:
                parsed = _whatsapp_status(item)
                if parsed:
                    found.append(parsed)
    return found


_REVIEW_EVENTS = {"APPROVED": "approved", "REJECTED": "rejected", "PENDING": "pending"}


def whatsapp_template_reviews(payload: dict[str, object]) -> list[TemplateReview]:
    """Meta's `message_template_status_update` webhooks in a payload."""
    found: list[TemplateReview] = []
    entries = payload.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        for change in entry.get("changes", []) if isinstance(entry, dict) else []:
            if not isinstance(change, dict):
                continue
            if change.get("field") != "message_template_status_update":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            status = _REVIEW_EVENTS.get(str(value.get("event", "")))
            name = value.get("message_template_name")
            if status and isinstance(name, str):
                reason = str(value.get("reason") or "")
                found.append(TemplateReview(name, status, "" if reason == "NONE" else reason))
    return found


def _whatsapp_status(item: object) -> ProviderReceipt | None:
    if not isinstance(item, dict):
        return None
    kind = item.get("status")
    reason = ""
    if kind == "sent":
        status = ReceiptStatus.SENT
    elif kind in ("delivered", "read"):
        status = ReceiptStatus.DELIVERED
    elif kind == "failed":
        status = ReceiptStatus.FAILED
        errors = item.get("errors") or [{}]
        code = errors[0].get("code") if isinstance(errors[0], dict) else None
        reason = _WHATSAPP_FAILURES.get(
            code if isinstance(code, int) else 0, "WhatsApp could not deliver the message"
        )
    else:
        return None
    delivery_id = str(item.get("biz_opaque_callback_data", ""))
    return ProviderReceipt(
        delivery_id=delivery_id if delivery_id.startswith("dlv_") else "",
        status=status,
        reason=reason,
        channel="whatsapp",
        provider_message_id=str(item.get("id", "")),
    )


class WhatsAppWebhooks:
    def __init__(self, *, app_secret: str, verify_token: str) -> None:
        self._app_secret = app_secret
        self._verify_token = verify_token

    def parse(self, request: WebhookRequest, *, now: datetime) -> SignedWebhook:
        signature = request.headers.get("x-hub-signature-256", "")
        if not meta_signature_valid(self._app_secret, request.body, signature):
            raise bad_signature()
        try:
            payload = json.loads(request.body)
        except ValueError:
            raise MalformedWebhook("body", "webhook body is not JSON") from None
        payload = payload if isinstance(payload, dict) else {}
        return SignedWebhook(
            whatsapp_statuses(payload), template_reviews=whatsapp_template_reviews(payload)
        )

    def verify_subscription(self, *, mode: str, verify_token: str, challenge: str) -> str | None:
        """Meta's handshake: echo the challenge when the token matches."""
        if mode != "subscribe" or not secrets_equal(self._verify_token, verify_token):
            raise bad_signature()
        return challenge
