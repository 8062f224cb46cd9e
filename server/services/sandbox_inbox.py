"""What the provider sandbox received for a tenant's notifications, asked of
the sandbox's inspection API (sandbox/app.py) and matched to the tenant's own
deliveries by recipient and provider message id, so one tenant never sees
another's messages."""

import asyncio
from dataclasses import dataclass

import aiohttp

from server.domain.errors import ClarionError, ErrorKind, not_found
from server.domain.ids import looks_like_id
from server.domain.roles import Role, allows, role_forbidden
from server.domain.sessions import carries_invitation
from server.store import notifications as notifications_store
from server.store.db import Database
from server.store.sent_messages import SentMessage, sent_messages

_TIMEOUT = aiohttp.ClientTimeout(total=5)
# Without a notification: the messages of the tenant's newest deliveries.
RECENT_DELIVERIES = 50


@dataclass(frozen=True)
class SandboxMessageView:
    notification_id: str
    channel: str
    to: str
    subject: str
    body: str
    # ISO 8601, as the sandbox stamps it.
    received_at: str
    provider_message_id: str


def _bare(message_id: str) -> str:
    # SMTP Message-IDs are stored with their angle brackets, the sandbox's without.
    return message_id.strip().strip("<>")


class SandboxInbox:
    def __init__(self, db: Database, sandbox_url: str | None) -> None:
        """`sandbox_url` is None when the platform runs against real providers."""
        self._db = db
        self._sandbox_url = sandbox_url
        self._session: aiohttp.ClientSession | None = None

    async def messages(
        self, *, tenant_id: str, role: Role, notification_id: str
    ) -> list[SandboxMessageView]:
        """One notification's messages, or ("" for notification_id) those of
        the tenant's newest deliveries; newest first."""
        if self._sandbox_url is None:
            raise ClarionError(
                ErrorKind.NOT_FOUND,
                "SANDBOX_DISABLED",
                "this platform sends through real providers, so there is no sandbox inbox; "
                "look in the recipient's own inbox or phone",
            )
        owner = allows(role, Role.OWNER)
        async with self._db.transaction() as session:
            if notification_id:
                if not looks_like_id("ntf", notification_id):
                    raise not_found("notification")
                record = await notifications_store.get_notification(
                    session, tenant_id=tenant_id, notification_id=notification_id
                )
                if record is None:
                    raise not_found("notification")
                if carries_invitation(record.idempotency_key) and not owner:
                    raise role_forbidden(role, Role.OWNER)
            sent = await sent_messages(
                session,
                tenant_id=tenant_id,
                notification_id=notification_id or None,
                limit=RECENT_DELIVERIES,
            )
        if not owner:
            sent = [s for s in sent if not carries_invitation(s.idempotency_key)]
        return await self._match(sent)

    async def _match(self, sent: list[SentMessage]) -> list[SandboxMessageView]:
        addresses = sorted({(s.channel, s.address) for s in sent})
        received = await asyncio.gather(*(self._received(c, a) for c, a in addresses))
        by_id = {
            (channel, _bare(str(m.get("provider_message_id", "")))): m
            for (channel, _), messages in zip(addresses, received, strict=True)
            for m in messages
        }
        found = []
        for delivery in sent:
            message = by_id.get((delivery.channel, _bare(delivery.provider_message_id)))
            if message is not None:
                found.append(
                    SandboxMessageView(
                        notification_id=delivery.notification_id,
                        channel=delivery.channel,
                        to=str(message.get("to", "")),
                        subject=str(message.get("subject") or ""),
                        body=str(message.get("body", "")),
                        received_at=str(message.get("received_at", "")),
                        provider_message_id=delivery.provider_message_id,
                    )
                )
        return sorted(found, key=lambda m: m.received_at, reverse=True)

    async def _received(self, channel: str, address: str) -> list[dict[str, object]]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        try:
            async with self._session.get(
                f"{self._sandbox_url}/sandbox/api/messages",
                params={"channel": channel, "to": address, "limit": "500"},
            ) as response:
                response.raise_for_status()
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError):
            raise ClarionError(
                ErrorKind.UNAVAILABLE,
                "SANDBOX_UNAVAILABLE",
                "the provider sandbox did not answer; retry in a few seconds",
                retry_after_seconds=2,
            ) from None
        return list(body.get("messages", []))
