"""Send policy: turns a tenant's send request into deliveries, or refuses it
with the error the tenant needs to fix it."""

from dataclasses import dataclass, field
from typing import Any

from server.domain.channels import DELIVERABLE_CHANNELS, POLICIES, Channel, parse_channels
from server.domain.errors import ClarionError, ErrorKind, invalid
from server.domain.recipients import normalize_email, normalize_phone

MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_SUBJECT_LENGTH = 998  # RFC 5322 line limit


@dataclass
class SendRequest:
    channels: list[str]
    email: str = ""
    phone: str = ""
    slack_user_id: str = ""
    subject: str = ""
    body: str = ""
    template_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""


@dataclass
class PlannedDelivery:
    channel: Channel
    # The address on this channel: an email address, E.164 number or Slack id.
    address: str


@dataclass
class SendPlan:
    channels: list[Channel]
    deliveries: list[PlannedDelivery]
    recipient: dict[str, str]
    subject: str
    body: str
    template_id: str
    data: dict[str, Any]
    idempotency_key: str

    @property
    def recipient_key(self) -> str:
        """Identifies the recipient across sends, for sticky template rollouts."""
        return "|".join(f"{k}={v}" for k, v in sorted(self.recipient.items()))

    def raw_content(self, channel: Channel) -> dict[str, str]:
        """What a raw-mode delivery on `channel` sends."""
        if POLICIES[channel].supports_subject:
            return {"subject": self.subject, "body": self.body}
        return {"body": self.body}


def plan_send(
    request: SendRequest, deliverable: frozenset[Channel] = DELIVERABLE_CHANNELS
) -> SendPlan:
    """Checks the request against channel policy, in the order a tenant fixes
    things: channels, template policy, content, recipients, availability."""
    if not request.channels:
        raise invalid(
            "INVALID_CHANNEL",
            "notification.channels",
            "notification.channels is empty; give at least one of: "
            + ", ".join(c.value for c in Channel),
        )
    try:
        channels = parse_channels(request.channels)
    except ValueError as exc:
        raise invalid("INVALID_CHANNEL", "notification.channels", str(exc)) from None

    if len(request.idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise invalid(
            "INVALID_ARGUMENT",
            "idempotency_key",
            f"idempotency_key is longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters",
        )

    template_channels = [c for c in channels if POLICIES[c].template_required]
    if template_channels and not request.template_id:
        names = ", ".join(c.value for c in template_channels)
        raise invalid(
            "TEMPLATE_REQUIRED",
            "notification.template_id",
            f"notification.template_id is required when channels include {names}; "
            "raw body is not allowed there. Create a template and pass its id "
            "with its variables in notification.data",
        )
    if not request.template_id:
        _check_raw_content(request, channels)
    deliveries, recipient = _plan_recipients(request, channels)

    unavailable = [c.value for c in channels if c not in deliverable]
    if unavailable:
        raise ClarionError(
            ErrorKind.FAILED_PRECONDITION,
            "CHANNEL_UNAVAILABLE",
            f"channel(s) {', '.join(unavailable)} cannot be delivered by this deployment yet; "
            "see `available` in GET /api/v1/channels/capabilities",
        )
    return SendPlan(
        channels=channels,
        deliveries=deliveries,
        recipient=recipient,
        subject=request.subject,
        body=request.body,
        template_id=request.template_id,
        data=request.data,
        idempotency_key=request.idempotency_key,
    )


def _check_raw_content(request: SendRequest, channels: list[Channel]) -> None:
    if not request.body.strip():
        raise invalid(
            "BODY_REQUIRED",
            "notification.body",
            "notification.body is empty; give the message text, or a template_id",
        )
    if len(request.subject) > MAX_SUBJECT_LENGTH:
        raise invalid(
            "SUBJECT_TOO_LONG",
            "notification.subject",
            f"notification.subject is longer than {MAX_SUBJECT_LENGTH} characters",
        )
    for channel in channels:
        limit = POLICIES[channel].max_body_length
        if len(request.body) > limit:
            raise invalid(
                "BODY_TOO_LONG",
                "notification.body",
                f"notification.body has {len(request.body)} characters; "
                f"{channel.value} allows at most {limit}",
            )


def _plan_recipients(
    request: SendRequest, channels: list[Channel]
) -> tuple[list[PlannedDelivery], dict[str, str]]:
    given = {
        "email": request.email.strip(),
        "phone": request.phone.strip(),
        "slack_user_id": request.slack_user_id.strip(),
    }
    normalized: dict[str, str] = {}
    deliveries = []
    for channel in channels:
        name = POLICIES[channel].recipient_field
        if name not in normalized:
            normalized[name] = _normalize_recipient_field(name, given[name], channel)
        deliveries.append(PlannedDelivery(channel, normalized[name]))
    # Keep fields the tenant gave for other channels, as given.
    recipient = {k: v for k, v in given.items() if v} | normalized
    return deliveries, recipient


def _normalize_recipient_field(name: str, value: str, channel: Channel) -> str:
    path = f"recipient.{name}"
    if not value:
        raise invalid(
            "RECIPIENT_FIELD_MISSING",
            path,
            f"{path} is required for channel {channel.value}",
        )
    try:
        if name == "email":
            return normalize_email(value)
        if name == "phone":
            return normalize_phone(value)
    except ValueError as exc:
        raise invalid("RECIPIENT_FIELD_MISSING", path, f"{path} {exc}") from None
    if not value.isalnum() or len(value) > 64:
        raise invalid(
            "RECIPIENT_FIELD_MISSING", path, f"{path} must be a Slack member id such as U123456"
        )
    return value
