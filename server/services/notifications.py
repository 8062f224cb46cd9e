"""Sending notifications and reading them back."""

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.channels import Channel
from server.domain.errors import ClarionError, ErrorKind, invalid, not_found
from server.domain.ids import looks_like_id, new_id
from server.domain.sending import SendPlan, SendRequest, plan_send
from server.domain.status import DeliveryStatus
from server.services.dispatch import Dispatcher
from server.services.idempotency import Idempotency
from server.services.templates import Templates
from server.store import notifications as store
from server.store.db import Database
from server.store.notifications import NewDelivery, NotificationRecord
from workflows.contracts import DeliveryRef

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Accepted:
    notification_id: str
    status: DeliveryStatus


@dataclass(frozen=True)
class NotificationPage:
    notifications: list[NotificationRecord]
    next_page_token: str


def request_hash(request: SendRequest) -> str:
    """Fingerprint of what was asked, to tell a replay from a reused key."""
    fields = asdict(request)
    fields.pop("idempotency_key")
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Notifications:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        templates: Templates,
        idempotency: Idempotency,
    ) -> None:
        self._db = db
        self._dispatcher = dispatcher
        self._templates = templates
        self._idempotency = idempotency

    async def send(self, *, tenant_id: str, request: SendRequest) -> Accepted:
        plan = plan_send(request)
        async with self._idempotency.claim(
            tenant_id=tenant_id,
            operation="send",
            key=plan.idempotency_key or None,
            request_hash=request_hash(request),
        ) as claim:
            async with self._db.transaction() as session:
                if claim.replay_id:
                    record = await store.get_notification(
                        session, tenant_id=tenant_id, notification_id=claim.replay_id
                    )
                    assert record is not None
                    notification_id = record.notification_id
                    refs = [DeliveryRef(d.delivery_id, d.channel) for d in record.deliveries]
                else:
                    notification_id, refs = await self._insert(session, tenant_id, plan)
                    await claim.completed(session, notification_id)
        # A replay starts the workflow too, in case the first request died
        # between commit and start; the derived workflow id makes that safe.
        try:
            await self._dispatcher.start_notification(
                notification_id=notification_id, tenant_id=tenant_id, deliveries=refs
            )
        except Exception as exc:
            log.exception("could not start workflow for %s", notification_id)
            raise ClarionError(
                ErrorKind.UNAVAILABLE,
                "DISPATCH_UNAVAILABLE",
                "the notification was stored but could not be queued for delivery; "
                "retry with the same idempotency_key",
            ) from exc
        return Accepted(notification_id, DeliveryStatus.QUEUED)

    async def _insert(
        self, session: AsyncSession, tenant_id: str, plan: SendPlan
    ) -> tuple[str, list[DeliveryRef]]:
        notification_id = new_id("ntf")
        version, contents = await self._contents(session, tenant_id, plan)
        new_deliveries = [
            NewDelivery(new_id("dlv"), d.channel.value, d.address, contents[d.channel])
            for d in plan.deliveries
        ]
        await store.insert_notification(
            session,
            tenant_id=tenant_id,
            notification_id=notification_id,
            channels=[c.value for c in plan.channels],
            recipient=plan.recipient,
            subject=plan.subject,
            body=plan.body,
            template_id=plan.template_id,
            template_version=version,
            data=plan.data,
            idempotency_key=plan.idempotency_key or None,
            new_deliveries=new_deliveries,
            now=datetime.now(UTC),
        )
        return notification_id, [DeliveryRef(d.delivery_id, d.channel) for d in new_deliveries]

    async def _contents(
        self, session: AsyncSession, tenant_id: str, plan: SendPlan
    ) -> tuple[int | None, dict[Channel, dict[str, Any]]]:
        """(template version or None, what each channel's delivery sends)."""
        if not plan.template_id:
            return None, {c: plan.raw_content(c) for c in plan.channels}
        resolved = await self._templates.resolve_for_send(
            session,
            tenant_id=tenant_id,
            template_id=plan.template_id,
            channels=[c.value for c in plan.channels],
            data=plan.data,
            recipient_key=plan.recipient_key,
        )
        return resolved.version, {Channel(c): v for c, v in resolved.content.items()}

    async def get(self, *, tenant_id: str, notification_id: str) -> NotificationRecord:
        if not looks_like_id("ntf", notification_id):
            raise not_found("notification")
        async with self._db.transaction() as session:
            record = await store.get_notification(
                session, tenant_id=tenant_id, notification_id=notification_id
            )
        if record is None:
            raise not_found("notification")
        return record

    async def list_notifications(
        self,
        *,
        tenant_id: str,
        channel: str,
        status: str,
        recipient: str,
        page_size: int,
        page_token: str,
    ) -> NotificationPage:
        if channel and channel not in {c.value for c in Channel}:
            raise invalid(
                "INVALID_ARGUMENT",
                "channel",
                f"unknown channel {channel!r}; use one of: {', '.join(c.value for c in Channel)}",
            )
        if status and status not in {s.value for s in DeliveryStatus}:
            raise invalid(
                "INVALID_ARGUMENT",
                "status",
                "status must be one of: " + ", ".join(s.value for s in DeliveryStatus),
            )
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise invalid(
                "INVALID_ARGUMENT", "page_size", f"page_size must be 1 to {MAX_PAGE_SIZE}"
            )
        limit = page_size or DEFAULT_PAGE_SIZE
        after = _decode_page_token(page_token) if page_token else None
        async with self._db.transaction() as session:
            records = await store.list_notifications(
                session,
                tenant_id=tenant_id,
                channel=channel or None,
                status=status or None,
                recipient=recipient.strip() or None,
                after=after,
                limit=limit + 1,
            )
        next_token = ""
        if len(records) > limit:
            records = records[:limit]
            last = records[-1]
            next_token = _encode_page_token(last.created_at, last.notification_id)
        return NotificationPage(records, next_token)


def _encode_page_token(created_at: datetime, notification_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), notification_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created_at, notification_id = json.loads(raw)
        return datetime.fromisoformat(created_at), str(notification_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise invalid(
            "INVALID_ARGUMENT",
            "page_token",
            "page_token is not one this API returned; pass next_page_token unchanged",
        ) from exc
