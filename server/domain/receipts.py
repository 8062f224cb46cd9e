"""Provider delivery receipts in platform terms: which delivery, which status,
and a reason a tenant can read (never provider internals)."""

from dataclasses import dataclass

from server.domain.status import DeliveryStatus


@dataclass(frozen=True)
class Receipt:
    delivery_id: str
    status: DeliveryStatus
    reason: str


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
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
}


def twilio_message_receipt(delivery_id: str, params: dict[str, str]) -> Receipt | None:
    """A Twilio StatusCallback; None for interim statuses (queued, sending)."""
    status = _TWILIO_STATUSES.get(params.get("MessageStatus", ""))
    if status is None:
        return None
    reason = ""
    if status is DeliveryStatus.FAILED:
        reason = _TWILIO_FAILURES.get(
            params.get("ErrorCode", ""), "the carrier could not deliver the message"
        )
    return Receipt(delivery_id, status, reason)


def mailgun_receipt(event: dict[str, object]) -> Receipt | None:
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
        return Receipt(delivery_id, DeliveryStatus.DELIVERED, "")
    if kind == "failed" and event.get("severity") == "permanent":
        return Receipt(delivery_id, DeliveryStatus.FAILED, "email bounced: the mailbox rejected it")
    return None


def email_message_id(delivery_id: str, domain: str) -> str:
    """The Message-ID header we send with, so that events lead back to the delivery."""
    return f"<{delivery_id}@{domain}>"


def delivery_id_from_message_id(message_id: str) -> str | None:
    local = message_id.strip().strip("<>").partition("@")[0]
    return local if local.startswith("dlv_") else None
