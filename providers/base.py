"""The small interface every provider adapter implements."""

from dataclasses import dataclass
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
    # Where the provider should post status callbacks, for those that take one.
    status_callback_url: str = ""
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
