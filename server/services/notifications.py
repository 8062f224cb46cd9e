"""Sending notifications and reading them back."""

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.workflows import DeliveryRef
from server.domain.channels import Channel
from server.domain.errors import invalid, not_found
from server.domain.ids import looks_like_id, new_id
from server.domain.routing import RoutingPolicy, StepOutcome
from server.domain.sending import (
    ContentPlan,
    RecipientPlan,
    SendPlan,
    SendRequest,
    plan_send,
    wants_default_routing,
)
from server.domain.status import DeliveryStatus
from server.services.dispatch import Outbox, notification_start, routing_plan
from server.services.idempotency import Idempotency
from server.services.paging import check_page_size, decode_page_token, encode_page_token
from server.services.routing import RoutingDefaults
from server.services.templates import LoadedTemplate, Templates
from server.store import notifications as store
from server.store import routing as routing_store
from server.store.db import Database
from server.store.notifications import NewDelivery, NewNotification, NotificationRecord
from server.store.routing import NewRoutingStep, RoutingStepRecord

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Accepted:
    notification_id: str
    status: DeliveryStatus


@dataclass(frozen=True)
class DeliveryEventView:
    kind: str
    status: str
    detail: str
    occurred_at: datetime


@dataclass(frozen=True)
class DeliveryView:
    channel: str
    status: DeliveryStatus
    attempts: int
    reason: str
    updated_at: datetime
    # Filled only for one notification's GET.
    history: list[DeliveryEventView]
    # What the channel sends, rendered: subject, body, html_body (WhatsApp:
    # body and template parameters).
    content: dict[str, Any]


@dataclass(frozen=True)
class RoutingStepView:
    channel: str
    outcome: StepOutcome
    reason: str
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class NotificationView:
    """A notification as its tenant sees it, with its routing steps (empty
    when not routed, and in lists)."""

    notification_id: str
    status: DeliveryStatus
    channels: list[str]
    recipient: dict[str, str]
    template_id: str
    template_version: int | None
    bulk_id: str | None
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    deliveries: list[DeliveryView]
    # The routing policy and its "source"; None when not routed.
    routing: dict[str, Any] | None
    steps: list[RoutingStepView]


def notification_view(
    record: NotificationRecord, steps: list[RoutingStepRecord] | None = None
) -> NotificationView:
    return NotificationView(
        notification_id=record.notification_id,
        status=record.status,
        channels=list(record.channels),
        recipient=dict(record.recipient),
        template_id=record.template_id,
        template_version=record.template_version,
        bulk_id=record.bulk_id,
        idempotency_key=record.idempotency_key,
        created_at=record.created_at,
        updated_at=record.updated_at,
        deliveries=[
            DeliveryView(
                channel=d.channel,
                status=d.status,
                attempts=d.attempts,
                reason=d.reason,
                updated_at=d.updated_at,
                history=[
                    DeliveryEventView(e.kind, e.status, e.detail, e.occurred_at) for e in d.history
                ],
                content=dict(d.content),
            )
            for d in record.deliveries
        ],
        routing=record.routing,
        steps=[
            RoutingStepView(s.channel, s.outcome, s.reason, s.started_at, s.finished_at)
            for s in steps or []
        ],
    )


@dataclass(frozen=True)
class NotificationPage:
    notifications: list[NotificationView]
    next_page_token: str


def build_notification(
    *,
    tenant_id: str,
    content: ContentPlan,
    recipient: RecipientPlan,
    data: dict[str, Any],
    template: LoadedTemplate | None,
    idempotency_key: str | None = None,
    bulk_id: str | None = None,
    row_index: int | None = None,
    routing: RoutingPolicy | None = None,
    routing_source: str = "request",
) -> NewNotification:
    """One notification, with what each channel's delivery will send. Raises
    a TemplateError when the data does not fit the template. A routed one
    gets its first step's delivery; every step's content is rendered now."""
    channels = [c.value for c in content.channels]
    version = None
    if template is not None:
        resolved = template.render(channels, data, recipient.key)
        version, contents = resolved.version, resolved.content
    else:
        contents = {c.value: content.raw_content(c) for c in content.channels}
    deliveries = [
        NewDelivery(new_id("dlv"), d.channel.value, d.address, contents[d.channel.value])
        for d in recipient.deliveries
    ]
    steps: list[NewRoutingStep] = []
    if routing is not None:
        steps = [
            NewRoutingStep(i, d.channel, d.address, d.content, d.delivery_id if i == 0 else None)
            for i, d in enumerate(deliveries)
        ]
        deliveries = deliveries[:1]
    return NewNotification(
        notification_id=new_id("ntf"),
        tenant_id=tenant_id,
        channels=channels,
        recipient=recipient.fields,
        subject=content.subject,
        body=content.body,
        template_id=content.template_id,
        template_version=version,
        data=data,
        idempotency_key=idempotency_key,
        bulk_id=bulk_id,
        row_index=row_index,
        deliveries=deliveries,
        routing=None if routing is None else routing.as_json() | {"source": routing_source},
        routing_steps=steps,
    )


def request_hash(request: Any) -> str:
    """Fingerprint of what was asked, to tell a replay from a reused key."""
    fields = asdict(request)
    fields.pop("idempotency_key")
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Notifications:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        templates: Templates,
        idempotency: Idempotency,
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._templates = templates
        self._idempotency = idempotency
        self.routing_defaults = RoutingDefaults(db)

    async def send(self, *, tenant_id: str, request: SendRequest) -> Accepted:
        default = None
        if wants_default_routing(request):
            async with self._db.transaction() as session:
                default = await RoutingDefaults.load(session, tenant_id=tenant_id)
        plan = plan_send(request, default_routing=default)
        async with self._idempotency.claim(
            tenant_id=tenant_id,
            operation="send",
            key=request.idempotency_key or None,
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
                    routing = routing_plan(record.routing)
                else:
                    notification_id, refs = await self._insert(
                        session, tenant_id, plan, request.routing is not None
                    )
                    routing = routing_plan(
                        plan.routing.as_json() if plan.routing is not None else None
                    )
                    await claim.completed(session, notification_id)
        # Committed with its outbox row: answer now and start the workflow
        # right after. Waiting for Temporal was the slowest part of the answer
        # under load (p99 ~80 ms), and a Temporal outage now delays delivery
        # instead of failing the send. A replay dispatches too (harmless: the
        # workflow id is derived from the notification).
        self._outbox.start_notification_soon(
            notification_id=notification_id,
            tenant_id=tenant_id,
            deliveries=refs,
            routing=routing,
            urgent=plan.urgent,
        )
        return Accepted(notification_id, DeliveryStatus.QUEUED)

    async def _insert(
        self, session: AsyncSession, tenant_id: str, plan: SendPlan, request_routing: bool
    ) -> tuple[str, list[DeliveryRef]]:
        content = plan.content
        template = None
        if content.template_id:
            template = await self._templates.load_for_send(
                session,
                tenant_id=tenant_id,
                template_id=content.template_id,
                channels=[c.value for c in content.channels],
            )
        row = build_notification(
            tenant_id=tenant_id,
            content=content,
            recipient=plan.recipient,
            data=plan.data,
            template=template,
            idempotency_key=plan.idempotency_key or None,
            routing=plan.routing,
            routing_source="request" if request_routing else "default",
        )
        # With its workflow's outbox row, in the same statement.
        await store.insert_notifications(
            session,
            [row],
            now=datetime.now(UTC),
            starts=[notification_start(row.notification_id, urgent=plan.urgent)],
        )
        return row.notification_id, [DeliveryRef(d.delivery_id, d.channel) for d in row.deliveries]

    async def get(self, *, tenant_id: str, notification_id: str) -> NotificationView:
        if not looks_like_id("ntf", notification_id):
            raise not_found("notification")
        # One statement, so one snapshot: the status and the deliveries agree.
        async with self._db.transaction(one_statement=True) as session:
            record = await store.get_notification(
                session, tenant_id=tenant_id, notification_id=notification_id
            )
        steps: list[RoutingStepRecord] = []
        if record is not None and record.routing is not None:
            # A routed one's steps must agree with it too: both again, in one
            # snapshot (a statement more, for routed notifications only).
            async with self._db.transaction(snapshot=True) as session:
                record = await store.get_notification(
                    session, tenant_id=tenant_id, notification_id=notification_id
                )
                found = await routing_store.steps_of(session, notification_ids=[notification_id])
                steps = found.get(notification_id, [])
        if record is None:
            raise not_found("notification")
        return notification_view(record, steps)

    async def list_notifications(
        self,
        *,
        tenant_id: str,
        channel: str,
        status: str,
        recipient: str,
        page_size: int,
        page_token: str,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> NotificationPage:
        if created_after and created_before and created_after >= created_before:
            raise invalid(
                "INVALID_ARGUMENT",
                "created_before",
                "created_before must be later than created_after",
            )
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
        limit = check_page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        after = decode_page_token(page_token) if page_token else None
        async with self._db.transaction(snapshot=True) as session:
            records = await store.list_notifications(
                session,
                tenant_id=tenant_id,
                channel=channel or None,
                status=status or None,
                recipient=recipient.strip() or None,
                created=(created_after, created_before),
                after=after,
                limit=limit + 1,
            )
        next_token = ""
        if len(records) > limit:
            records = records[:limit]
            last = records[-1]
            next_token = encode_page_token(last.created_at, last.notification_id)
        return NotificationPage([notification_view(r) for r in records], next_token)
