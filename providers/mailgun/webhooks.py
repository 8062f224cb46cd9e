"""Mailgun's email event webhooks. Mailgun signs only timestamp + token, not
event-data: the timestamp must be fresh, the token unused (the platform
spends it), and the event must match the delivery it names."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from providers.base import (
    OneUseToken,
    ProviderReceipt,
    ReceiptRefused,
    ReceiptStatus,
    SignedWebhook,
    WebhookRequest,
    bad_signature,
)
from providers.mailgun.message_ids import delivery_id_from_message_id
from providers.signing import as_bytes, secrets_equal, timestamp_age_error

ROUTE = "mailgun"
# A signature is trusted this long either side of its timestamp, and its
# token remembered as long, so that a replay is either stale or known.
MAILGUN_FRESHNESS = timedelta(minutes=5)


def mailgun_signature_valid(signing_key: str, timestamp: str, token: str, signature: str) -> bool:
    """Mailgun's webhook signature: hex HMAC-SHA256 of timestamp + token."""
    expected = hmac.new(
        as_bytes(signing_key), as_bytes(timestamp + token), hashlib.sha256
    ).hexdigest()
    return secrets_equal(expected, signature)


def mailgun_freshness_error(timestamp: str, now: datetime) -> ReceiptRefused | None:
    """Refuses a signature timestamp that is not an integer or is more than
    MAILGUN_FRESHNESS from now, in either direction."""
    return timestamp_age_error(
        timestamp, now, field="signature.timestamp", window=MAILGUN_FRESHNESS
    )


def mailgun_receipt(event: dict[str, object]) -> ProviderReceipt | None:
    """A Mailgun event; None for events that do not change delivery status
    (opens, clicks, temporary failures that Mailgun retries itself)."""
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    message_id = headers.get("message-id") if isinstance(headers, dict) else None
    if not isinstance(message_id, str):
        return None
    delivery_id = delivery_id_from_message_id(message_id)
    if delivery_id is None:
        return None
    kind = event.get("event")
    if kind == "delivered":
        status, reason = ReceiptStatus.DELIVERED, ""
    elif kind == "failed" and event.get("severity") == "permanent":
        status, reason = ReceiptStatus.FAILED, "email bounced: the mailbox rejected it"
    else:
        return None
    recipient = event.get("recipient")
    return ProviderReceipt(
        delivery_id,
        status,
        reason,
        "email",
        recipient=recipient if isinstance(recipient, str) else "",
    )


class MailgunWebhooks:
    def __init__(self, *, signing_key: str) -> None:
        self._signing_key = signing_key

    def parse(self, request: WebhookRequest, *, now: datetime) -> SignedWebhook:
        try:
            payload = json.loads(request.body)
            signature = payload["signature"]
            timestamp = str(signature["timestamp"])
            token = str(signature["token"])
            valid = token != "" and mailgun_signature_valid(
                self._signing_key, timestamp, token, str(signature["signature"])
            )
        except (ValueError, KeyError, TypeError):
            raise bad_signature() from None
        if not valid:
            raise bad_signature()
        event = payload.get("event-data")
        receipt = mailgun_receipt(event) if isinstance(event, dict) else None
        receipts = [receipt] if receipt else []
        stale = mailgun_freshness_error(timestamp, now)
        if stale:
            raise ReceiptRefused(stale.reason, stale.message, receipts)
        return SignedWebhook(
            receipts,
            token=OneUseToken(
                token, datetime.fromtimestamp(int(timestamp), UTC) + MAILGUN_FRESHNESS
            ),
        )

    def verify_subscription(self, *, mode: str, verify_token: str, challenge: str) -> str | None:
        return None
