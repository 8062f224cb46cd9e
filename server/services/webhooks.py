"""Tenants' status webhook endpoints: registering (with the URL's SSRF
check), listing, rotating secrets, re-enabling, attempts and replays."""

import asyncio
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from server.domain import webhooks as rules
from server.domain.errors import ClarionError, ErrorKind, limit_reached, not_found
from server.domain.ids import looks_like_id, new_id
from server.services.paging import (
    check_page_size,
    decode_page_token,
    decode_position,
    encode_page_token,
    encode_position,
)
from server.store import tenant_webhooks as store
from server.store import tenants as tenant_store
from server.store.db import Database
from server.store.tenant_webhooks import EndpointRecord

# Registration waits this long for the URL's host to resolve.
RESOLVE_SECONDS = 3.0


@dataclass(frozen=True)
class WebhookView:
    """An endpoint as its tenant sees it, without its secrets."""

    webhook_id: str
    url: str
    description: str
    event_types: list[str]
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str
    previous_secret_expires_at: datetime | None


@dataclass(frozen=True)
class WebhookWithSecret:
    webhook: WebhookView
    # Shown only in this answer.
    secret: str


@dataclass(frozen=True)
class AttemptView:
    """One attempt at sending an event to an endpoint."""

    event_id: str
    event_type: str
    attempt: int
    attempted_at: datetime
    http_status: int | None
    error: str
    duration_ms: int
    next_retry_at: datetime | None


def _view(record: EndpointRecord, now: datetime) -> WebhookView:
    expires = record.previous_secret_expires_at
    return WebhookView(
        webhook_id=record.endpoint_id,
        url=record.url,
        description=record.description,
        event_types=record.event_types,
        created_at=record.created_at,
        disabled_at=record.disabled_at,
        disabled_reason=record.disabled_reason,
        previous_secret_expires_at=expires if expires and expires > now else None,
    )


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to now; [] when it does not."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_SECONDS
        )
    except (OSError, TimeoutError, ValueError):
        # ValueError (UnicodeError included): a name that cannot be encoded
        # for DNS, e.g. a label over 63 characters.
        return []
    return sorted({str(info[4][0]) for info in infos})


async def check_endpoint_url(url: str, *, allow_private: bool) -> str:
    """Refuses a URL that is not https or whose host resolves to any
    non-public address (unless private webhooks are allowed)."""
    parts = rules.check_url(url, allow_private=allow_private)
    if not allow_private:
        host = parts.hostname or ""
        rules.check_addresses(host, await resolve(host, parts.port or 443))
    return url


def _webhook_not_found() -> ClarionError:
    return not_found("webhook")


class Webhooks:
    def __init__(self, db: Database, *, allow_private: bool) -> None:
        self._db = db
        self._allow_private = allow_private

    async def create(
        self, *, tenant_id: str, url: str, event_types: list[str], description: str
    ) -> WebhookWithSecret:
        types = rules.check_event_types(event_types)
        description = rules.check_description(description)
        await check_endpoint_url(url, allow_private=self._allow_private)
        secret = rules.new_secret()
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            # Locked, so that concurrent creates are counted one at a time.
            await tenant_store.lock_tenant(session, tenant_id=tenant_id)
            if await store.count_endpoints(session, tenant_id=tenant_id) >= rules.MAX_ENDPOINTS:
                raise limit_reached(
                    "WEBHOOK_LIMIT",
                    f"a tenant may have at most {rules.MAX_ENDPOINTS} webhook endpoints; "
                    "delete one with DELETE /api/v1/webhooks/{webhook_id}",
                )
            record = await store.insert_endpoint(
                session,
                endpoint_id=new_id("whk"),
                tenant_id=tenant_id,
                url=url,
                description=description,
                event_types=types,
                secret=secret,
                now=now,
            )
        return WebhookWithSecret(_view(record, now), secret)

    async def list_webhooks(
        self, *, tenant_id: str, page_size: int, page_token: str
    ) -> tuple[list[WebhookView], str]:
        limit = check_page_size(page_size, default=50, maximum=100)
        after = decode_page_token(page_token) if page_token else None
        async with self._db.transaction() as session:
            records = await store.list_endpoints(
                session, tenant_id=tenant_id, after=after, limit=limit + 1
            )
        now = datetime.now(UTC)
        views = [_view(r, now) for r in records[:limit]]
        if len(records) <= limit:
            return views, ""
        last = records[limit - 1]
        return views, encode_page_token(last.created_at, last.endpoint_id)

    async def get(self, *, tenant_id: str, webhook_id: str) -> WebhookView:
        async with self._db.transaction() as session:
            record = await self._find(session, tenant_id, webhook_id)
        return _view(record, datetime.now(UTC))

    async def delete(self, *, tenant_id: str, webhook_id: str) -> WebhookView:
        async with self._db.transaction() as session:
            record = await self._find(session, tenant_id, webhook_id)
            await store.delete_endpoint(session, tenant_id=tenant_id, endpoint_id=webhook_id)
        return _view(record, datetime.now(UTC))

    async def rotate_secret(self, *, tenant_id: str, webhook_id: str) -> WebhookWithSecret:
        self._check_id(webhook_id)
        secret = rules.new_secret()
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            record = await store.rotate_secret(
                session,
                tenant_id=tenant_id,
                endpoint_id=webhook_id,
                secret=secret,
                overlap_until=now + rules.ROTATION_OVERLAP,
            )
        if record is None:
            raise _webhook_not_found()
        return WebhookWithSecret(_view(record, now), secret)

    async def enable(self, *, tenant_id: str, webhook_id: str) -> WebhookView:
        self._check_id(webhook_id)
        async with self._db.transaction() as session:
            record = await store.enable_endpoint(
                session, tenant_id=tenant_id, endpoint_id=webhook_id
            )
        if record is None:
            raise _webhook_not_found()
        return _view(record, datetime.now(UTC))

    async def attempts(
        self, *, tenant_id: str, webhook_id: str, page_size: int, page_token: str
    ) -> tuple[list[AttemptView], str]:
        limit = check_page_size(page_size, default=50, maximum=100)
        before = None
        if page_token:
            (position,) = decode_position(
                page_token, lambda p: len(p) == 1 and type(p[0]) is int and p[0] > 0
            )
            before = int(str(position))
        async with self._db.transaction() as session:
            await self._find(session, tenant_id, webhook_id)
            records = await store.list_attempts(
                session, tenant_id=tenant_id, endpoint_id=webhook_id, before=before, limit=limit + 1
            )
        views = [
            AttemptView(
                event_id=r.event_id,
                event_type=r.event_type,
                attempt=r.attempt,
                attempted_at=r.attempted_at,
                http_status=r.http_status,
                error=r.error,
                duration_ms=r.duration_ms,
                next_retry_at=r.next_retry_at,
            )
            for r in records[:limit]
        ]
        if len(records) <= limit:
            return views, ""
        return views, encode_position([records[limit - 1].attempt_id])

    async def replay(self, *, tenant_id: str, webhook_id: str, event_id: str) -> None:
        """Sends the event to the endpoint again, from a first attempt."""
        if not looks_like_id("evt", event_id):
            raise not_found("event")
        async with self._db.transaction() as session:
            await self._find(session, tenant_id, webhook_id)
            message = await store.latest_message(
                session, tenant_id=tenant_id, endpoint_id=webhook_id, event_id=event_id
            )
            if message is None:
                raise not_found("event")
            if message.state == store.PENDING:
                raise ClarionError(
                    ErrorKind.FAILED_PRECONDITION,
                    "WEBHOOK_EVENT_PENDING",
                    "this event is still being sent to the endpoint (see its attempts); "
                    "replay it once it was delivered or failed",
                )
            await store.replay_message(
                session, message_id=message.message_id, now=datetime.now(UTC)
            )

    @staticmethod
    def _check_id(webhook_id: str) -> None:
        if not looks_like_id("whk", webhook_id):
            raise _webhook_not_found()

    async def _find(self, session: AsyncSession, tenant_id: str, webhook_id: str) -> EndpointRecord:
        self._check_id(webhook_id)
        record = await store.get_endpoint(session, tenant_id=tenant_id, endpoint_id=webhook_id)
        if record is None:
            raise _webhook_not_found()
        return record
