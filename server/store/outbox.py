"""The outbox of workflow starts (`pending_dispatches`), and what the sweeper
reads to build each workflow's input. Functions never commit: the caller owns
the transaction."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.status import DeliveryStatus
from server.store.tables import bulks, deliveries, notifications, pending_dispatches


class OutboxKind(StrEnum):
    NOTIFICATION = "notification"
    BULK = "bulk"
    TEMPLATE_APPROVAL = "template_approval"
    ALERT_RULE = "alert_rule"


@dataclass(frozen=True)
class PendingStart:
    """A workflow to start: its kind and what it starts (a notification id, a
    bulk id, a WhatsApp template name), with the input when no table holds it."""

    kind: OutboxKind
    ref: str
    payload: dict[str, Any] | None = None


async def add(session: AsyncSession, starts: list[PendingStart], *, now: datetime) -> None:
    if starts:
        await session.execute(
            insert(pending_dispatches).on_conflict_do_nothing(),
            [
                {"kind": s.kind, "ref": s.ref, "payload": s.payload, "created_at": now}
                for s in starts
            ],
        )


# Built once: every single send's start clears its row.
_REMOVE = delete(pending_dispatches).where(
    tuple_(pending_dispatches.c.kind, pending_dispatches.c.ref).in_(
        bindparam("keys", expanding=True)
    )
)


async def remove(session: AsyncSession, starts: list[PendingStart]) -> None:
    if starts:
        await session.execute(_REMOVE, {"keys": [(s.kind.value, s.ref) for s in starts]})


async def release(session: AsyncSession, starts: list[PendingStart]) -> None:
    """Gives leased rows back at once, for the next sweep."""
    if starts:
        await session.execute(
            update(pending_dispatches).where(_keys_in(starts)).values(leased_until=None)
        )


async def lease(
    session: AsyncSession, *, older_than: datetime, now: datetime, until: datetime, limit: int
) -> list[PendingStart]:
    """Leases pending starts older than `older_than` until `until`: rows that
    another sweeper has locked or leased are skipped, not waited for. The
    caller commits before calling Temporal, so no lock is held meanwhile."""
    free = (
        select(pending_dispatches.c.kind, pending_dispatches.c.ref)
        .where(
            pending_dispatches.c.created_at < older_than,
            (pending_dispatches.c.leased_until.is_(None))
            | (pending_dispatches.c.leased_until < now),
        )
        .order_by(pending_dispatches.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = await session.execute(
        update(pending_dispatches)
        .where(tuple_(pending_dispatches.c.kind, pending_dispatches.c.ref).in_(free))
        .values(leased_until=until)
        .returning(
            pending_dispatches.c.kind, pending_dispatches.c.ref, pending_dispatches.c.payload
        )
    )
    return [PendingStart(OutboxKind(row.kind), row.ref, row.payload) for row in rows]


def _keys_in(starts: list[PendingStart]) -> Any:
    return tuple_(pending_dispatches.c.kind, pending_dispatches.c.ref).in_(
        [(s.kind.value, s.ref) for s in starts]
    )


@dataclass(frozen=True)
class NotificationStart:
    tenant_id: str
    deliveries: list[tuple[str, str]]  # (delivery_id, channel)
    # The notification's stored routing policy, if routed.
    routing: dict[str, Any] | None = None


async def notification_starts(
    session: AsyncSession, *, notification_ids: list[str]
) -> dict[str, NotificationStart]:
    """What each notification's workflow is started with, in one statement."""
    found: dict[str, NotificationStart] = {}
    if not notification_ids:
        return found
    rows = await session.execute(
        select(
            notifications.c.id,
            notifications.c.tenant_id,
            notifications.c.routing,
            deliveries.c.id,
            deliveries.c.channel,
        )
        .join(deliveries, deliveries.c.notification_id == notifications.c.id)
        .where(notifications.c.id.in_(notification_ids))
        .order_by(notifications.c.id, deliveries.c.position)
    )
    for notification_id, tenant_id, routing, delivery_id, channel in rows:
        start = found.setdefault(notification_id, NotificationStart(tenant_id, [], routing))
        start.deliveries.append((delivery_id, channel))
    return found


async def bulk_starts(session: AsyncSession, *, bulk_ids: list[str]) -> dict[str, tuple[str, int]]:
    """(tenant_id, rows) of each bulk, to start its workflow with."""
    if not bulk_ids:
        return {}
    rows = await session.execute(
        select(bulks.c.id, bulks.c.tenant_id, bulks.c.total).where(bulks.c.id.in_(bulk_ids))
    )
    return {row.id: (row.tenant_id, row.total) for row in rows}


async def requeue_unconfirmed(
    session: AsyncSession, *, checked_before: datetime, now: datetime, limit: int
) -> int:
    """Puts back in the outbox the single sends still queued and the bulks
    still unfinished that nobody has checked since `checked_before`, so that
    their workflows are started again if Temporal lost them. Found through
    partial indexes (migration 0008); rows another writer has locked are
    skipped. Returns how many."""
    single = func.coalesce(notifications.c.workflow_checked_at, notifications.c.created_at)
    notification_ids = await _check_now(
        session,
        notifications,
        single,
        [
            notifications.c.status == DeliveryStatus.QUEUED,
            notifications.c.bulk_id.is_(None),
            single < checked_before,
        ],
        now=now,
        limit=limit,
    )
    # A bulk's check time is set when it is released for sending, so an
    # upload still streaming in is never started early.
    bulk_ids = await _check_now(
        session,
        bulks,
        bulks.c.workflow_checked_at,
        [bulks.c.finished_at.is_(None), bulks.c.workflow_checked_at < checked_before],
        now=now,
        limit=limit,
    )
    starts = [PendingStart(OutboxKind.NOTIFICATION, n) for n in notification_ids] + [
        PendingStart(OutboxKind.BULK, b) for b in bulk_ids
    ]
    # Dated as checked before: the sweeper picks them up in this same round.
    await add(session, starts, now=checked_before)
    return len(starts)


async def _check_now(
    session: AsyncSession,
    table: Table,
    checked: ColumnElement[Any],
    where: list[ColumnElement[bool]],
    *,
    now: datetime,
    limit: int,
) -> Sequence[str]:
    """Ids of up to `limit` rows matching `where`, longest unchecked first,
    marked checked `now`; rows locked by another writer are skipped."""
    due = select(table.c.id).where(*where).order_by(checked).limit(limit)
    marked = await session.execute(
        update(table)
        .where(table.c.id.in_(due.with_for_update(skip_locked=True)))
        .values(workflow_checked_at=now)
        .returning(table.c.id)
    )
    return [str(row_id) for row_id in marked.scalars()]


async def release_bulk(session: AsyncSession, *, bulk_id: str, now: datetime) -> None:
    """The bulk is stored whole: queue its workflow start, and from now on
    let recovery check that its workflow exists."""
    await session.execute(
        update(bulks).where(bulks.c.id == bulk_id).values(workflow_checked_at=now)
    )
    await add(session, [PendingStart(OutboxKind.BULK, bulk_id)], now=now)


async def pending_by_kind(session: AsyncSession, *, now: datetime) -> list[tuple[str, int, float]]:
    """Per kind: how many starts are pending, and the oldest one's age in seconds."""
    rows = await session.execute(
        select(
            pending_dispatches.c.kind,
            func.count(),
            func.min(pending_dispatches.c.created_at),
        ).group_by(pending_dispatches.c.kind)
    )
    return [(kind, count, (now - oldest).total_seconds()) for kind, count, oldest in rows]
