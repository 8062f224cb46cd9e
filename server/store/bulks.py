"""Bulk sends: the bulk row, refused rows, progress, and batched delivery
outcomes. Functions never commit: the caller owns the transaction."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    Text,
    and_,
    bindparam,
    case,
    column,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.routing import StepOutcome
from server.domain.status import DeliveryStatus
from server.domain.webhooks import EventType
from server.store.alerts import CountedMove, count_moves
from server.store.notifications import (
    DeliveryRecord,
    delivery_record,
    lock_notifications,
    roll_up_notifications,
)
from server.store.tables import (
    bulk_errors,
    bulks,
    deliveries,
    delivery_events,
    notifications,
    routing_steps,
)
from server.store.tenant_webhooks import (
    DeliveryChange,
    NewEvent,
    emit_delivery_changes,
    emit_events,
)


@dataclass(frozen=True)
class BulkRecord:
    bulk_id: str
    tenant_id: str
    channels: list[str]
    template_id: str
    total: int
    accepted: int
    created_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]


@dataclass(frozen=True)
class RowError:
    index: int
    reason: str
    message: str


@dataclass(frozen=True)
class ReachedStatus:
    """A status a delivery moved to, for counting (server/metrics.py)."""

    channel: str
    provider: str | None
    status: DeliveryStatus


@dataclass(frozen=True)
class DeliveryOutcome:
    """One provider call of a bulk delivery and where it leaves the delivery."""

    delivery_id: str
    notification_id: str
    # The attempt's outcome, for the history.
    detail: str
    # The status to move to ("" = stay queued, e.g. a retry is coming).
    status: str
    reason: str
    provider_message_id: str | None
    # The request may have reached the provider without an answer: the
    # attempt's in-progress mark stays, for the next attempt to reconcile.
    unknown: bool = False


async def insert_bulk(
    session: AsyncSession,
    *,
    bulk_id: str,
    tenant_id: str,
    channels: list[str],
    template_id: str,
    source: str,
    now: datetime,
) -> None:
    await session.execute(
        insert(bulks).values(
            id=bulk_id,
            tenant_id=tenant_id,
            channels=channels,
            template_id=template_id,
            source=source,
            total=0,
            accepted=0,
            created_at=now,
        )
    )


async def add_counts(session: AsyncSession, *, bulk_id: str, total: int, accepted: int) -> None:
    await session.execute(
        update(bulks)
        .where(bulks.c.id == bulk_id)
        .values(total=bulks.c.total + total, accepted=bulks.c.accepted + accepted)
    )


async def insert_errors(session: AsyncSession, *, bulk_id: str, errors: list[RowError]) -> None:
    if errors:
        await session.execute(
            insert(bulk_errors),
            [
                {"bulk_id": bulk_id, "row_index": e.index, "reason": e.reason, "message": e.message}
                for e in errors
            ],
        )


async def delete_bulk(session: AsyncSession, *, bulk_id: str) -> None:
    """Removes a bulk that was never started, with its rows and their history."""
    rows = select(notifications.c.id).where(notifications.c.bulk_id == bulk_id)
    row_deliveries = select(deliveries.c.id).where(deliveries.c.notification_id.in_(rows))
    await session.execute(
        delete(delivery_events).where(delivery_events.c.delivery_id.in_(row_deliveries))
    )
    await session.execute(delete(routing_steps).where(routing_steps.c.notification_id.in_(rows)))
    await session.execute(delete(deliveries).where(deliveries.c.notification_id.in_(rows)))
    await session.execute(delete(notifications).where(notifications.c.bulk_id == bulk_id))
    await session.execute(delete(bulk_errors).where(bulk_errors.c.bulk_id == bulk_id))
    await session.execute(delete(bulks).where(bulks.c.id == bulk_id))


async def bulk_template(session: AsyncSession, *, bulk_id: str) -> tuple[str, str] | None:
    """(tenant_id, template_id) of a templated bulk."""
    row = (
        await session.execute(
            select(bulks.c.tenant_id, bulks.c.template_id).where(
                bulks.c.id == bulk_id, bulks.c.template_id != ""
            )
        )
    ).first()
    return (row.tenant_id, row.template_id) if row else None


async def get_bulk(session: AsyncSession, *, tenant_id: str, bulk_id: str) -> BulkRecord | None:
    row = (
        await session.execute(
            select(bulks).where(bulks.c.tenant_id == tenant_id, bulks.c.id == bulk_id)
        )
    ).first()
    return (await _with_counts(session, tenant_id, [row]))[0] if row else None


async def list_bulks(
    session: AsyncSession, *, tenant_id: str, after: tuple[datetime, str] | None, limit: int
) -> list[BulkRecord]:
    """Newest first; `after` is the (created_at, id) of the last bulk already seen."""
    query = select(bulks).where(bulks.c.tenant_id == tenant_id)
    if after:
        created_at, last_id = after
        query = query.where(tuple_(bulks.c.created_at, bulks.c.id) < tuple_(created_at, last_id))
    rows = await session.execute(
        query.order_by(bulks.c.created_at.desc(), bulks.c.id.desc()).limit(limit)
    )
    return await _with_counts(session, tenant_id, list(rows))


async def _with_counts(
    session: AsyncSession, tenant_id: str, rows: list[Row[Any]]
) -> list[BulkRecord]:
    """The bulks with their rows counted by status, in one query for all."""
    counts = {row.id: {s.value: 0 for s in DeliveryStatus} for row in rows}
    if counts:
        by_status = await session.execute(
            select(notifications.c.bulk_id, notifications.c.status, func.count())
            .where(notifications.c.bulk_id.in_(counts), notifications.c.tenant_id == tenant_id)
            .group_by(notifications.c.bulk_id, notifications.c.status)
        )
        for bulk_id, status, count in by_status:
            counts[bulk_id][status] = count
    return [
        BulkRecord(
            bulk_id=row.id,
            tenant_id=row.tenant_id,
            channels=list(row.channels),
            template_id=row.template_id,
            total=row.total,
            accepted=row.accepted,
            created_at=row.created_at,
            finished_at=row.finished_at,
            counts=counts[row.id],
        )
        for row in rows
    ]


async def list_errors(
    session: AsyncSession, *, bulk_id: str, after: int, limit: int
) -> list[RowError]:
    rows = await session.execute(
        select(bulk_errors)
        .where(bulk_errors.c.bulk_id == bulk_id, bulk_errors.c.row_index > after)
        .order_by(bulk_errors.c.row_index)
        .limit(limit)
    )
    return [RowError(r.row_index, r.reason, r.message) for r in rows]


async def row_notifications(session: AsyncSession, *, bulk_id: str) -> list[tuple[int, str]]:
    rows = await session.execute(
        select(notifications.c.row_index, notifications.c.id)
        .where(notifications.c.bulk_id == bulk_id)
        .order_by(notifications.c.row_index)
    )
    return [(index, notification_id) for index, notification_id in rows]


async def mark_finished(session: AsyncSession, *, bulk_id: str, now: datetime) -> None:
    """Marks the bulk finished, once, with its bulk.completed event."""
    finished = (
        await session.execute(
            update(bulks)
            .where(bulks.c.id == bulk_id, bulks.c.finished_at.is_(None))
            .values(finished_at=now)
            .returning(bulks.c.tenant_id, bulks.c.total, bulks.c.accepted)
        )
    ).first()
    if finished is not None:
        await emit_events(
            session,
            [
                NewEvent(
                    tenant_id=finished.tenant_id,
                    type=EventType.BULK_COMPLETED,
                    data={
                        "bulk_id": bulk_id,
                        "total": finished.total,
                        "accepted": finished.accepted,
                        "refused": finished.total - finished.accepted,
                    },
                    occurred_at=now,
                )
            ],
        )


async def queued_deliveries(
    session: AsyncSession,
    *,
    bulk_id: str,
    first_row: int | None = None,
    last_row: int | None = None,
    delivery_ids: list[str] | None = None,
) -> list[DeliveryRecord]:
    """Deliveries of a bulk still waiting to be handed over, by row range or id."""
    query = (
        select(deliveries, notifications.c.bulk_id)
        .join(notifications, notifications.c.id == deliveries.c.notification_id)
        .where(
            notifications.c.bulk_id == bulk_id,
            deliveries.c.status == DeliveryStatus.QUEUED,
            deliveries.c.provider_message_id.is_(None),
        )
    )
    if first_row is not None and last_row is not None:
        query = query.where(
            and_(notifications.c.row_index >= first_row, notifications.c.row_index < last_row)
        )
    if delivery_ids is not None:
        query = query.where(deliveries.c.id.in_(delivery_ids))
    return [delivery_record(row) for row in await session.execute(query)]


def _record_outcomes_statement() -> Any:
    # The outcomes arrive as arrays, so the statement is the same for every
    # batch: SQLAlchemy compiles it once and PostgreSQL parses a short text
    # (a VALUES list of literals was compiled anew for each page).
    v = (
        func.unnest(
            bindparam("o_ids", type_=ARRAY(Text)),
            bindparam("o_pmids", type_=ARRAY(Text)),
            bindparam("o_statuses", type_=ARRAY(Text)),
            bindparam("o_reasons", type_=ARRAY(Text)),
            bindparam("o_unknown", type_=ARRAY(Boolean)),
        )
        .table_valued(
            column("id", Text),
            column("pmid", Text),
            column("status", Text),
            column("reason", Text),
            column("unknown", Boolean),
        )
        .render_derived(name="v")
    )
    queued = deliveries.c.status == DeliveryStatus.QUEUED
    moves = queued & (v.c.status != "")
    # The row as it was before this statement (a self-join sees the snapshot):
    # a receipt that arrived first may have moved it already.
    before = deliveries.alias("before")
    return (
        update(deliveries)
        .where(deliveries.c.id == v.c.id, before.c.id == v.c.id)
        .values(
            attempt_started_at=_case(v.c.unknown, deliveries.c.attempt_started_at, None),
            provider_message_id=func.coalesce(v.c.pmid, deliveries.c.provider_message_id),
            status=_case(moves, v.c.status, deliveries.c.status),
            reason=_case(queued, v.c.reason, deliveries.c.reason),
            updated_at=bindparam("now"),
        )
        .returning(
            deliveries.c.id,
            deliveries.c.status,
            deliveries.c.channel,
            deliveries.c.attempt_provider,
            deliveries.c.tenant_id,
            before.c.status.label("was"),
        )
    )


async def record_outcomes(
    session: AsyncSession, outcomes: list[DeliveryOutcome], *, now: datetime
) -> list[ReachedStatus]:
    """Applies a batch of outcomes in a handful of statements: moves queued
    deliveries forward (a receipt that arrived first wins), clears the
    attempts' in-progress marks (begin_attempts counted them), records
    history, and rolls up each notification's status. Returns the statuses
    this batch moved deliveries to."""
    if not outcomes:
        return []
    await lock_notifications(session, delivery_ids=[o.delivery_id for o in outcomes])
    moved = await session.execute(
        _RECORD_OUTCOMES,
        {
            "o_ids": [o.delivery_id for o in outcomes],
            "o_pmids": [o.provider_message_id for o in outcomes],
            "o_statuses": [o.status for o in outcomes],
            "o_reasons": [o.reason for o in outcomes],
            "o_unknown": [o.unknown for o in outcomes],
            "now": now,
        },
    )
    rows = moved.all()
    final_status: dict[str, str] = {row.id: row.status for row in rows}
    reached = [
        ReachedStatus(row.channel, row.attempt_provider, DeliveryStatus(row.status))
        for row in rows
        if row.was == DeliveryStatus.QUEUED and row.status != DeliveryStatus.QUEUED
    ]
    events: list[dict[str, Any]] = []
    for o in outcomes:
        status = final_status.get(o.delivery_id, "")
        events.append(
            {"delivery_id": o.delivery_id, "kind": "attempt", "status": status or "queued",
             "detail": o.detail, "occurred_at": now}
        )  # fmt: skip
        if o.status and status == o.status:
            events.append(
                {"delivery_id": o.delivery_id, "kind": "status", "status": status,
                 "detail": o.reason, "occurred_at": now}
            )  # fmt: skip
    await session.execute(insert(delivery_events), events)
    reasons = {o.delivery_id: o.reason for o in outcomes}
    await emit_delivery_changes(
        session,
        [
            DeliveryChange(row.tenant_id, row.id, row.status, reasons[row.id])
            for row in rows
            if row.was == DeliveryStatus.QUEUED and row.status != DeliveryStatus.QUEUED
        ],
        now=now,
    )
    await roll_up_notifications(
        session, notification_ids={o.notification_id for o in outcomes}, now=now
    )
    await count_moves(
        session,
        [
            CountedMove(row.id, DeliveryStatus(row.status))
            for row in rows
            if row.was == DeliveryStatus.QUEUED and row.status != DeliveryStatus.QUEUED
        ],
        now=now,
    )
    return reached


def _case(condition: Any, then: Any, otherwise: Any) -> Any:
    return case((condition, then), else_=otherwise)


_RECORD_OUTCOMES = _record_outcomes_statement()


async def bulk_routing(session: AsyncSession, *, bulk_id: str) -> dict[str, Any] | None:
    """The routing policy of a routed bulk, else None. Every row has the
    same, so one row tells (and an unrouted bulk is not scanned)."""
    row = (
        await session.execute(
            select(notifications.c.routing).where(notifications.c.bulk_id == bulk_id).limit(1)
        )
    ).first()
    return dict(row.routing) if row and row.routing else None


@dataclass(frozen=True)
class StepRow:
    """A bulk row whose routing step is being tried, with its delivery."""

    notification_id: str
    delivery_id: str
    status: DeliveryStatus


async def trying_at_step(
    session: AsyncSession,
    *,
    bulk_id: str,
    position: int,
    notification_ids: list[str] | None = None,
) -> list[StepRow]:
    """Rows of a bulk whose step `position` is still trying, in notification
    id order (the order locks are taken in)."""
    query = (
        select(routing_steps.c.notification_id, deliveries.c.id, deliveries.c.status)
        .join(notifications, notifications.c.id == routing_steps.c.notification_id)
        .join(deliveries, deliveries.c.id == routing_steps.c.delivery_id)
        .where(
            notifications.c.bulk_id == bulk_id,
            routing_steps.c.position == position,
            routing_steps.c.outcome == StepOutcome.TRYING,
        )
        .order_by(routing_steps.c.notification_id)
    )
    if notification_ids is not None:
        query = query.where(routing_steps.c.notification_id.in_(notification_ids))
    return [
        StepRow(row.notification_id, row.id, DeliveryStatus(row.status))
        for row in await session.execute(query)
    ]


async def pages_to_send(
    session: AsyncSession, *, bulk_id: str, position: int, page_size: int
) -> list[int]:
    """First rows of the pages holding step `position` deliveries still to
    hand over (queued, no provider message id, no attempt mark)."""
    page = (notifications.c.row_index // page_size) * page_size
    rows = await session.execute(
        select(page.label("first"))
        .select_from(routing_steps)
        .join(notifications, notifications.c.id == routing_steps.c.notification_id)
        .join(deliveries, deliveries.c.id == routing_steps.c.delivery_id)
        .where(
            notifications.c.bulk_id == bulk_id,
            routing_steps.c.position == position,
            deliveries.c.status == DeliveryStatus.QUEUED,
            deliveries.c.provider_message_id.is_(None),
            deliveries.c.attempt_started_at.is_(None),
        )
        .group_by(page)
        .order_by(page)
    )
    return [int(r.first) for r in rows]
