"""Provider delivery receipts in platform terms: which delivery, which status,
and a reason a tenant can read (never provider internals)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from providers.mailgun.message_ids import delivery_id_from_message_id
from server.domain.channels import Channel
from server.domain.errors import ClarionError, ErrorKind
from server.domain.status import DeliveryStatus


@dataclass(frozen=True)
class Receipt:
    delivery_id: str
    status: DeliveryStatus
    reason: str
    # The channel whose provider API sent it; it may touch no other.
    channel: Channel
    # The provider's id of the message (MessageSid, CallSid, wamid), if it gives one.
    provider_message_id: str = ""
    # The address the provider says it delivered to, where it says so (email).
    recipient: str = ""


# A Mailgun signature is trusted this long either side of its timestamp, and
# its token remembered as long, so that a replay is either stale or known.
MAILGUN_FRESHNESS = timedelta(minutes=5)


def refused(reason: str, message: str) -> ClarionError:
    return ClarionError(ErrorKind.PERMISSION_DENIED, reason, message)


def mailgun_freshness_error(timestamp: str, now: datetime) -> ClarionError | None:
    """Refuses a signature timestamp that is not an integer or is more than
    MAILGUN_FRESHNESS from now, in either direction."""
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), now.tzinfo)
    except (ValueError, OverflowError, OSError):
        return refused("RECEIPT_STALE", "signature.timestamp is not a Unix time in seconds")
    if abs(now - signed_at) > MAILGUN_FRESHNESS:
        return refused(
            "RECEIPT_STALE",
            f"signature.timestamp is more than {MAILGUN_FRESHNESS} from now; "
            "check the receiver's clock",
        )
    return None


def receipt_mismatch(
    receipt: Receipt, *, channel: str, address: str, provider_message_id: str | None
) -> ClarionError | None:
    """Refuses a receipt that does not belong to the delivery it names: one
    from another channel's provider, with another provider message id, or
    delivered to another address (email addresses compare case-insensitively)."""
    if receipt.channel != channel:
        return refused(
            "RECEIPT_WRONG_CHANNEL",
            f"a {receipt.channel} receipt cannot change a {channel} delivery",
        )
    if (
        receipt.provider_message_id
        and provider_message_id
        and receipt.provider_message_id != provider_message_id
    ):
        return refused(
            "RECEIPT_MISMATCH", "the receipt's message id is not the delivery's provider message id"
        )
    if channel == Channel.EMAIL and receipt.recipient.casefold() != address.casefold():
        return refused("RECEIPT_MISMATCH", "event-data.recipient is not the delivery's address")
    return None


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
    return Receipt(delivery_id, status, reason, Channel.SMS, params.get("MessageSid", ""))


# Twilio call statuses. `completed` means the call was answered and the message spoken.
_CALL_FAILURES = {
    "busy": "line busy",
    "no-answer": "no answer",
    "failed": "the call could not be placed",
    "canceled": "the call was canceled",
}


def twilio_call_receipt(delivery_id: str, params: dict[str, str]) -> Receipt | None:
    """A Twilio call status callback."""
    status = params.get("CallStatus", "")
    if status in ("initiated", "ringing", "in-progress", "answered"):
        moved, reason = DeliveryStatus.SENT, ""
    elif status == "completed":
        moved, reason = DeliveryStatus.DELIVERED, ""
    elif status in _CALL_FAILURES:
        moved, reason = DeliveryStatus.FAILED, _CALL_FAILURES[status]
    else:
        return None
    return Receipt(delivery_id, moved, reason, Channel.VOICE, params.get("CallSid", ""))


_WHATSAPP_FAILURES = {
    131026: "recipient cannot receive WhatsApp messages",
    131047: "more than 24 hours since the recipient last replied",
    131049: "WhatsApp limited messages to this recipient",
    131050: "recipient opted out of WhatsApp messages from this business",
}


@dataclass(frozen=True)
class WhatsAppStatus:
    """One entry of a WhatsApp status webhook; `delivery_id` comes from the
    biz_opaque_callback_data we sent, `message_id` is Meta's wamid."""

    delivery_id: str
    message_id: str
    status: DeliveryStatus
    reason: str


def whatsapp_statuses(payload: dict[str, object]) -> list[WhatsAppStatus]:
    """Every message status in a WhatsApp Cloud API webhook; `read` counts as delivered."""
    found: list[WhatsAppStatus] = []
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


@dataclass(frozen=True)
class TemplateReview:
    name: str
    # "approved", "rejected" or "pending".
    status: str
    reason: str


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


def _whatsapp_status(item: object) -> WhatsAppStatus | None:
    if not isinstance(item, dict):
        return None
    kind = item.get("status")
    reason = ""
    if kind == "sent":
        status = DeliveryStatus.SENT
    elif kind in ("delivered", "read"):
        status = DeliveryStatus.DELIVERED
    elif kind == "failed":
        status = DeliveryStatus.FAILED
        errors = item.get("errors") or [{}]
        code = errors[0].get("code") if isinstance(errors[0], dict) else None
        reason = _WHATSAPP_FAILURES.get(
            code if isinstance(code, int) else 0, "WhatsApp could not deliver the message"
        )
    else:
        return None
    return WhatsAppStatus(
        delivery_id=str(item.get("biz_opaque_callback_data", "")),
        message_id=str(item.get("id", "")),
        status=status,
        reason=reason,
    )


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
        status, reason = DeliveryStatus.DELIVERED, ""
    elif kind == "failed" and event.get("severity") == "permanent":
        status, reason = DeliveryStatus.FAILED, "email bounced: the mailbox rejected it"
    else:
        return None
    recipient = event.get("recipient")
    return Receipt(
        delivery_id,
        status,
        reason,
        Channel.EMAIL,
        recipient=recipient if isinstance(recipient, str) else "",
    )
