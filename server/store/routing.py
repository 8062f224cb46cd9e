"""Routing steps of routed notifications and tenants' default routing.
Functions never commit: the caller owns the transaction."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.routing import StepOutcome
from server.domain.status import DeliveryStatus
from server.store.tables import deliveries, delivery_events, routing_defaults, routing_steps
from server.store.tenant_webhooks import DeliveryChange, emit_delivery_changes


@dataclass
class NewRoutingStep:
    position: int
    channel: str
    address: str
    content: dict[str, Any] = field(default_factory=dict)
    # Set for the first step, whose delivery is created with the notification.
    delivery_id: str | None = None


@dataclass
class RoutingStepRecord:
    notification_id: str
    tenant_id: str
    position: int
    channel: str
    address: str
    content: dict[str, Any]
    delivery_id: str | None
    outcome: StepOutcome
    reason: str
    started_at: datetime | None
    finished_at: datetime | None


def _step(row: Any) -> RoutingStepRecord:
    return RoutingStepRecord(
        notification_id=row.notification_id,
        tenant_id=row.tenant_id,
        position=row.position,
        channel=row.channel,
        address=row.address,
        content=dict(row.content),
        delivery_id=row.delivery_id,
        outcome=StepOutcome(row.outcome),
        reason=row.reason,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


async def insert_steps(
    session: AsyncSession,
    steps: list[tuple[str, str, NewRoutingStep]],
    *,
    now: datetime,
) -> None:
    """(notification_id, tenant_id, step) rows, in one statement. A step
    with a delivery is being tried from now."""
    if not steps:
        return
    await session.execute(
        insert(routing_steps),
        [
            {
                "notification_id": notification_id,
                "tenant_id": tenant_id,
                "position": s.position,
                "channel": s.channel,
                "address": s.address,
                "content": s.content,
                "delivery_id": s.delivery_id,
                "outcome": StepOutcome.TRYING if s.delivery_id else StepOutcome.PENDING,
                "started_at": now if s.delivery_id else None,
            }
            for notification_id, tenant_id, s in steps
        ],
    )


async def steps_of(
    session: AsyncSession, *, notification_ids: list[str], for_update: bool = False
) -> dict[str, list[RoutingStepRecord]]:
    """Each routed notification's steps in order; others are left out."""
    if not notification_ids:
        return {}
    query = (
        select(routing_steps)
        .where(routing_steps.c.notification_id.in_(sorted(set(notification_ids))))
        .order_by(routing_steps.c.notification_id, routing_steps.c.position)
    )
    if for_update:
        query = query.with_for_update()
    found: dict[str, list[RoutingStepRecord]] = {}
    for row in await session.execute(query):
        found.setdefault(row.notification_id, []).append(_step(row))
    return found


async def finish_step(
    session: AsyncSession,
    *,
    notification_id: str,
    position: int,
    outcome: StepOutcome,
    reason: str,
    now: datetime,
) -> None:
    await session.execute(
        update(routing_steps)
        .where(
            routing_steps.c.notification_id == notification_id,
            routing_steps.c.position == position,
        )
        .values(outcome=outcome, reason=reason, finished_at=None if outcome.is_open else now)
    )


async def skip_pending(
    session: AsyncSession, *, notification_id: str, reason: str, now: datetime
) -> None:
    await session.execute(
        update(routing_steps)
        .where(
            routing_steps.c.notification_id == notification_id,
            routing_steps.c.outcome == StepOutcome.PENDING,
        )
        .values(outcome=StepOutcome.SKIPPED, reason=reason, finished_at=now)
    )


async def insert_step_delivery(
    session: AsyncSession,
    *,
    step: RoutingStepRecord,
    delivery_id: str,
    position: int,
    now: datetime,
) -> None:
    """The queued delivery of a step about to be tried, at `position` among
    the notification's deliveries, and marks the step as trying."""
    await session.execute(
        insert(deliveries).values(
            id=delivery_id,
            notification_id=step.notification_id,
            tenant_id=step.tenant_id,
            channel=step.channel,
            position=position,
            address=step.address,
            content=step.content,
            status=DeliveryStatus.QUEUED,
            created_at=now,
            updated_at=now,
        )
    )
    await session.execute(
        insert(delivery_events).values(
            delivery_id=delivery_id,
            kind="status",
            status=DeliveryStatus.QUEUED,
            detail=f"routing step {step.position + 1}",
            occurred_at=now,
        )
    )
    await emit_delivery_changes(
        session,
        [DeliveryChange(step.tenant_id, delivery_id, DeliveryStatus.QUEUED, "routing step")],
        now=now,
    )
    await session.execute(
        update(routing_steps)
        .where(
            routing_steps.c.notification_id == step.notification_id,
            routing_steps.c.position == step.position,
        )
        .values(outcome=StepOutcome.TRYING, delivery_id=delivery_id, started_at=now)
    )


@dataclass(frozen=True)
class DefaultRoutingRecord:
    policy: dict[str, Any]
    updated_at: datetime


async def get_default(session: AsyncSession, *, tenant_id: str) -> DefaultRoutingRecord | None:
    row = (
        await session.execute(
            select(routing_defaults).where(routing_defaults.c.tenant_id == tenant_id)
        )
    ).first()
    return DefaultRoutingRecord(dict(row.policy), row.updated_at) if row else None


async def set_default(
    session: AsyncSession, *, tenant_id: str, policy: dict[str, Any], now: datetime
) -> None:
    statement = pg_insert(routing_defaults).values(
        tenant_id=tenant_id, policy=policy, updated_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[routing_defaults.c.tenant_id],
            set_={"policy": statement.excluded.policy, "updated_at": now},
        )
    )
