"""Alert rules, their history, and the per-minute counters rules read.
Functions never commit: the caller owns the transaction."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    DateTime,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.alerts import (
    AlertEvent,
    EventKind,
    Rule,
    RuleKind,
    RuleSpec,
    RuleState,
    WindowCounts,
)
from server.domain.channels import Channel
from server.domain.status import DeliveryStatus
from server.store.tables import alert_counters, alert_events, alert_rules


def _rule(row: Any) -> Rule:
    spec = RuleSpec(
        name=row.name,
        kind=RuleKind(row.kind),
        channel=row.channel,
        template_id=row.template_id,
        threshold_percent=row.threshold_percent,
        max_failures=row.max_failures,
        window_minutes=row.window_minutes,
        min_sends=row.min_sends,
        notify_channel=Channel(row.notify["channel"]),
        notify_to=row.notify["to"],
    )
    return Rule(
        row.id, row.tenant_id, spec, RuleState(row.state), row.state_changed_at,
        row.last_evaluated_at, row.created_at, row.enabled,
    )  # fmt: skip


async def insert_rule(
    session: AsyncSession, *, rule_id: str, tenant_id: str, spec: RuleSpec, now: datetime
) -> Rule:
    row = (
        await session.execute(
            insert(alert_rules)
            .values(
                id=rule_id,
                tenant_id=tenant_id,
                name=spec.name,
                kind=spec.kind,
                channel=spec.channel,
                template_id=spec.template_id,
                threshold_percent=spec.threshold_percent,
                max_failures=spec.max_failures,
                window_minutes=spec.window_minutes,
                min_sends=spec.min_sends,
                notify={"channel": spec.notify_channel.value, "to": spec.notify_to},
                state=RuleState.OK,
                state_changed_at=now,
                created_at=now,
            )
            .returning(alert_rules)
        )
    ).one()
    return _rule(row)


async def count_rules(session: AsyncSession, *, tenant_id: str) -> int:
    return int(
        (
            await session.execute(select(func.count()).where(alert_rules.c.tenant_id == tenant_id))
        ).scalar_one()
    )


async def get_rule(
    session: AsyncSession, *, tenant_id: str, rule_id: str, for_update: bool = False
) -> Rule | None:
    query = select(alert_rules).where(
        alert_rules.c.tenant_id == tenant_id, alert_rules.c.id == rule_id
    )
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return _rule(row) if row else None


async def lock_rule(session: AsyncSession, *, rule_id: str) -> Rule | None:
    """A rule by id, locked, for its checks (which act for the platform)."""
    row = (
        await session.execute(
            select(alert_rules).where(alert_rules.c.id == rule_id).with_for_update()
        )
    ).first()
    return _rule(row) if row else None


async def list_rules(
    session: AsyncSession, *, tenant_id: str, after: tuple[datetime, str] | None, limit: int
) -> list[Rule]:
    """Oldest first; `after` is the (created_at, id) of the last rule seen."""
    query = select(alert_rules).where(alert_rules.c.tenant_id == tenant_id)
    if after:
        created_at, last_id = after
        query = query.where(
            or_(
                alert_rules.c.created_at > created_at,
                and_(alert_rules.c.created_at == created_at, alert_rules.c.id > last_id),
            )
        )
    query = query.order_by(alert_rules.c.created_at, alert_rules.c.id).limit(limit)
    return [_rule(row) for row in await session.execute(query)]


async def delete_rule(session: AsyncSession, *, tenant_id: str, rule_id: str) -> Rule | None:
    row = (
        await session.execute(
            delete(alert_rules)
            .where(alert_rules.c.tenant_id == tenant_id, alert_rules.c.id == rule_id)
            .returning(alert_rules)
        )
    ).first()
    return _rule(row) if row else None


async def set_enabled(
    session: AsyncSession, *, tenant_id: str, rule_id: str, enabled: bool
) -> Rule | None:
    row = (
        await session.execute(
            update(alert_rules)
            .where(alert_rules.c.tenant_id == tenant_id, alert_rules.c.id == rule_id)
            .values(enabled=enabled)
            .returning(alert_rules)
        )
    ).first()
    return _rule(row) if row else None


async def set_checked(
    session: AsyncSession, *, rule_id: str, now: datetime, state: RuleState | None = None
) -> None:
    """Records a check, and with `state` the change it saw."""
    changes: dict[str, Any] = {"last_evaluated_at": now}
    if state is not None:
        changes |= {"state": state, "state_changed_at": now}
    await session.execute(update(alert_rules).where(alert_rules.c.id == rule_id).values(**changes))


async def insert_event(
    session: AsyncSession,
    *,
    rule_id: str,
    tenant_id: str,
    kind: EventKind,
    measured: dict[str, Any],
    summary: str,
    notification_id: str,
    now: datetime,
) -> None:
    await session.execute(
        insert(alert_events).values(
            rule_id=rule_id, tenant_id=tenant_id, kind=kind, occurred_at=now,
            measured=measured, summary=summary, notification_id=notification_id,
        )
    )  # fmt: skip


async def list_events(
    session: AsyncSession, *, tenant_id: str, rule_id: str, before: int | None, limit: int
) -> list[AlertEvent]:
    """Newest first; `before` is the id of the last event seen."""
    query = select(alert_events).where(
        alert_events.c.tenant_id == tenant_id, alert_events.c.rule_id == rule_id
    )
    if before is not None:
        query = query.where(alert_events.c.id < before)
    rows = await session.execute(query.order_by(alert_events.c.id.desc()).limit(limit))
    return [
        AlertEvent(r.id, EventKind(r.kind), r.occurred_at, dict(r.measured), r.summary,
                    r.notification_id)
        for r in rows
    ]  # fmt: skip


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


async def window_counts(
    session: AsyncSession, *, tenant_id: str, spec: RuleSpec, now: datetime
) -> WindowCounts:
    """Sums the rule's buckets over its window: outcomes over the current
    minute and the whole minutes before it; hand-overs over the window's
    minutes before the current one (their receipts may still be coming),
    and receipts over those and the current one. A fixed number of rows
    per window, whatever the traffic."""
    current = minute_of(now)
    outcomes_since = current - timedelta(minutes=spec.window_minutes - 1)
    handed_since = current - timedelta(minutes=spec.window_minutes)
    c = alert_counters.c
    outcomes = c.minute >= outcomes_since

    def total(counter: Any, where: Any = None) -> Any:
        summed = func.sum(counter) if where is None else func.sum(counter).filter(where)
        return func.coalesce(summed, 0)

    query = select(
        total(c.delivered, outcomes),
        total(c.failed, outcomes),
        total(c.handed_over, c.minute < current),
        total(c.receipts),
    ).where(c.tenant_id == tenant_id, c.minute >= handed_since)
    if spec.channel:
        query = query.where(c.channel == spec.channel)
    if spec.template_id:
        query = query.where(c.template_id == spec.template_id)
    delivered, failed, handed_over, receipts = (await session.execute(query)).one()
    return WindowCounts(int(delivered), int(failed), int(handed_over), int(receipts))


async def purge_counts(session: AsyncSession, *, before: datetime) -> int:
    """Deletes buckets older than `before`, which no window reaches."""
    result = await session.execute(delete(alert_counters).where(alert_counters.c.minute < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CountedMove:
    """A delivery's status change, as alert counters see it."""

    delivery_id: str
    status: DeliveryStatus
    # A provider's receipt made it (not the worker's own call).
    receipt: bool = False


# The moves arrive as arrays (a statement the driver prepares once, whatever
# the batch size), are summed per key, and keys are upserted in order, so
# concurrent batches lock buckets in the same order. Deliveries of alert
# notifications are left out. Also a step of store.notifications'
# _WRITE_MOVES, which counts the moves it writes in the same statement.
COUNT_MOVES_SQL = """
    INSERT INTO alert_counters
        (tenant_id, channel, template_id, minute, delivered, failed, handed_over, receipts)
    SELECT d.tenant_id, d.channel, n.template_id, :minute,
           sum(m.delivered), sum(m.failed), sum(m.handed_over), sum(m.receipts)
    FROM unnest(CAST(:c_ids AS text[]), CAST(:c_delivered AS int[]),
                CAST(:c_failed AS int[]), CAST(:c_handed_over AS int[]),
                CAST(:c_receipts AS int[]))
         AS m(id, delivered, failed, handed_over, receipts)
    JOIN deliveries d ON d.id = m.id
    JOIN notifications n ON n.id = d.notification_id
    WHERE NOT EXISTS (SELECT 1 FROM alert_events e WHERE e.notification_id = n.id)
    GROUP BY d.tenant_id, d.channel, n.template_id
    ORDER BY d.tenant_id, d.channel, n.template_id
    ON CONFLICT (tenant_id, channel, template_id, minute) DO UPDATE SET
        delivered = alert_counters.delivered + EXCLUDED.delivered,
        failed = alert_counters.failed + EXCLUDED.failed,
        handed_over = alert_counters.handed_over + EXCLUDED.handed_over,
        receipts = alert_counters.receipts + EXCLUDED.receipts
"""
_COUNT_MOVES = text(COUNT_MOVES_SQL)


def count_moves_params(moves: list[CountedMove], *, now: datetime) -> dict[str, Any]:
    """COUNT_MOVES_SQL's parameters."""
    return {
        "minute": minute_of(now),
        "c_ids": [m.delivery_id for m in moves],
        "c_delivered": [int(m.status == DeliveryStatus.DELIVERED) for m in moves],
        "c_failed": [int(m.status == DeliveryStatus.FAILED) for m in moves],
        "c_handed_over": [int(m.status == DeliveryStatus.SENT) for m in moves],
        "c_receipts": [int(m.receipt) for m in moves],
    }


async def count_moves(session: AsyncSession, moves: list[CountedMove], *, now: datetime) -> None:
    """Adds status changes to their (tenant, channel, template, minute)
    buckets: one upsert per key and batch (see _COUNT_MOVES), so an alert
    cannot feed an alert and a check never scans deliveries."""
    if moves:
        await session.execute(_COUNT_MOVES, count_moves_params(moves, now=now))


async def channel_buckets(
    session: AsyncSession, *, tenant_id: str, since: datetime, bucket_minutes: int
) -> list[tuple[str, datetime, int, int, int]]:
    """(channel, bucket start, delivered, failed, handed over) of the tenant's
    counters since `since` (a whole minute), summed into buckets of
    `bucket_minutes` counted from `since`: at most channels x templates x
    minutes rows read, whatever the traffic."""
    c = alert_counters.c
    start = func.date_bin(
        literal(timedelta(minutes=bucket_minutes)),
        c.minute,
        literal(since, DateTime(timezone=True)),
    )
    rows = await session.execute(
        select(
            c.channel,
            start.label("start"),
            func.sum(c.delivered),
            func.sum(c.failed),
            func.sum(c.handed_over),
        )
        .where(c.tenant_id == tenant_id, c.minute >= since)
        .group_by(c.channel, "start")
    )
    return [(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in rows]
