"""Tenant status webhooks, without I/O: the event types a tenant can
subscribe to, which endpoint URLs and addresses are allowed, the retry
schedule, and signing (Standard Webhooks, via the `standardwebhooks` package)."""

import base64
import ipaddress
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import SplitResult, urlsplit

from standardwebhooks import Webhook

from server.domain.errors import ClarionError, invalid


class EventType(StrEnum):
    DELIVERY_QUEUED = "delivery.queued"
    DELIVERY_SENT = "delivery.sent"
    DELIVERY_DELIVERED = "delivery.delivered"
    DELIVERY_FAILED = "delivery.failed"
    BULK_COMPLETED = "bulk.completed"
    ALERT_FIRED = "alert.fired"
    ALERT_RESOLVED = "alert.resolved"


def delivery_event(status: str) -> EventType:
    return EventType(f"delivery.{status}")


MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 1024
# Endpoints per tenant: one per consuming service and environment, with room to migrate.
MAX_ENDPOINTS = 20
SECRET_PREFIX = "whsec_"
# After a rotation the old secret keeps signing (beside the new one) this long.
ROTATION_OVERLAP = timedelta(hours=24)


def check_event_types(values: Sequence[str]) -> list[str]:
    """The subscribed types, deduplicated in the given order."""
    known = ", ".join(t.value for t in EventType)
    if not values:
        raise invalid(
            "INVALID_EVENT_TYPE", "event_types", f"event_types must name at least one of: {known}"
        )
    types: list[str] = []
    for value in values:
        if value not in EventType.__members__.values():
            raise invalid(
                "INVALID_EVENT_TYPE",
                "event_types",
                f"event_types has unknown type {value[:64]!r}; known types: {known}",
            )
        if value not in types:
            types.append(value)
    return types


def check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise invalid(
            "INVALID_ARGUMENT",
            "description",
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters",
        )
    return description


def url_refused(message: str) -> ClarionError:
    return invalid("INVALID_WEBHOOK_URL", "url", message)


def check_url(url: str, *, allow_private: bool) -> SplitResult:
    """The parsed URL if its form is acceptable; where it resolves to is
    checked separately (refused_address), at registration and each delivery."""
    if not url or len(url) > MAX_URL_LENGTH:
        raise url_refused(f"url must be 1 to {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise url_refused(f"url is not a valid URL: {exc}") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise url_refused("url must start with https:// (plain http is not accepted)")
    if not parts.hostname:
        raise url_refused("url must name a host, e.g. https://hooks.example.com/clarion")
    if parts.username is not None or parts.password is not None:
        raise url_refused("url must not carry a user name or password; authenticate by signature")
    if port == 0:
        raise url_refused("url has port 0; name a real port or none")
    return parts


# Ranges a public endpoint never resolves to, beyond what `ipaddress` flags
# (is_private covers RFC 1918, ULA, documentation and benchmarking ranges).
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def refused_address(address: str) -> str | None:
    """Why this resolved address may not be called ("" never), or None when
    it is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return refused_address(str(embedded))
        if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64 of an IPv4 address
            return refused_address(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    checks = [
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a carrier-grade NAT address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    ]
    for hit, what in checks:
        if hit:
            return what
    return None


def check_addresses(host: str, addresses: Sequence[str]) -> None:
    """Refuses a host any of whose addresses is not public: a name with one
    private address among public ones could be steered to it."""
    host = host[:100]
    if not addresses:
        raise url_refused(f"url's host {host!r} does not resolve to any address")
    for address in addresses:
        why = refused_address(address)
        if why:
            raise url_refused(
                f"url's host {host!r} resolves to {address}, {why}; webhook endpoints must be "
                "public https URLs (operators may allow private ones for development with "
                "CLARION_ALLOW_PRIVATE_WEBHOOKS=true)"
            )


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature_header(
    secrets_in_use: Sequence[str], *, message_id: str, timestamp: datetime, body: str
) -> str:
    """webhook-signature: one `v1,<base64>` per secret, space separated (the
    spec's form for rotation), so the receiver accepts either."""
    return " ".join(
        Webhook(secret).sign(msg_id=message_id, timestamp=timestamp, data=body)
        for secret in secrets_in_use
    )


def event_body(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    """The JSON each endpoint receives, serialised once so every retry signs
    the same bytes."""
    return json.dumps(
        {
            "type": event_type,
            "timestamp": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "data": data,
        },
        separators=(",", ":"),
    )


def next_attempt_delay(schedule: Sequence[float], attempts_made: int) -> timedelta | None:
    """Wait before the next attempt after `attempts_made` ones, or None when
    the schedule is used up (schedule[0] is the first attempt's delay)."""
    if attempts_made >= len(schedule):
        return None
    return timedelta(seconds=schedule[attempts_made])
