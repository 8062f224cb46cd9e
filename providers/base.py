"""The small interfaces every provider implements: the outbound adapter and
the webhook handler, in provider-neutral terms."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class WhatsAppTemplate:
    """A provider-approved template and its positional parameter values."""

    name: str
    language: str
    parameters: list[str]


@dataclass(frozen=True)
class OutboundMessage:
    delivery_id: str
    notification_id: str
    channel: str
    # Email address, E.164 number or Slack id.
    address: str
    subject: str
    body: str
    html_body: str = ""
    # Set for WhatsApp, which only sends approved templates.
    template: WhatsAppTemplate | None = None


@dataclass(frozen=True)
class ProviderAccepted:
    provider_message_id: str
    # True when acceptance is the final word (no receipt will follow).
    delivered: bool = False


class ProviderError(Exception):
    """A provider refused or failed. `reason` is for tenants; `detail` is for logs."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        detail: str = "",
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.detail = detail
        self.retry_after = retry_after
        # The request may have reached the provider, but no answer came back
        # (a read timeout, a reset): it may have been sent.
        self.outcome_unknown = outcome_unknown


class AfterUnknownOutcome(StrEnum):
    """What the next attempt does when an earlier call's outcome is unknown."""

    # Ask the provider whether it has the message, and adopt it if so.
    LOOK_UP = "look_up"
    # The provider cannot be asked; sending again is the lesser harm.
    RESEND = "resend"
    # The provider cannot be asked, and a duplicate is the greater harm.
    FAIL = "fail"


class Provider(Protocol):
    after_unknown_outcome: AfterUnknownOutcome

    async def send(self, message: OutboundMessage) -> ProviderAccepted: ...

    async def look_up(self, message: OutboundMessage, *, since: datetime) -> list[ProviderAccepted]:
        """Messages matching this one that the provider created since `since`,
        oldest first. Only called when after_unknown_outcome is LOOK_UP."""
        ...


class ReceiptStatus(StrEnum):
    """What a provider's receipt says happened, before the platform maps it."""

    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class ProviderReceipt:
    """One delivery receipt in provider-neutral terms."""

    # Empty when the provider echoes only its own message id (WhatsApp without
    # biz_opaque_callback_data): the platform looks the delivery up by it.
    delivery_id: str
    status: ReceiptStatus
    # For tenants: never provider internals.
    reason: str
    # The channel whose provider API sent it; it may touch no other.
    channel: str
    # The provider's id of the message (MessageSid, CallSid, wamid), if it gives one.
    provider_message_id: str = ""
    # The address the provider says it delivered to, where it says so (email).
    recipient: str = ""


@dataclass(frozen=True)
class OneUseToken:
    """A signature token that must be spent once (Mailgun signs no body)."""

    value: str
    # When a signature with it is stale anyway, so it may be forgotten.
    expires_at: datetime


@dataclass(frozen=True)
class TemplateReview:
    """A provider's verdict on a submitted template (WhatsApp)."""

    name: str
    # "approved", "rejected" or "pending".
    status: str
    reason: str


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook as it arrived: raw body, lower-cased headers, path with query."""

    body: bytes
    headers: Mapping[str, str]
    path: str


@dataclass(frozen=True)
class SignedWebhook:
    """What a webhook whose signature checked out says."""

    receipts: list[ProviderReceipt] = field(default_factory=list)
    # Spent in the transaction that records the receipts, so a failed commit
    # leaves it for the provider's retry.
    token: OneUseToken | None = None
    template_reviews: list[TemplateReview] = field(default_factory=list)


class ReceiptRefused(Exception):
    """A webhook not to be trusted. `reason` is an UPPER_SNAKE error reason;
    `receipts` are what it claimed, for the log line (never the body)."""

    def __init__(
        self, reason: str, message: str, receipts: list[ProviderReceipt] | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.receipts = list(receipts or [])


class MalformedWebhook(Exception):
    """A correctly signed webhook whose body cannot be read (`field` names where)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def bad_signature() -> ReceiptRefused:
    return ReceiptRefused("INVALID_SIGNATURE", "webhook signature is missing or wrong")


class WebhookHandler(Protocol):
    """One provider's callback route: checks the signature, parses receipts.
    Raises ReceiptRefused or MalformedWebhook."""

    def parse(self, request: WebhookRequest, *, now: datetime) -> SignedWebhook: ...

    def verify_subscription(self, *, mode: str, verify_token: str, challenge: str) -> str | None:
        """A subscription handshake (Meta's GET): the challenge to echo, or
        ReceiptRefused; None when the provider has no handshake."""
        ...
