"""Notifications, their deliveries and delivery history. Functions never
commit: the caller owns the transaction."""

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, overload

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Row,
    Select,
    Text,
    and_,
    bindparam,
    case,
    column,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.routing import StepOutcome, StepState, roll_up_routed
from server.domain.status import DeliveryStatus, can_move, roll_up
from server.store.alerts import COUNT_MOVES_SQL, CountedMove, count_moves_params
from server.store.outbox import PendingStart
from server.store.routing import NewRoutingStep, insert_steps
from server.store.tables import deliveries, delivery_events, notifications, routing_steps
from server.store.tenant_webhooks import (
    DeliveryChange,
    DeliveryDetails,
    emit_delivery_changes,
    listened_to,
)


@dataclass(frozen=True)
class DeliveryEventRecord:
    kind: str
    status: str
    detail: str
    occurred_at: datetime


@dataclass
class DeliveryRecord:
    delivery_id: str
    notification_id: str
    tenant_id: str
    channel: str
    address: str
    status: DeliveryStatus
    attempts: int
    reason: str
    provider_message_id: str | None
    updated_at: datetime
    # What to send: rendered fields, or the WhatsApp template and parameters.
    content: dict[str, Any] = field(default_factory=dict)
    # Set when the notification belongs to a bulk send.
    bulk_id: str | None = None
    # Set while a provider call is in progress, or when its outcome is unknown.
    attempt_started_at: datetime | None = None
    # The provider that carried the latest attempt, where there is a choice.
    attempt_provider: str | None = None
    history: list[DeliveryEventRecord] = field(default_factory=list)


@dataclass
class NotificationRecord:
    notification_id: str
    tenant_id: str
    status: DeliveryStatus
    channels: list[str]
    recipient: dict[str, str]
    subject: str
    body: str
    template_id: str
    template_version: int | None
    data: dict[str, Any]
    idempotency_key: str | None
    bulk_id: str | None
    created_at: datetime
    updated_at: datetime
    deliveries: list[DeliveryRecord] = field(default_factory=list)
    # A routed notification's policy and its "source"; None when not routed.
    routing: dict[str, Any] | None = None


@dataclass
class NewDelivery:
    delivery_id: str
    channel: str
    address: str
    content: dict[str, Any] = field(default_factory=dict)


@dataclass
class NewNotification:
    notification_id: str
    tenant_id: str
    channels: list[str]
    recipient: dict[str, str]
    subject: str
    body: str
    template_id: str
    template_version: int | None
    data: dict[str, Any]
    idempotency_key: str | None
    deliveries: list[NewDelivery]
    bulk_id: str | None = None
    row_index: int | None = None
    routing: dict[str, Any] | None = None
    # Every step of a routed notification; `deliveries` holds the first's.
    routing_steps: list[NewRoutingStep] = field(default_factory=list)


def delivery_record(row: Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        delivery_id=row.id,
        notification_id=row.notification_id,
        tenant_id=row.tenant_id,
        channel=row.channel,
        address=row.address,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        reason=row.reason,
        provider_message_id=row.provider_message_id,
        updated_at=row.updated_at,
        content=dict(row.content),
        bulk_id=row._mapping.get("bulk_id"),
        attempt_started_at=row._mapping.get("attempt_started_at"),
        attempt_provider=row._mapping.get("attempt_provider"),
    )


def _notification(row: Row[Any]) -> NotificationRecord:
    return NotificationRecord(
        notification_id=row.id,
        tenant_id=row.tenant_id,
        status=DeliveryStatus(row.status),
        channels=list(row.channels),
        recipient=dict(row.recipient),
        subject=row.subject,
        body=row.body,
        template_id=row.template_id,
        template_version=row.template_version,
        data=dict(row.data),
        idempotency_key=row.idempotency_key,
        bulk_id=row.bulk_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        routing=row._mapping.get("routing"),
    )


# A send's rows in one round trip, whatever their count: the notifications,
# their queued deliveries, the first history entry of each (in the
# deliveries' order, so ids follow it) and their workflows' outbox rows. The
# foreign keys are checked at the end of the statement, when every CTE has
# run. Answers which of the tenants have an enabled webhook endpoint, so that
# a send nobody listens to skips emit_delivery_changes and its read.
# Measured against three executemany inserts: 1.4-1.6 ms against 3.3-4.0 ms
# (docs/performance.md).
_INSERT_SEND = text(
    """
    WITH n AS (
        INSERT INTO notifications (id, tenant_id, status, channels, recipient, subject,
            body, template_id, template_version, data, idempotency_key, bulk_id,
            row_index, routing, created_at, updated_at)
        SELECT r.id, r.tenant_id, 'queued', string_to_array(r.channels, ','),
            CAST(r.recipient AS jsonb), r.subject, r.body, r.template_id, r.version,
            CAST(r.data AS jsonb), r.idempotency_key, r.bulk_id, r.row_index,
            CAST(r.routing AS jsonb), :now, :now
        FROM unnest(CAST(:n_ids AS text[]), CAST(:n_tenants AS text[]),
                    CAST(:n_channels AS text[]), CAST(:n_recipients AS text[]),
                    CAST(:n_subjects AS text[]), CAST(:n_bodies AS text[]),
                    CAST(:n_templates AS text[]), CAST(:n_versions AS integer[]),
                    CAST(:n_data AS text[]), CAST(:n_keys AS text[]),
                    CAST(:n_bulks AS text[]), CAST(:n_rows AS integer[]),
                    CAST(:n_routing AS text[]))
            AS r(id, tenant_id, channels, recipient, subject, body, template_id, version,
                 data, idempotency_key, bulk_id, row_index, routing)
    ), d AS (
        INSERT INTO deliveries (id, notification_id, tenant_id, channel, position, address,
            content, status, created_at, updated_at)
        SELECT r.id, r.notification_id, r.tenant_id, r.channel, r.position, r.address,
            CAST(r.content AS jsonb), 'queued', :now, :now
        FROM unnest(CAST(:d_ids AS text[]), CAST(:d_notifications AS text[]),
                    CAST(:d_tenants AS text[]), CAST(:d_channels AS text[]),
                    CAST(:d_positions AS integer[]), CAST(:d_addresses AS text[]),
                    CAST(:d_contents AS text[]))
            AS r(id, notification_id, tenant_id, channel, position, address, content)
    ), e AS (
        INSERT INTO delivery_events (delivery_id, kind, status, detail, occurred_at)
        SELECT r.id, 'status', 'queued', 'accepted', :now
        FROM unnest(CAST(:d_ids AS text[])) WITH ORDINALITY AS r(id, n)
        ORDER BY r.n
    ), o AS (
        INSERT INTO pending_dispatches (kind, ref, payload, created_at)
        SELECT r.kind, r.ref, CAST(r.payload AS jsonb), :now
        FROM unnest(CAST(:o_kinds AS text[]), CAST(:o_refs AS text[]),
                    CAST(:o_payloads AS text[])) AS r(kind, ref, payload)
        ON CONFLICT DO NOTHING
    )
    SELECT DISTINCT w.tenant_id FROM tenant_webhook_endpoints w
    WHERE w.tenant_id = ANY(CAST(:n_tenants AS text[])) AND w.disabled_at IS NULL
    """
)


async def insert_notifications(
    session: AsyncSession,
    rows: list["NewNotification"],
    *,
    now: datetime,
    starts: Sequence[PendingStart] = (),
) -> None:
    """Inserts notifications with their queued deliveries and the first history
    entry of each, and the outbox rows `starts` of their workflows, in one
    statement whatever the count (plus their routing steps, and
    delivery.queued events for tenants with webhooks)."""
    if not rows:
        return
    new_deliveries = [(n, position, d) for n in rows for position, d in enumerate(n.deliveries)]
    listened = set(
        (
            await session.execute(
                _INSERT_SEND,
                {
                    "now": now,
                    "n_ids": [n.notification_id for n in rows],
                    "n_tenants": [n.tenant_id for n in rows],
                    "n_channels": [",".join(n.channels) for n in rows],
                    "n_recipients": [json.dumps(n.recipient) for n in rows],
                    "n_subjects": [n.subject for n in rows],
                    "n_bodies": [n.body for n in rows],
                    "n_templates": [n.template_id for n in rows],
                    "n_versions": [n.template_version for n in rows],
                    "n_data": [json.dumps(n.data) for n in rows],
                    "n_keys": [n.idempotency_key for n in rows],
                    "n_bulks": [n.bulk_id for n in rows],
                    "n_rows": [n.row_index for n in rows],
                    # SQL NULL, not JSON null, for a send without routing.
                    "n_routing": [
                        None if n.routing is None else json.dumps(n.routing) for n in rows
                    ],
                    "d_ids": [d.delivery_id for _, _, d in new_deliveries],
                    "d_notifications": [n.notification_id for n, _, _ in new_deliveries],
                    "d_tenants": [n.tenant_id for n, _, _ in new_deliveries],
                    "d_channels": [d.channel for _, _, d in new_deliveries],
                    "d_positions": [position for _, position, _ in new_deliveries],
                    "d_addresses": [d.address for _, _, d in new_deliveries],
                    "d_contents": [json.dumps(d.content) for _, _, d in new_deliveries],
                    "o_kinds": [start.kind.value for start in starts],
                    "o_refs": [start.ref for start in starts],
                    "o_payloads": [
                        None if start.payload is None else json.dumps(start.payload)
                        for start in starts
                    ],
                },
            )
        ).scalars()
    )
    await insert_steps(
        session,
        [(n.notification_id, n.tenant_id, step) for n in rows for step in n.routing_steps],
        now=now,
    )
    await emit_delivery_changes(
        session,
        [
            DeliveryChange(
                n.tenant_id,
                d.delivery_id,
                DeliveryStatus.QUEUED,
                "accepted",
                DeliveryDetails(n.notification_id, d.channel, None, n.bulk_id, n.row_index),
            )
            for n, _, d in new_deliveries
            if n.tenant_id in listened
        ],
        now=now,
    )


# A notification with its deliveries (in request order) and each one's
# history (oldest first), in one statement: one snapshot, so the status,
# the deliveries and their histories agree without a transaction around
# several reads, and one round trip for the API's busiest read.
_NOTIFICATION = text(
    "SELECT "
    + ", ".join(f"n.{c.name}" for c in notifications.c)
    + """, (
        SELECT coalesce(json_agg(json_build_object(
            'id', d.id, 'channel', d.channel, 'address', d.address,
            'status', d.status, 'attempts', d.attempts, 'reason', d.reason,
            'provider_message_id', d.provider_message_id,
            'updated_at', d.updated_at, 'content', d.content,
            'attempt_started_at', d.attempt_started_at,
            'attempt_provider', d.attempt_provider,
            'history', (
                SELECT coalesce(json_agg(json_build_array(
                    e.kind, e.status, e.detail, e.occurred_at) ORDER BY e.id), '[]')
                FROM delivery_events e WHERE e.delivery_id = d.id
            )
        ) ORDER BY d.position), '[]')
        FROM deliveries d WHERE d.notification_id = n.id
    ) AS deliveries_json
    FROM notifications n
    WHERE n.tenant_id = :tenant_id AND n.id = :notification_id
    """
).columns(
    *notifications.c,
    column("deliveries_json", JSON),
)


async def get_notification(
    session: AsyncSession, *, tenant_id: str, notification_id: str
) -> NotificationRecord | None:
    row = (
        await session.execute(
            _NOTIFICATION, {"tenant_id": tenant_id, "notification_id": notification_id}
        )
    ).first()
    if row is None:
        return None
    record = _notification(row)
    record.deliveries = [
        DeliveryRecord(
            delivery_id=d["id"],
            notification_id=record.notification_id,
            tenant_id=record.tenant_id,
            channel=d["channel"],
            address=d["address"],
            status=DeliveryStatus(d["status"]),
            attempts=d["attempts"],
            reason=d["reason"],
            provider_message_id=d["provider_message_id"],
            updated_at=_timestamp(d["updated_at"]),
            content=d["content"],
            bulk_id=record.bulk_id,
            attempt_started_at=_timestamp(d["attempt_started_at"]),
            attempt_provider=d["attempt_provider"],
            history=[
                DeliveryEventRecord(kind, status, detail, _timestamp(occurred_at))
                for kind, status, detail, occurred_at in d["history"]
            ],
        )
        for d in row.deliveries_json
    ]
    return record


@overload
def _timestamp(value: str) -> datetime: ...
@overload
def _timestamp(value: None) -> None: ...
def _timestamp(value: str | None) -> datetime | None:
    """A timestamptz as PostgreSQL writes it in JSON (ISO 8601 with offset)."""
    return None if value is None else datetime.fromisoformat(value)


async def list_notifications(
    session: AsyncSession,
    *,
    tenant_id: str,
    channel: str | None,
    status: str | None,
    recipient: str | None,
    created: tuple[datetime | None, datetime | None] = (None, None),
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[NotificationRecord]:
    """Newest first; `created` bounds created_at to [from, until); `after` is
    the (created_at, id) of the last row already seen."""
    query = list_query(
        tenant_id=tenant_id,
        channel=channel,
        status=status,
        recipient=recipient,
        created=created,
        after=after,
        limit=limit,
    )
    records = [_notification(row) for row in await session.execute(query)]
    await _attach_deliveries(session, records)
    return records


def list_query(
    *,
    tenant_id: str,
    channel: str | None,
    status: str | None,
    recipient: str | None,
    created: tuple[datetime | None, datetime | None],
    after: tuple[datetime, str] | None,
    limit: int,
) -> Select[Any]:
    """The statement of list_notifications (bench.suite EXPLAINs it)."""
    query = select(notifications).where(notifications.c.tenant_id == tenant_id)
    created_from, created_until = created
    if created_from:
        query = query.where(notifications.c.created_at >= created_from)
    if created_until:
        query = query.where(notifications.c.created_at < created_until)
    if channel:
        query = query.where(notifications.c.channels.any(channel))
    if status:
        query = query.where(notifications.c.status == status)
    if recipient:
        query = query.where(
            exists().where(
                deliveries.c.notification_id == notifications.c.id,
                deliveries.c.tenant_id == tenant_id,
                deliveries.c.address == recipient,
            )
        )
    if after:
        created_at, last_id = after
        query = query.where(
            or_(
                notifications.c.created_at < created_at,
                and_(notifications.c.created_at == created_at, notifications.c.id < last_id),
            )
        )
    return query.order_by(notifications.c.created_at.desc(), notifications.c.id.desc()).limit(limit)


async def _attach_deliveries(session: AsyncSession, records: list[NotificationRecord]) -> None:
    if not records:
        return
    by_id = {r.notification_id: r for r in records}
    rows = await session.execute(
        select(deliveries)
        .where(deliveries.c.notification_id.in_(by_id))
        .order_by(deliveries.c.notification_id, deliveries.c.position)
    )
    for row in rows:
        by_id[row.notification_id].deliveries.append(delivery_record(row))


_DELIVERY = (
    select(deliveries, notifications.c.bulk_id)
    .join(notifications, notifications.c.id == deliveries.c.notification_id)
    .where(deliveries.c.id == bindparam("delivery_id"))
)


async def get_delivery(session: AsyncSession, *, delivery_id: str) -> DeliveryRecord | None:
    """A delivery by id, for the worker and signed provider callbacks, which
    act for the platform rather than for a tenant."""
    row = (await session.execute(_DELIVERY, {"delivery_id": delivery_id})).first()
    return delivery_record(row) if row else None


async def template_of_delivery(
    session: AsyncSession, *, delivery_id: str
) -> tuple[str, str] | None:
    """(tenant_id, template_id) of the delivery's notification, if templated."""
    row = (
        await session.execute(
            select(notifications.c.tenant_id, notifications.c.template_id)
            .join(deliveries, deliveries.c.notification_id == notifications.c.id)
            .where(deliveries.c.id == delivery_id, notifications.c.template_id != "")
        )
    ).first()
    return (row.tenant_id, row.template_id) if row else None


_BY_PROVIDER_MESSAGE_ID = select(deliveries).where(
    deliveries.c.channel == bindparam("channel"),
    deliveries.c.provider_message_id == bindparam("provider_message_id"),
)


async def find_delivery_by_provider_message_id(
    session: AsyncSession, *, channel: str, provider_message_id: str
) -> DeliveryRecord | None:
    found = await session.execute(
        _BY_PROVIDER_MESSAGE_ID, {"channel": channel, "provider_message_id": provider_message_id}
    )
    row = found.first()
    return delivery_record(row) if row else None


async def recorded_provider_message_ids(
    session: AsyncSession, *, channel: str, provider_message_ids: list[str], other_than: str
) -> set[str]:
    """Which of these provider message ids a delivery other than `other_than`
    already holds (one it holds itself is its own message)."""
    if not provider_message_ids:
        return set()
    rows = await session.execute(
        select(deliveries.c.provider_message_id).where(
            deliveries.c.channel == channel,
            deliveries.c.provider_message_id.in_(provider_message_ids),
            deliveries.c.id != other_than,
        )
    )
    return {row[0] for row in rows}


_BEGIN_ATTEMPTS = (
    update(deliveries)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        attempts=deliveries.c.attempts + 1,
        attempt_started_at=bindparam("now", type_=DateTime(timezone=True)),
        attempt_provider=func.coalesce(
            bindparam("provider", type_=Text), deliveries.c.attempt_provider
        ),
    )
)


async def begin_attempts(
    session: AsyncSession, *, delivery_ids: list[str], now: datetime, provider: str | None = None
) -> None:
    """Counts a provider call for each delivery and marks it in progress, at
    `provider` (None keeps the one recorded). Committed before the call: if
    the outcome is never recorded (a crash, no answer), the next attempt
    finds the mark and reconciles before sending, at the same provider."""
    await session.execute(_BEGIN_ATTEMPTS, {"ids": delivery_ids, "now": now, "provider": provider})


# A first attempt's read and its mark in one round trip (see
# claim_first_attempt): only a queued delivery never attempted, on a channel
# given a provider.
_CLAIM_FIRST_ATTEMPT = text(
    """
    UPDATE deliveries d
    SET attempts = d.attempts + 1, attempt_started_at = :now, attempt_provider = c.provider
    FROM unnest(CAST(:channels AS text[]), CAST(:providers AS text[])) AS c(channel, provider),
         notifications n
    WHERE d.id = :delivery_id AND c.channel = d.channel AND n.id = d.notification_id
      AND d.status = 'queued' AND d.provider_message_id IS NULL
      AND d.attempt_started_at IS NULL AND d.attempt_provider IS NULL
    RETURNING d.*, n.bulk_id
    """
)


async def claim_first_attempt(
    session: AsyncSession, *, delivery_id: str, providers: dict[str, str], now: datetime
) -> DeliveryRecord | None:
    """begin_attempts for a delivery's first call, read as it is marked: the
    delivery with its mark when it is queued, has never been attempted and
    its channel is in `providers` (channel: provider to mark). Otherwise
    None and nothing changes; the caller reads it with get_delivery."""
    if not providers:
        return None
    row = (
        await session.execute(
            _CLAIM_FIRST_ATTEMPT,
            {
                "delivery_id": delivery_id,
                "channels": list(providers),
                "providers": list(providers.values()),
                "now": now,
            },
        )
    ).first()
    return delivery_record(row) if row else None


_ATTEMPTED = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("delivery_id"))
    .values(
        attempt_started_at=case(
            (bindparam("unknown", type_=Boolean), deliveries.c.attempt_started_at),
            else_=None,
        ),
        reason=case(
            (bindparam("retrying", type_=Text) != "", bindparam("retrying", type_=Text)),
            else_=deliveries.c.reason,
        ),
        provider_message_id=func.coalesce(
            bindparam("provider_message_id", type_=Text), deliveries.c.provider_message_id
        ),
    )
    .returning(deliveries.c.id, deliveries.c.status)
    .cte("attempted")
)
# The update feeds the history row: one statement.
_RECORD_ATTEMPT = (
    insert(delivery_events)
    .add_cte(_ATTEMPTED)
    .from_select(
        ["delivery_id", "kind", "status", "detail", "occurred_at"],
        select(
            _ATTEMPTED.c.id,
            literal("attempt"),
            _ATTEMPTED.c.status,
            bindparam("outcome", type_=Text),
            bindparam("now", type_=DateTime(timezone=True)),
        ),
    )
    .returning(delivery_events.c.id)
)


async def record_attempt(
    session: AsyncSession,
    *,
    delivery_id: str,
    outcome: str,
    now: datetime,
    retrying: str = "",
    unknown: bool = False,
    provider_message_id: str | None = None,
) -> None:
    """Records the outcome of the call begun by begin_attempts, in the
    delivery's history, and the provider's message id of an accepted call.
    `retrying` is shown as the delivery's reason until it moves on.
    `unknown`: the request may have reached the provider without an answer,
    so the in-progress mark stays for the next attempt to reconcile."""
    inserted = await session.execute(
        _RECORD_ATTEMPT,
        {
            "delivery_id": delivery_id,
            "unknown": unknown,
            "retrying": retrying,
            "provider_message_id": provider_message_id,
            "outcome": outcome,
            "now": now,
        },
    )
    inserted.scalar_one()  # raises for an unknown delivery, as the update alone did


# An accepted call's record_attempt, with the lock its status move needs
# (lock_notifications) taken first, in one round trip. The update is gated
# on the locked rows, a subquery PostgreSQL runs once before it reads any
# delivery, so the notification is locked before its delivery row, in the
# order every status change takes them.
_LOCK_AND_RECORD_ACCEPTED = text(
    """
    WITH locked AS (
        SELECT n.id FROM notifications n
        WHERE n.id = (SELECT notification_id FROM deliveries WHERE id = :delivery_id)
        FOR UPDATE
    ), attempted AS (
        UPDATE deliveries d
        SET attempt_started_at = NULL,
            provider_message_id = coalesce(CAST(:provider_message_id AS text),
                                           d.provider_message_id)
        WHERE d.id = :delivery_id AND (SELECT count(*) FROM locked) = 1
        RETURNING d.id, d.status
    )
    INSERT INTO delivery_events (delivery_id, kind, status, detail, occurred_at)
    SELECT id, 'attempt', status, :outcome, :now FROM attempted
    RETURNING id
    """
)


async def lock_and_record_accepted(
    session: AsyncSession,
    *,
    delivery_id: str,
    outcome: str,
    now: datetime,
    provider_message_id: str | None,
) -> None:
    """lock_notifications, then record_attempt of a call the provider
    accepted (nothing `retrying`, not `unknown`), in one statement; the
    caller moves the delivery's status with the lock held."""
    inserted = await session.execute(
        _LOCK_AND_RECORD_ACCEPTED,
        {
            "delivery_id": delivery_id,
            "provider_message_id": provider_message_id,
            "outcome": outcome,
            "now": now,
        },
    )
    inserted.scalar_one()  # raises for an unknown delivery, as record_attempt does


async def set_provider_message_id(
    session: AsyncSession, *, delivery_id: str, provider_message_id: str
) -> None:
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(provider_message_id=provider_message_id)
    )


async def adopt_provider_message_ids(session: AsyncSession, ids: dict[str, str]) -> None:
    """Records provider message ids (by delivery id) learnt from receipts, on
    deliveries that have none yet: the provider accepted a message whose
    sender died before recording it, and a retry must see it was handed over."""
    if ids:
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id == bindparam("did"), deliveries.c.provider_message_id.is_(None))
            .values(provider_message_id=bindparam("pmid")),
            [{"did": delivery_id, "pmid": pmid} for delivery_id, pmid in ids.items()],
        )


@dataclass(frozen=True)
class DeliveryIdentity:
    """What a provider receipt naming the delivery is checked against."""

    channel: str
    address: str
    provider_message_id: str | None


_IDENTITIES = select(
    deliveries.c.id,
    deliveries.c.channel,
    deliveries.c.address,
    deliveries.c.provider_message_id,
).where(deliveries.c.id.in_(bindparam("ids", expanding=True)))


async def delivery_identities(
    session: AsyncSession, *, delivery_ids: list[str]
) -> dict[str, DeliveryIdentity]:
    """Channel, address and provider message id of each known delivery, in
    one statement."""
    rows = await session.execute(_IDENTITIES, {"ids": delivery_ids})
    return {
        row.id: DeliveryIdentity(row.channel, row.address, row.provider_message_id) for row in rows
    }


@dataclass(frozen=True)
class StatusMove:
    """A delivery should move to `status` (a receipt, a provider outcome)."""

    delivery_id: str
    status: DeliveryStatus
    reason: str


@dataclass(frozen=True)
class MoveResult:
    """Where a StatusMove left its delivery, and whose delivery it is."""

    move: StatusMove
    moved: bool
    # The delivery's status after the whole batch.
    status: DeliveryStatus
    notification_id: str
    tenant_id: str
    template_id: str
    bulk_id: str | None
    channel: str
    # The provider of the delivery's latest attempt; None before any call.
    provider: str | None
    # The 0-based row of a bulk's delivery; None for single sends.
    row_index: int | None
    # The tenant has an enabled webhook endpoint (see listened_to).
    listened: bool
    # The notification has routing steps (whose workflow waits for receipts).
    routed: bool


# The send path's statements are built once: building one on each call
# cost about as much Python as running it.
# The notifications of the deliveries `ids`: what a status change locks and reads.
_NOTIFICATIONS_OF = select(deliveries.c.notification_id).where(
    deliveries.c.id.in_(bindparam("ids", expanding=True))
)
_LOCK = (
    select(notifications.c.id)
    .where(notifications.c.id.in_(_NOTIFICATIONS_OF))
    .order_by(notifications.c.id)
    .with_for_update()
)
# Every delivery of the notifications of these deliveries, with what a status
# change needs to know of each.
_FAMILY = select(
    deliveries.c.id,
    deliveries.c.status,
    deliveries.c.notification_id,
    deliveries.c.channel,
    deliveries.c.attempt_provider,
    notifications.c.tenant_id,
    notifications.c.template_id,
    notifications.c.bulk_id,
    notifications.c.row_index,
    notifications.c.routing.is_not(None).label("routed"),
    listened_to(notifications.c.tenant_id).label("listened"),
).where(
    notifications.c.id == deliveries.c.notification_id,
    deliveries.c.notification_id.in_(_NOTIFICATIONS_OF),
)


async def lock_notifications(session: AsyncSession, *, delivery_ids: list[str]) -> None:
    """Locks the notifications of these deliveries, in id order. Everything
    that changes a delivery's status takes these locks first, so concurrent
    writers (receipts, the worker, bulk pages) queue instead of deadlocking."""
    await session.execute(_LOCK, {"ids": delivery_ids})


async def advance_deliveries(
    session: AsyncSession,
    moves: list[StatusMove],
    *,
    now: datetime,
    locked: bool = False,
    receipts: bool = False,
) -> list[MoveResult]:
    """Applies the moves in order, in three statements whatever their count
    (lock, read, write). A move that is not a step forward (a duplicate or
    late receipt) changes nothing. Rolls each touched notification's status
    up, and counts each move for alert rules (as a provider receipt when
    `receipts`). Returns one result per move; unknown deliveries are left
    out. `locked`: the caller already holds the notifications' locks."""
    if not moves:
        return []
    ids = sorted({m.delivery_id for m in moves})
    if not locked:
        await lock_notifications(session, delivery_ids=ids)
    # Read after locking: a writer that held the lock has committed by now.
    # Every delivery of the touched notifications, for the roll-up as well.
    family = (await session.execute(_FAMILY, {"ids": ids})).all()
    known = {row.id: row for row in family}
    status = {row.id: DeliveryStatus(row.status) for row in family}
    applied: list[StatusMove] = []
    moved_flags: list[tuple[StatusMove, bool]] = []
    for move in moves:
        if move.delivery_id not in known:
            continue
        moved = can_move(status[move.delivery_id], move.status)
        if moved:
            status[move.delivery_id] = move.status
            applied.append(move)
        moved_flags.append((move, moved))
    if applied:
        touched = {known[m.delivery_id].notification_id for m in applied}
        rolled = await _rolled_up(
            session,
            [
                (row.notification_id, row.id, status[row.id], row.routed)
                for row in family
                if row.notification_id in touched
            ],
        )
        last = {m.delivery_id: m for m in applied}
        await session.execute(
            _WRITE_MOVES,
            {
                "now": now,
                "d_ids": list(last),
                "d_status": [m.status.value for m in last.values()],
                "d_reasons": [m.reason for m in last.values()],
                "e_ids": [m.delivery_id for m in applied],
                "e_status": [m.status.value for m in applied],
                "e_reasons": [m.reason for m in applied],
                "n_ids": list(rolled),
                "n_status": [s.value for s in rolled.values()],
            }
            | count_moves_params(
                [CountedMove(m.delivery_id, m.status, receipts) for m in applied], now=now
            ),
        )
    return [
        MoveResult(
            move=move,
            moved=moved,
            status=status[move.delivery_id],
            notification_id=known[move.delivery_id].notification_id,
            tenant_id=known[move.delivery_id].tenant_id,
            template_id=known[move.delivery_id].template_id,
            bulk_id=known[move.delivery_id].bulk_id,
            channel=known[move.delivery_id].channel,
            provider=known[move.delivery_id].attempt_provider,
            row_index=known[move.delivery_id].row_index,
            listened=known[move.delivery_id].listened,
            routed=known[move.delivery_id].routed,
        )
        for move, moved in moved_flags
    ]


# A batch of moves in one round trip: the deliveries' new statuses, their
# history rows (in the moves' order, so ids follow it), the alert counters
# and the notifications' rolled-up statuses. Each part writes a table of its
# own, so the four cannot clash; the counters read deliveries' unchanging
# columns (tenant, channel, notification) from the statement's snapshot.
_WRITE_MOVES = text(
    """
    WITH moved AS (
        UPDATE deliveries d SET status = m.status, reason = m.reason, updated_at = :now
        FROM unnest(CAST(:d_ids AS text[]), CAST(:d_status AS text[]),
                    CAST(:d_reasons AS text[])) AS m(id, status, reason)
        WHERE d.id = m.id
    ), history AS (
        INSERT INTO delivery_events (delivery_id, kind, status, detail, occurred_at)
        SELECT e.id, 'status', e.status, e.reason, :now
        FROM unnest(CAST(:e_ids AS text[]), CAST(:e_status AS text[]),
                    CAST(:e_reasons AS text[])) WITH ORDINALITY AS e(id, status, reason, n)
        ORDER BY e.n
    ), counted AS ("""
    + COUNT_MOVES_SQL
    + """
    )
    UPDATE notifications n SET status = r.status, updated_at = :now
    FROM unnest(CAST(:n_ids AS text[]), CAST(:n_status AS text[])) AS r(id, status)
    WHERE n.id = r.id
    """
)


async def roll_up_notifications(
    session: AsyncSession, *, notification_ids: set[str], now: datetime
) -> None:
    """Sets each notification's status from its deliveries' (see roll_up),
    or a routed one's from its steps (see roll_up_routed). The caller holds
    the notifications' locks."""
    siblings = await session.execute(
        select(
            deliveries.c.notification_id,
            deliveries.c.id,
            deliveries.c.status,
            notifications.c.routing.is_not(None).label("routed"),
        )
        .join(notifications, notifications.c.id == deliveries.c.notification_id)
        .where(deliveries.c.notification_id.in_(sorted(notification_ids)))
    )
    rolled = await _rolled_up(
        session, [(nid, did, DeliveryStatus(s), routed) for nid, did, s, routed in siblings]
    )
    await session.execute(
        update(notifications)
        .where(notifications.c.id == bindparam("nid"))
        .values(status=bindparam("rolled"), updated_at=now),
        [{"nid": nid, "rolled": status.value} for nid, status in rolled.items()],
    )


async def _rolled_up(
    session: AsyncSession, family: list[tuple[str, str, DeliveryStatus, bool]]
) -> dict[str, DeliveryStatus]:
    """Each notification's status from its (notification, delivery, status,
    routed) rows: a routed one's from its steps, read here, else its
    deliveries' (roll_up)."""
    statuses: dict[str, list[DeliveryStatus]] = defaultdict(list)
    by_delivery: dict[str, DeliveryStatus] = {}
    routed: set[str] = set()
    for notification_id, delivery_id, delivery_status, is_routed in family:
        statuses[notification_id].append(delivery_status)
        by_delivery[delivery_id] = delivery_status
        if is_routed:
            routed.add(notification_id)
    steps: dict[str, list[StepState]] = defaultdict(list)
    # Most notifications are not routed: then no steps to read (a statement
    # less per status change).
    for row in (
        await session.execute(
            select(
                routing_steps.c.notification_id,
                routing_steps.c.delivery_id,
                routing_steps.c.outcome,
            )
            .where(routing_steps.c.notification_id.in_(sorted(routed)))
            .order_by(routing_steps.c.notification_id, routing_steps.c.position)
        )
        if routed
        else []
    ):
        steps[row.notification_id].append(
            StepState(StepOutcome(row.outcome), by_delivery.get(row.delivery_id or ""))
        )
    return {
        nid: roll_up_routed(steps[nid]) if nid in steps else roll_up(s)
        for nid, s in sorted(statuses.items())
    }


def missing_receipt_note(waited_seconds: float) -> str:
    return (
        f"no delivery receipt from the provider within {waited_seconds:g} s; "
        "it was sent but delivery is unconfirmed"
    )


# Flags sent deliveries that had no receipt in time, once each, and notes it
# in their reason and history. Still sent is checked again on the locked row,
# so a receipt that commits first wins; SKIP LOCKED keeps concurrent sweeps
# (one per API server) and writers off each other.
_NOTE_MISSING_RECEIPTS = """
    WITH overdue AS (
        SELECT id FROM deliveries
        WHERE status = 'sent' AND NOT receipt_overdue AND {which}
        ORDER BY updated_at LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ), noted AS (
        UPDATE deliveries d SET receipt_overdue = true, reason = :reason
        FROM overdue WHERE d.id = overdue.id
        RETURNING d.id, d.status
    )
    INSERT INTO delivery_events (delivery_id, kind, status, detail, occurred_at)
    SELECT id, 'note', status, :reason, :now FROM noted ORDER BY id
"""
# A range scan of ix_deliveries_awaiting_receipt, which holds only these rows.
_OVERDUE_SINCE = text(_NOTE_MISSING_RECEIPTS.format(which="updated_at < :before"))
_OVERDUE_ONE = text(_NOTE_MISSING_RECEIPTS.format(which="id = :delivery_id"))


async def note_missing_receipts(
    session: AsyncSession,
    *,
    waited_seconds: float,
    now: datetime,
    delivery_id: str | None = None,
    batch: int = 500,
) -> int:
    """Notes up to `batch` sent deliveries whose receipt is `waited_seconds`
    late (or only `delivery_id`, whatever its age); returns how many."""
    params = {"batch": batch, "reason": missing_receipt_note(waited_seconds), "now": now}
    if delivery_id is None:
        result = await session.execute(
            _OVERDUE_SINCE, {**params, "before": now - timedelta(seconds=waited_seconds)}
        )
    else:
        result = await session.execute(_OVERDUE_ONE, {**params, "delivery_id": delivery_id})
    return int(result.rowcount)  # type: ignore[attr-defined]


async def add_delivery_note(
    session: AsyncSession, *, delivery_id: str, reason: str, now: datetime
) -> None:
    """Records a fact about the delivery, in its reason and its history,
    without changing its status."""
    status = (
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(reason=reason)
            .returning(deliveries.c.status)
        )
    ).scalar_one()
    await session.execute(
        insert(delivery_events).values(
            delivery_id=delivery_id, kind="note", status=status, detail=reason, occurred_at=now
        )
    )
