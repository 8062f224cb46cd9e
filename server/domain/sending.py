"""Send policy: turns a tenant's send request into deliveries, or refuses it
with the error the tenant needs to fix it. Single and bulk sends share it."""

import json
from dataclasses import dataclass, field
from typing import Any

from server.domain.channels import DELIVERABLE_CHANNELS, POLICIES, Channel, parse_channels
from server.domain.errors import ClarionError, ErrorKind, invalid
from server.domain.recipients import normalize_email, normalize_phone
from server.domain.routing import (
    Priority,
    RoutingPolicy,
    RoutingRequest,
    check_routing,
    parse_priority,
)

MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_SUBJECT_LENGTH = 998  # RFC 5322 line limit
# A send's template variables, as compact UTF-8 JSON: stored with every
# notification and rendered per recipient, so one tenant's payloads stay small.
MAX_DATA_BYTES = 32 * 1024


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
    # Instead of `channels`: try channels in order (see domain.routing).
    routing: RoutingRequest | None = None
    # "high" without routing or channels uses the tenant's default routing.
    priority: str = ""


@dataclass
class BulkRow:
    """One recipient of a bulk send or upload, at its 0-based `index`."""

    index: int
    email: str = ""
    phone: str = ""
    slack_user_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContentPlan:
    """What every recipient of a send gets: the channels and the template or raw content."""

    channels: list[Channel]
    subject: str
    body: str
    template_id: str

    def raw_content(self, channel: Channel) -> dict[str, str]:
        """What a raw-mode delivery on `channel` sends."""
        if POLICIES[channel].supports_subject:
            return {"subject": self.subject, "body": self.body}
        return {"body": self.body}


@dataclass
class PlannedDelivery:
    channel: Channel
    # The address on this channel: an email address, E.164 number or Slack id.
    address: str


@dataclass(frozen=True)
class RecipientPlan:
    deliveries: list[PlannedDelivery]
    # The fields as given, with the ones in use normalized.
    fields: dict[str, str]

    @property
    def key(self) -> str:
        """Identifies the recipient across sends, for sticky template rollouts."""
        return "|".join(f"{k}={v}" for k, v in sorted(self.fields.items()))


@dataclass
class SendPlan:
    content: ContentPlan
    recipient: RecipientPlan
    data: dict[str, Any]
    idempotency_key: str
    # Set when the channels are tried in order rather than all at once.
    routing: RoutingPolicy | None = None
    # `priority: "high"`: its work goes ahead of everything else's.
    urgent: bool = False


def wants_default_routing(request: SendRequest) -> bool:
    """A high-priority send naming neither routing nor channels."""
    priority = parse_priority(request.priority, "priority")
    return priority is Priority.HIGH and request.routing is None and not request.channels


def plan_send(
    request: SendRequest,
    deliverable: frozenset[Channel] = DELIVERABLE_CHANNELS,
    *,
    default_routing: RoutingPolicy | None = None,
) -> SendPlan:
    """Checks a single send, in the order a tenant fixes things: channels,
    template policy, content, availability, then the recipient. With
    routing, every step's channel is checked as if all were sent."""
    check_idempotency_key(request.idempotency_key)
    routing = plan_routing(
        channels=request.channels,
        routing=request.routing,
        use_default=wants_default_routing(request),
        default=default_routing,
        path="notification.",
    )
    content = plan_content(
        channels=[c.value for c in routing.channels] if routing else request.channels,
        subject=request.subject,
        body=request.body,
        template_id=request.template_id,
        deliverable=deliverable,
        path="notification.",
    )
    recipient = plan_recipient(
        content.channels,
        email=request.email,
        phone=request.phone,
        slack_user_id=request.slack_user_id,
        path="recipient.",
    )
    check_data(request.data, "notification.data")
    urgent = parse_priority(request.priority, "priority") is Priority.HIGH
    return SendPlan(content, recipient, request.data, request.idempotency_key, routing, urgent)


def plan_routing(
    *,
    channels: list[str],
    routing: RoutingRequest | None,
    use_default: bool = False,
    default: RoutingPolicy | None = None,
    path: str = "",
) -> RoutingPolicy | None:
    """The routing policy of a send or bulk, if it has one."""
    if routing is not None and channels:
        raise invalid(
            "ROUTING_CONFLICT",
            f"{path}routing",
            f"give {path}channels or {path}routing, not both: "
            f"{path}routing.channels takes the place of {path}channels",
        )
    if routing is not None:
        return check_routing(routing, f"{path}routing")
    if use_default:
        if default is None:
            raise invalid(
                "ROUTING_DEFAULT_MISSING",
                f"{path}routing",
                f'priority "high" without {path}routing or {path}channels uses the '
                "default routing, and none is set; set it with PUT /api/v1/routing/default",
            )
        return default
    return None


def check_idempotency_key(key: str) -> None:
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise invalid(
            "INVALID_ARGUMENT",
            "idempotency_key",
            f"idempotency_key is longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters",
        )


def check_data(data: dict[str, Any], path: str) -> None:
    size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_DATA_BYTES:
        raise _data_too_large(path, f"{size} bytes")


def check_data_wire_size(size: int, path: str) -> None:
    """A bound on data's protobuf size, checked before it is decoded into
    Python objects (which took over a second per million numbers). Protobuf
    is at most about six times the compact JSON (a number in a list: 2
    bytes of JSON, 11 of protobuf), so past eight times the JSON is too large."""
    if size > 8 * MAX_DATA_BYTES:
        raise _data_too_large(path, f"more than {MAX_DATA_BYTES} bytes")


def _data_too_large(path: str, size: str) -> ClarionError:
    return invalid(
        "DATA_TOO_LARGE",
        path,
        f"{path} is {size} as JSON; at most {MAX_DATA_BYTES} ({MAX_DATA_BYTES // 1024} KiB)",
    )


def plan_content(
    *,
    channels: list[str],
    subject: str,
    body: str,
    template_id: str,
    deliverable: frozenset[Channel] = DELIVERABLE_CHANNELS,
    path: str = "",
) -> ContentPlan:
    """The request-level checks; `path` prefixes field names in errors."""
    if not channels:
        raise invalid(
            "INVALID_CHANNEL",
            f"{path}channels",
            f"{path}channels is empty; give at least one of: "
            + ", ".join(c.value for c in Channel),
        )
    try:
        parsed = parse_channels(channels)
    except ValueError as exc:
        raise invalid("INVALID_CHANNEL", f"{path}channels", str(exc)) from None

    template_channels = [c for c in parsed if POLICIES[c].template_required]
    if template_channels and not template_id:
        names = ", ".join(c.value for c in template_channels)
        raise invalid(
            "TEMPLATE_REQUIRED",
            f"{path}template_id",
            f"{path}template_id is required when channels include {names}; "
            "raw body is not allowed there. Create a template and pass its id "
            f"with its variables in {path}data",
        )
    if not template_id:
        _check_raw_content(parsed, subject, body, path)

    unavailable = [c.value for c in parsed if c not in deliverable]
    if unavailable:
        raise ClarionError(
            ErrorKind.FAILED_PRECONDITION,
            "CHANNEL_UNAVAILABLE",
            f"channel(s) {', '.join(unavailable)} cannot be delivered by this deployment; "
            "see `available` in GET /api/v1/channels/capabilities",
        )
    return ContentPlan(parsed, subject, body, template_id)


def _check_raw_content(channels: list[Channel], subject: str, body: str, path: str) -> None:
    if not body.strip():
        raise invalid(
            "BODY_REQUIRED",
            f"{path}body",
            f"{path}body is empty; give the message text, or a template_id",
        )
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise invalid(
            "SUBJECT_TOO_LONG",
            f"{path}subject",
            f"{path}subject is longer than {MAX_SUBJECT_LENGTH} characters",
        )
    # An email header is one line: CR or LF would end it (header injection).
    if any(c in subject for c in "\r\n"):
        raise invalid(
            "SUBJECT_NOT_ONE_LINE",
            f"{path}subject",
            f"{path}subject holds a line break; a subject is one line, so remove CR and LF",
        )
    for channel in channels:
        limit = POLICIES[channel].max_body_length
        if len(body) > limit:
            raise invalid(
                "BODY_TOO_LONG",
                f"{path}body",
                f"{path}body has {len(body)} characters; {channel.value} allows at most {limit}",
            )


def plan_recipient(
    channels: list[Channel],
    *,
    email: str = "",
    phone: str = "",
    slack_user_id: str = "",
    path: str = "recipient.",
) -> RecipientPlan:
    """One delivery per channel, to the normalized address the channel needs."""
    given = {"email": email.strip(), "phone": phone.strip(), "slack_user_id": slack_user_id.strip()}
    normalized: dict[str, str] = {}
    deliveries = []
    for channel in channels:
        name = POLICIES[channel].recipient_field
        if name not in normalized:
            normalized[name] = _normalize(name, given[name], channel, f"{path}{name}")
        deliveries.append(PlannedDelivery(channel, normalized[name]))
    # Keep fields the tenant gave for other channels, as given.
    return RecipientPlan(deliveries, {k: v for k, v in given.items() if v} | normalized)


def _normalize(name: str, value: str, channel: Channel, path: str) -> str:
    if not value:
        raise invalid(
            "RECIPIENT_FIELD_MISSING", path, f"{path} is required for channel {channel.value}"
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
