"""Tenant status webhooks: endpoints, the events queued for them (written in
the transaction of the change they report), and the attempts at sending
them. Functions never commit: the caller owns the transaction.

Anything that changes what a tenant may hear about calls emit_events (or,
for delivery status changes, emit_delivery_changes) in its own transaction."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
    values,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.ids import new_id
from server.domain.webhooks import delivery_event, event_body
from server.store.tables import (
    deliveries,
    notifications,
    tenant_webhook_attempts,
    tenant_webhook_endpoints,
    tenant_webhook_messages,
)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class NewEvent:
    """Something a tenant's endpoints may want to hear about."""

    tenant_id: str
    # A domain.webhooks.EventType value.
    type: str
    data: dict[str, Any]
    occurred_at: datetime
    # Events with the same key (e.g. a notification id) reach each endpoint
    # in the order they were emitted; None: no order to keep.
    ordering_key: str | None = None


@dataclass(frozen=True)
class DeliveryDetails:
    """What a delivery event says besides the status."""

    notification_id: str
    channel: str
    provider: str | None
    bulk_id: str | None
    row_index: int | None


@dataclass(frozen=True)
class DeliveryChange:
    """A delivery that moved to `status`. Without `details`, the rest of its
    event is read, and only when its tenant has a subscribed endpoint."""

    tenant_id: str
    delivery_id: str
    status: str
    reason: str
    details: DeliveryDetails | None = None


Subscriptions = dict[str, list[tuple[str, frozenset[str]]]]


def listened_to(tenant_id: ColumnElement[str]) -> ColumnElement[bool]:
    """True where the tenant has an enabled endpoint: a column for a query
    that reads the tenant anyway, so that changes nobody listens to skip
    emit_delivery_changes and its read (most tenants have no webhooks)."""
    return (
        select(tenant_webhook_endpoints.c.id)
        .where(
            tenant_webhook_endpoints.c.tenant_id == tenant_id,
            tenant_webhook_endpoints.c.disabled_at.is_(None),
        )
        .exists()
    )


# Built once: it runs with every status change of a tenant with webhooks.
_SUBSCRIPTIONS = select(
    tenant_webhook_endpoints.c.tenant_id,
    tenant_webhook_endpoints.c.id,
    tenant_webhook_endpoints.c.event_types,
).where(
    tenant_webhook_endpoints.c.tenant_id.in_(bindparam("tenant_ids", expanding=True)),
    tenant_webhook_endpoints.c.disabled_at.is_(None),
)


async def subscriptions(session: AsyncSession, *, tenant_ids: set[str]) -> Subscriptions:
    """Each tenant's enabled endpoints and their types: one indexed read,
    empty for tenants without webhooks (the common case)."""
    if not tenant_ids:
        return {}
    rows = await session.execute(_SUBSCRIPTIONS, {"tenant_ids": sorted(tenant_ids)})
    found: Subscriptions = defaultdict(list)
    for row in rows:
        found[row.tenant_id].append((row.id, frozenset(row.event_types)))
    return found


def _wanted(subs: Subscriptions, tenant_id: str, event_type: str) -> bool:
    return any(event_type in types for _, types in subs.get(tenant_id, ()))


async def emit_events(session: AsyncSession, events: Sequence[NewEvent]) -> None:
    """Queues each event for every enabled endpoint of its tenant subscribed
    to its type: one read, then one multi-row insert if any endpoint wants one."""
    subs = await subscriptions(session, tenant_ids={e.tenant_id for e in events})
    await _queue(session, events, subs)


async def _queue(session: AsyncSession, events: Sequence[NewEvent], subs: Subscriptions) -> None:
    rows: list[dict[str, Any]] = []
    for event in events:
        wanting = [eid for eid, types in subs.get(event.tenant_id, ()) if event.type in types]
        if not wanting:
            continue
        event_id = new_id("evt")
        body = event_body(event.type, event.occurred_at, event.data)
        rows.extend(
            {
                "endpoint_id": endpoint_id,
                "tenant_id": event.tenant_id,
                "event_id": event_id,
                "event_type": event.type,
                "ordering_key": event.ordering_key,
                "body": body,
                "state": PENDING,
                "next_attempt_at": event.occurred_at,
                "created_at": event.occurred_at,
            }
            for endpoint_id in wanting
        )
    if rows:
        # In emission order, so that ids (which order the sending) follow it.
        await session.execute(insert(tenant_webhook_messages), rows)


async def emit_delivery_changes(
    session: AsyncSession, changes: Sequence[DeliveryChange], *, now: datetime
) -> None:
    """delivery.<status> events for these moves, in order per notification.
    Reads what changes without details lack, and only for subscribed tenants."""
    if not changes:
        return
    subs = await subscriptions(session, tenant_ids={c.tenant_id for c in changes})
    wanted = [c for c in changes if _wanted(subs, c.tenant_id, delivery_event(c.status))]
    if not wanted:
        return
    known = await _details(session, {c.delivery_id for c in wanted if c.details is None})
    events = []
    for change in wanted:
        details = change.details or known.get(change.delivery_id)
        if details is None:
            continue
        data: dict[str, Any] = {
            "notification_id": details.notification_id,
            "delivery_id": change.delivery_id,
            "channel": details.channel,
            "status": change.status,
            "reason": change.reason,
            "provider": details.provider or "",
        }
        if details.bulk_id:
            data["bulk_id"] = details.bulk_id
            data["row_index"] = details.row_index
        events.append(
            NewEvent(
                tenant_id=change.tenant_id,
                type=delivery_event(change.status),
                data=data,
                occurred_at=now,
                ordering_key=details.notification_id,
            )
        )
    await _queue(session, events, subs)


async def _details(session: AsyncSession, delivery_ids: set[str]) -> dict[str, DeliveryDetails]:
    if not delivery_ids:
        return {}
    rows = await session.execute(
        select(
            deliveries.c.id,
            deliveries.c.notification_id,
            deliveries.c.channel,
            deliveries.c.attempt_provider,
            notifications.c.bulk_id,
            notifications.c.row_index,
        )
        .join(notifications, notifications.c.id == deliveries.c.notification_id)
        .where(deliveries.c.id.in_(sorted(delivery_ids)))
    )
    return {
        row.id: DeliveryDetails(
            row.notification_id, row.channel, row.attempt_provider, row.bulk_id, row.row_index
        )
        for row in rows
    }


# Endpoints.


@dataclass(frozen=True)
class EndpointRecord:
    endpoint_id: str
    tenant_id: str
    url: str
    description: str
    event_types: list[str]
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str


def _endpoint(row: Any) -> EndpointRecord:
    return EndpointRecord(
        endpoint_id=row.id,
        tenant_id=row.tenant_id,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types),
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
    )


async def count_endpoints(session: AsyncSession, *, tenant_id: str) -> int:
    return int(
        (
            await session.execute(
                select(func.count()).where(tenant_webhook_endpoints.c.tenant_id == tenant_id)
            )
        ).scalar_one()
    )


async def insert_endpoint(
    session: AsyncSession,
    *,
    endpoint_id: str,
    tenant_id: str,
    url: str,
    description: str,
    event_types: list[str],
    secret: str,
    now: datetime,
) -> EndpointRecord:
    row = (
        await session.execute(
            insert(tenant_webhook_endpoints)
            .values(
                id=endpoint_id,
                tenant_id=tenant_id,
                url=url,
                description=description,
                event_types=event_types,
                secret=secret,
                created_at=now,
            )
            .returning(tenant_webhook_endpoints)
        )
    ).one()
    return _endpoint(row)


async def get_endpoint(
    session: AsyncSession, *, tenant_id: str, endpoint_id: str
) -> EndpointRecord | None:
    row = (
        await session.execute(
            select(tenant_webhook_endpoints).where(
                tenant_webhook_endpoints.c.tenant_id == tenant_id,
                tenant_webhook_endpoints.c.id == endpoint_id,
            )
        )
    ).first()
    return _endpoint(row) if row else None


async def list_endpoints(
    session: AsyncSession, *, tenant_id: str, after: tuple[datetime, str] | None, limit: int
) -> list[EndpointRecord]:
    """Newest first; `after` is the (created_at, id) of the last one seen."""
    t = tenant_webhook_endpoints
    query = select(t).where(t.c.tenant_id == tenant_id)
    if after:
        created_at, last_id = after
        query = query.where(
            or_(t.c.created_at < created_at, and_(t.c.created_at == created_at, t.c.id < last_id))
        )
    rows = await session.execute(query.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit))
    return [_endpoint(row) for row in rows]


async def delete_endpoint(session: AsyncSession, *, tenant_id: str, endpoint_id: str) -> bool:
    """Removes the endpoint; its messages and their attempts go with it (ON DELETE CASCADE)."""
    t = tenant_webhook_endpoints
    gone = await session.execute(
        delete(t).where(t.c.tenant_id == tenant_id, t.c.id == endpoint_id).returning(t.c.id)
    )
    return gone.first() is not None


async def update_endpoint(
    session: AsyncSession, *, tenant_id: str, endpoint_id: str, values: dict[str, Any]
) -> EndpointRecord | None:
    t = tenant_webhook_endpoints
    row = (
        await session.execute(
            update(t)
            .where(t.c.tenant_id == tenant_id, t.c.id == endpoint_id)
            .values(**values)
            .returning(t)
        )
    ).first()
    return _endpoint(row) if row else None


async def rotate_secret(
    session: AsyncSession, *, tenant_id: str, endpoint_id: str, secret: str, overlap_until: datetime
) -> EndpointRecord | None:
    t = tenant_webhook_endpoints
    return await update_endpoint(
        session,
        tenant_id=tenant_id,
        endpoint_id=endpoint_id,
        values={
            "secret": secret,
            "previous_secret": t.c.secret,
            "previous_secret_expires_at": overlap_until,
        },
    )


async def enable_endpoint(
    session: AsyncSession, *, tenant_id: str, endpoint_id: str
) -> EndpointRecord | None:
    return await update_endpoint(
        session,
        tenant_id=tenant_id,
        endpoint_id=endpoint_id,
        values={
            "disabled_at": None,
            "disabled_reason": "",
            "failed_events": 0,
            "failing_since": None,
        },
    )


# Attempts and replays.


@dataclass(frozen=True)
class AttemptRecord:
    attempt_id: int
    event_id: str
    event_type: str
    attempt: int
    attempted_at: datetime
    http_status: int | None
    error: str
    duration_ms: int
    next_retry_at: datetime | None


async def list_attempts(
    session: AsyncSession, *, tenant_id: str, endpoint_id: str, before: int | None, limit: int
) -> list[AttemptRecord]:
    """Newest first; `before` is the id of the last attempt already seen."""
    a = tenant_webhook_attempts
    query = select(a).where(a.c.tenant_id == tenant_id, a.c.endpoint_id == endpoint_id)
    if before is not None:
        query = query.where(a.c.id < before)
    rows = await session.execute(query.order_by(a.c.id.desc()).limit(limit))
    return [
        AttemptRecord(
            attempt_id=row.id,
            event_id=row.event_id,
            event_type=row.event_type,
            attempt=row.attempt,
            attempted_at=row.attempted_at,
            http_status=row.http_status,
            error=row.error,
            duration_ms=row.duration_ms,
            next_retry_at=row.next_retry_at,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class MessageState:
    message_id: int
    state: str


async def latest_message(
    session: AsyncSession, *, tenant_id: str, endpoint_id: str, event_id: str
) -> MessageState | None:
    """The event's latest message to the endpoint (a replay makes a new one)."""
    m = tenant_webhook_messages
    row = (
        await session.execute(
            select(m.c.id, m.c.state)
            .where(
                m.c.tenant_id == tenant_id, m.c.endpoint_id == endpoint_id, m.c.event_id == event_id
            )
            .order_by(m.c.id.desc())
            .limit(1)
        )
    ).first()
    return MessageState(row.id, row.state) if row else None


async def replay_message(session: AsyncSession, *, message_id: int, now: datetime) -> None:
    """Queues the message's event again, as a new message (its attempts
    count from 1), behind what is already queued."""
    m = tenant_webhook_messages
    await session.execute(
        insert(m).from_select(
            [
                "endpoint_id", "tenant_id", "event_id", "event_type", "ordering_key", "body",
                "state", "next_attempt_at", "created_at",
            ],
            select(
                m.c.endpoint_id, m.c.tenant_id, m.c.event_id, m.c.event_type, m.c.ordering_key,
                m.c.body, text(f"'{PENDING}'"), text(":now"), text(":now"),
            ).where(m.c.id == message_id),
        ),
        {"now": now},
    )  # fmt: skip


# The sender (python -m server webhooks).


@dataclass(frozen=True)
class ClaimedMessage:
    message_id: int
    endpoint_id: str
    tenant_id: str
    event_id: str
    event_type: str
    ordering_key: str | None
    body: str
    attempts: int
    url: str
    secrets: list[str]


# Per endpoint (LATERAL), the few due messages it has room for, by the
# due-time index, so a backlog at one endpoint costs the scan no more than
# that many rows there; then round-robin across endpoints (every endpoint's
# next message before any endpoint's one after), so that a tenant whose
# endpoints keep failing fast cannot take every free slot. The candidates
# are then locked, SKIP LOCKED, with their state checked again.
_CLAIM = text(
    """
    WITH flying AS (
        SELECT * FROM unnest(CAST(:flying_ids AS text[]), CAST(:flying_counts AS int[]))
            AS f(endpoint_id, n)
    ), candidates AS (
        SELECT due.id
        FROM tenant_webhook_endpoints e
        LEFT JOIN flying f ON f.endpoint_id = e.id
        CROSS JOIN LATERAL (
            SELECT m.id, m.next_attempt_at,
                   row_number() OVER (ORDER BY m.next_attempt_at, m.id) AS turn
            FROM tenant_webhook_messages m
            WHERE m.endpoint_id = e.id AND m.state = 'pending' AND m.next_attempt_at <= :now
              AND (m.leased_until IS NULL OR m.leased_until < :now)
              AND (m.ordering_key IS NULL OR NOT EXISTS (
                    SELECT 1 FROM tenant_webhook_messages p
                    WHERE p.state = 'pending' AND p.endpoint_id = m.endpoint_id
                      AND p.ordering_key = m.ordering_key AND p.id < m.id))
            ORDER BY m.next_attempt_at, m.id
            LIMIT GREATEST(:per_endpoint - COALESCE(f.n, 0), 0)
        ) due
        WHERE e.disabled_at IS NULL
        ORDER BY due.turn + COALESCE(f.n, 0), due.next_attempt_at, due.id
        LIMIT :limit
    ), picked AS (
        SELECT m.id FROM tenant_webhook_messages m JOIN candidates c ON c.id = m.id
        WHERE m.state = 'pending' AND (m.leased_until IS NULL OR m.leased_until < :now)
        FOR UPDATE OF m SKIP LOCKED
    )
    UPDATE tenant_webhook_messages m SET leased_until = :lease
    FROM picked, tenant_webhook_endpoints e
    WHERE m.id = picked.id AND e.id = m.endpoint_id
    RETURNING m.id, m.endpoint_id, m.tenant_id, m.event_id, m.event_type, m.ordering_key,
              m.body, m.attempts, e.url, e.secret, e.previous_secret, e.previous_secret_expires_at
    """
)


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    per_endpoint: int,
    in_flight: dict[str, int],
    lease: timedelta,
) -> list[ClaimedMessage]:
    """Leases up to `limit` due messages, each endpoint up to `per_endpoint`
    counting the `in_flight` ones this sender already has there, each only
    once the earlier pending message with its ordering key is done."""
    rows = await session.execute(
        _CLAIM,
        {
            "now": now,
            "limit": limit,
            "per_endpoint": per_endpoint,
            "flying_ids": list(in_flight),
            "flying_counts": list(in_flight.values()),
            "lease": now + lease,
        },
    )
    claimed = []
    for row in rows:
        secrets = [row.secret]
        expires = row.previous_secret_expires_at
        if row.previous_secret and expires and expires > now:
            secrets.append(row.previous_secret)
        claimed.append(
            ClaimedMessage(
                message_id=row.id,
                endpoint_id=row.endpoint_id,
                tenant_id=row.tenant_id,
                event_id=row.event_id,
                event_type=row.event_type,
                ordering_key=row.ordering_key,
                body=row.body,
                attempts=row.attempts,
                url=row.url,
                secrets=secrets,
            )
        )
    return sorted(claimed, key=lambda c: c.message_id)


@dataclass(frozen=True)
class AttemptOutcome:
    message: ClaimedMessage
    attempted_at: datetime
    http_status: int | None
    error: str
    duration_ms: int
    # When to try again; None with ok False: every attempt is used up.
    next_retry_at: datetime | None

    @property
    def ok(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


@dataclass
class _Streak:
    """One endpoint's attempts within a batch, after its last success there."""

    succeeded: bool = False
    gave_up: int = 0
    failing_from: datetime | None = None
    last_failure: str = ""


async def record_attempts(
    session: AsyncSession,
    outcomes: Sequence[AttemptOutcome],
    *,
    now: datetime,
    disable_after_failed_events: int,
    disable_after: timedelta,
) -> dict[str, str]:
    """Records a batch of attempts and moves their messages on, in a fixed
    number of statements; keeps each endpoint's failure streak and disables
    those past either limit. Returns {endpoint_id: reason} for the endpoints
    this batch disabled."""
    if not outcomes:
        return {}
    m = tenant_webhook_messages
    e = tenant_webhook_endpoints
    await session.execute(
        insert(tenant_webhook_attempts),
        [
            {
                "message_id": o.message.message_id,
                "endpoint_id": o.message.endpoint_id,
                "tenant_id": o.message.tenant_id,
                "event_id": o.message.event_id,
                "event_type": o.message.event_type,
                "attempt": o.message.attempts + 1,
                "attempted_at": o.attempted_at,
                "http_status": o.http_status,
                "error": o.error,
                "duration_ms": o.duration_ms,
                "next_retry_at": o.next_retry_at,
            }
            for o in outcomes
        ],
    )
    finished: dict[str, list[int]] = {DELIVERED: [], FAILED: []}
    retries = []
    for o in outcomes:
        if o.ok or o.next_retry_at is None:
            finished[DELIVERED if o.ok else FAILED].append(o.message.message_id)
        else:
            retries.append(o)
    for state, ids in finished.items():
        if ids:
            await session.execute(
                update(m)
                .where(m.c.id.in_(ids))
                .values(state=state, finished_at=now, attempts=m.c.attempts + 1, leased_until=None)
            )
    if retries:
        v = values(
            column("id", BigInteger),
            column("endpoint_id", Text),
            column("ordering_key", Text),
            column("next_at", DateTime(timezone=True)),
            name="v",
        ).data(
            [
                (o.message.message_id, o.message.endpoint_id, o.message.ordering_key,
                 o.next_retry_at)
                for o in retries
            ]
        )  # fmt: skip
        await session.execute(
            update(m)
            .where(m.c.id == v.c.id)
            .values(attempts=m.c.attempts + 1, leased_until=None, next_attempt_at=v.c.next_at)
        )
        # Later events of the same notifications wait for these anyway: not
        # due before the retry, the sender's claim need not look at them.
        await session.execute(
            update(m)
            .where(
                m.c.endpoint_id == v.c.endpoint_id,
                m.c.ordering_key == v.c.ordering_key,
                m.c.state == PENDING,
                m.c.id > v.c.id,
                m.c.next_attempt_at < v.c.next_at,
            )
            .values(next_attempt_at=v.c.next_at)
        )
    streaks: dict[str, _Streak] = {}
    for o in sorted(outcomes, key=lambda o: o.attempted_at):
        streak = streaks.setdefault(o.message.endpoint_id, _Streak())
        if o.ok:
            streaks[o.message.endpoint_id] = _Streak(succeeded=True)
            continue
        streak.gave_up += 1 if o.next_retry_at is None else 0
        streak.failing_from = streak.failing_from or o.attempted_at
        streak.last_failure = o.error or f"HTTP {o.http_status}"
    s = values(
        column("id", Text),
        column("succeeded", Boolean),
        column("gave_up", Integer),
        column("failing_from", DateTime(timezone=True)),
        name="s",
    ).data([(eid, st.succeeded, st.gave_up, st.failing_from) for eid, st in streaks.items()])
    kept_since = case((s.c.succeeded, None), else_=e.c.failing_since)
    changed = await session.execute(
        update(e)
        .where(
            e.c.id == s.c.id,
            or_(
                s.c.failing_from.is_not(None), e.c.failed_events > 0, e.c.failing_since.is_not(None)
            ),
        )
        .values(
            failed_events=case((s.c.succeeded, 0), else_=e.c.failed_events) + s.c.gave_up,
            # A VALUES column of NULLs reads as text without the cast.
            failing_since=func.coalesce(
                kept_since, cast(s.c.failing_from, DateTime(timezone=True))
            ),
        )
        .returning(e.c.id, e.c.failed_events, e.c.failing_since, e.c.disabled_at)
    )
    disabled: dict[str, str] = {}
    for row in changed:
        if row.disabled_at is not None or row.failing_since is None:
            continue
        if row.failed_events >= disable_after_failed_events:
            disabled[row.id] = (
                f"{row.failed_events} events in a row failed every attempt "
                f"(last: {streaks[row.id].last_failure})"
            )
        elif now - row.failing_since >= disable_after:
            disabled[row.id] = f"every attempt has failed since {row.failing_since.isoformat()}"
    if disabled:
        await session.execute(
            update(e)
            .where(e.c.id == bindparam("eid"))
            .values(disabled_at=now, disabled_reason=bindparam("why")),
            [{"eid": eid, "why": why} for eid, why in disabled.items()],
        )
    return disabled


async def backlog(session: AsyncSession, *, now: datetime) -> tuple[int, float]:
    """Pending messages, and how many seconds the most overdue one has been
    due (0 when none is late): from the pending-only index, however many
    finished messages are kept."""
    m = tenant_webhook_messages
    row = (
        await session.execute(
            select(func.count(), func.min(m.c.next_attempt_at)).where(m.c.state == PENDING)
        )
    ).one()
    count, earliest = row
    late = max(0.0, (now - earliest).total_seconds()) if earliest else 0.0
    return count, late


async def purge_finished(session: AsyncSession, *, before: datetime) -> int:
    """Removes delivered and failed messages finished before `before`, with
    their attempts."""
    m = tenant_webhook_messages
    gone = await session.execute(
        delete(m).where(m.c.state != PENDING, m.c.finished_at < before).returning(m.c.id)
    )
    return len(gone.all())
