"""The one small interface every provider adapter implements."""

from dataclasses import dataclass
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

    @property
    def idempotency_key(self) -> str:
        """Provider-side key: one channel of one notification is sent once."""
        return f"{self.notification_id}:{self.channel}"


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
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.detail = detail
        self.retry_after = retry_after


class Provider(Protocol):
    async def send(self, message: OutboundMessage) -> ProviderAccepted: ...
