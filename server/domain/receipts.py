"""Provider receipts in platform terms: which delivery status they move to,
and whether they belong to the delivery they name. Parsing and signatures
are each provider's own (providers/<name>/webhooks.py)."""

from providers.base import ProviderReceipt, ReceiptRefused, ReceiptStatus
from server.domain.channels import Channel
from server.domain.errors import ClarionError, ErrorKind
from server.domain.status import DeliveryStatus

_STATUSES = {
    ReceiptStatus.SENT: DeliveryStatus.SENT,
    ReceiptStatus.DELIVERED: DeliveryStatus.DELIVERED,
    ReceiptStatus.FAILED: DeliveryStatus.FAILED,
}


def delivery_status(status: ReceiptStatus) -> DeliveryStatus:
    return _STATUSES[status]


def refused(reason: str, message: str) -> ClarionError:
    return ClarionError(ErrorKind.PERMISSION_DENIED, reason, message)


def refusal_error(refusal: ReceiptRefused) -> ClarionError:
    """A provider handler's refusal, as the API answers it (403)."""
    return refused(refusal.reason, refusal.message)


def receipt_mismatch(
    receipt: ProviderReceipt, *, channel: str, address: str, provider_message_id: str | None
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
