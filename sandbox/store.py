"""In-memory record of everything the sandbox received and sent."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Callback:
    """One outgoing webhook (status callback / event), updated as attempts happen."""

    url: str
    event: str
    payload: Any
    headers: dict[str, str]
    sent_at: str = field(default_factory=now_iso)
    response_status: int | None = None
    attempts: int = 0
    attempt_statuses: list[int | str] = field(default_factory=list)
    error: str | None = None
    message_id: str | None = None
    response_body: str | None = None

    def to_json(self) -> JSON:
        return {
            "url": self.url,
            "event": self.event,
            "payload": self.payload,
            "headers": self.headers,
            "response_status": self.response_status,
            "sent_at": self.sent_at,
            "attempts": self.attempts,
            "attempt_statuses": self.attempt_statuses,
            "error": self.error,
            "message_id": self.message_id,
            "response_body": self.response_body,
        }


@dataclass
class Message:
    id: str
    channel: str  # email | sms | voice | slack | whatsapp
    to: str
    from_: str | None
    body: str
    provider_message_id: str
    request: JSON
    subject: str | None = None
    html: str | None = None
    status: str = "accepted"
    error_code: int | None = None
    received_at: str = field(default_factory=now_iso)
    callbacks: list[Callback] = field(default_factory=list)
    provider: str = ""

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "channel": self.channel,
            "provider": provider_of(self.channel, self.provider),
            "to": self.to,
            "from": self.from_,
            "subject": self.subject,
            "body": self.body,
            "html": self.html,
            "provider_message_id": self.provider_message_id,
            "status": self.status,
            "error_code": self.error_code,
            "received_at": self.received_at,
            "request": self.request,
            "callbacks": [c.to_json() for c in self.callbacks],
        }


@dataclass
class RequestLog:
    """Every provider call, accepted or not, so tests can count real attempts."""

    id: str
    channel: str
    operation: str
    to: str | None
    outcome: str  # accepted | rejected | transient
    status_code: int
    error: Any = None
    message_id: str | None = None
    received_at: str = field(default_factory=now_iso)
    provider: str = ""

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "channel": self.channel,
            "provider": provider_of(self.channel, self.provider),
            "operation": self.operation,
            "to": self.to,
            "outcome": self.outcome,
            "status_code": self.status_code,
            "error": self.error,
            "message_id": self.message_id,
            "received_at": self.received_at,
        }


class Store:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.messages: list[Message] = []
        self.requests: list[RequestLog] = []
        self.callbacks: list[Callback] = []
        self._by_provider_id: dict[str, Message] = {}

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def add_message(
        self,
        *,
        channel: str,
        to: str,
        from_: str | None,
        body: str,
        provider_message_id: str,
        request: JSON,
        subject: str | None = None,
        html: str | None = None,
        status: str = "accepted",
        provider: str = "",
    ) -> Message:
        message = Message(
            id=self._next_id("msg"),
            channel=channel,
            to=to,
            from_=from_,
            body=body,
            provider_message_id=provider_message_id,
            request=request,
            subject=subject,
            html=html,
            status=status,
            provider=provider,
        )
        self.messages.append(message)
        self._by_provider_id[provider_message_id] = message
        return message

    def log_request(
        self,
        *,
        channel: str,
        operation: str,
        to: str | None,
        outcome: str,
        status_code: int,
        error: Any = None,
        message_id: str | None = None,
        provider: str = "",
    ) -> RequestLog:
        entry = RequestLog(
            id=self._next_id("req"),
            channel=channel,
            operation=operation,
            to=to,
            outcome=outcome,
            status_code=status_code,
            error=error,
            message_id=message_id,
            provider=provider,
        )
        self.requests.append(entry)
        return entry

    def add_callback(self, callback: Callback, message: Message | None) -> None:
        self.callbacks.append(callback)
        if message is not None:
            callback.message_id = message.id
            message.callbacks.append(callback)

    def get(self, message_id: str) -> Message | None:
        for message in self.messages:
            if message.id == message_id or message.provider_message_id == message_id:
                return message
        return None

    def by_provider_id(self, provider_message_id: str) -> Message | None:
        return self._by_provider_id.get(provider_message_id)

    def find_messages(
        self,
        channel: str | None = None,
        to: str | None = None,
        limit: int = 100,
        provider: str | None = None,
    ) -> list[Message]:
        found = [
            m
            for m in reversed(self.messages)
            if (not channel or m.channel == channel)
            and (not to or _same(m.to, to))
            and (not provider or provider_of(m.channel, m.provider) == provider)
        ]
        return found[:limit]

    def find_requests(
        self,
        channel: str | None = None,
        to: str | None = None,
        outcomes: set[str] | None = None,
        limit: int = 1000,
        provider: str | None = None,
    ) -> list[RequestLog]:
        found = [
            r
            for r in reversed(self.requests)
            if (not channel or r.channel == channel)
            and (not provider or provider_of(r.channel, r.provider) == provider)
            and (not to or (r.to is not None and _same(r.to, to)))
            and (outcomes is None or r.outcome in outcomes)
        ]
        return found[:limit]

    def clear(self) -> None:
        self.messages.clear()
        self.requests.clear()
        self.callbacks.clear()
        self._by_provider_id.clear()


# The provider a channel's records come from when the handler names none
# (the first provider of each channel predates the field).
_DEFAULT_PROVIDER = {"sms": "twilio", "voice": "twilio", "email": "smtp"}


def provider_of(channel: str, provider: str) -> str:
    return provider or _DEFAULT_PROVIDER.get(channel, channel)


def _same(a: str, b: str) -> bool:
    # Email addresses compare case-insensitively; phone numbers are unaffected.
    return a.strip().lower() == b.strip().lower()
