"""The tenant webhook outbox against real PostgreSQL: events are queued only
for subscribed, enabled endpoints, in one transaction with the change; the
sender's claim keeps order per notification, bounds each endpoint, skips
busy ones, and a backlog at one endpoint does not hold up another."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from server.domain.ids import new_id
from server.store import tenant_webhooks as hooks
from server.store import tenants
from server.store.db import Database
from server.store.tables import tenant_webhook_messages

LEASE = timedelta(seconds=30)


@pytest.fixture
def db(own_db: Database) -> Database:
    # Not the session platform's: its webhook sender would lease these
    # messages between the claims a test makes.
    return own_db


async def tenant_with_endpoints(db: Database, types: list[list[str]]) -> tuple[str, list[str]]:
    tenant_id = new_id("tnt")
    now = datetime.now(UTC)
    ids = []
    async with db.transaction() as session:
        await tenants.insert_tenant(
            session, tenant_id=tenant_id, name="t", email=f"{tenant_id}@x.example", now=now
        )
        for event_types in types:
            record = await hooks.insert_endpoint(
                session,
                endpoint_id=new_id("whk"),
                tenant_id=tenant_id,
                url="https://hooks.example.com/x",
                description="",
                event_types=event_types,
                secret="whsec_c2VjcmV0",
                now=now,
            )
            ids.append(record.endpoint_id)
    return tenant_id, ids


def event(tenant_id: str, kind: str, key: str | None = None) -> hooks.NewEvent:
    return hooks.NewEvent(tenant_id, kind, {"k": key}, datetime.now(UTC), ordering_key=key)


async def claim(
    db: Database, limit: int = 64, in_flight: dict[str, int] | None = None
) -> list[hooks.ClaimedMessage]:
    async with db.transaction() as session:
        return await hooks.claim_due(
            session,
            now=datetime.now(UTC),
            limit=limit,
            per_endpoint=4,
            in_flight=in_flight or {},
            lease=LEASE,
        )


async def test_events_go_only_to_subscribed_endpoints(db: Database) -> None:
    tenant_id, (sent_only, _) = await tenant_with_endpoints(
        db, [["delivery.sent"], ["delivery.failed"]]
    )
    async with db.transaction() as session:
        await hooks.emit_events(session, [event(tenant_id, "delivery.sent", "n1")])
    claimed = [m for m in await claim(db) if m.tenant_id == tenant_id]
    assert [m.endpoint_id for m in claimed] == [sent_only]
    assert claimed[0].body.startswith('{"type":"delivery.sent","timestamp":')


async def test_order_per_notification_and_bound_per_endpoint(db: Database) -> None:
    tenant_id, (endpoint,) = await tenant_with_endpoints(db, [["delivery.sent"]])
    async with db.transaction() as session:
        await hooks.emit_events(
            session,
            [event(tenant_id, "delivery.sent", "a"), event(tenant_id, "delivery.sent", "a")]
            + [event(tenant_id, "delivery.sent", f"n{i}") for i in range(6)],
        )
    first = [m for m in await claim(db) if m.endpoint_id == endpoint]
    # At most 4 at a time per endpoint, and the second "a" waits for the first.
    assert len(first) == 4
    assert sum(1 for m in first if '"k":"a"' in m.body) == 1
    # Its slots count what this sender already has in flight there.
    assert [m for m in await claim(db, in_flight={endpoint: 4}) if m.endpoint_id == endpoint] == []
    (one,) = [m for m in await claim(db, in_flight={endpoint: 3}) if m.endpoint_id == endpoint]
    assert '"k":"a"' not in one.body
    a = next(m for m in first if '"k":"a"' in m.body)
    async with db.transaction() as session:
        now = datetime.now(UTC)
        await hooks.record_attempts(
            session,
            [hooks.AttemptOutcome(a, now, 200, "", 5, None)],
            now=now,
            disable_after_failed_events=5,
            disable_after=timedelta(days=5),
        )
    second = [m for m in await claim(db) if m.endpoint_id == endpoint]
    assert sum(1 for m in second if '"k":"a"' in m.body) == 1


async def test_a_backlog_at_one_endpoint_does_not_hold_up_another(db: Database) -> None:
    tenant_id, (flooded,) = await tenant_with_endpoints(db, [["delivery.sent"]])
    other_tenant, (quiet,) = await tenant_with_endpoints(db, [["delivery.sent"]])
    now = datetime.now(UTC)
    async with db.transaction() as session:
        await session.execute(
            insert(tenant_webhook_messages),
            [
                {"endpoint_id": flooded, "tenant_id": tenant_id, "event_id": new_id("evt"),
                 "event_type": "delivery.sent", "ordering_key": f"n{i}", "body": "{}",
                 "state": "pending", "next_attempt_at": now - timedelta(minutes=1),
                 "created_at": now}
                for i in range(20_000)
            ],
        )  # fmt: skip
        await hooks.emit_events(session, [event(other_tenant, "delivery.sent", "q")])
    started = time.monotonic()
    claimed = await claim(db, limit=8)
    took = time.monotonic() - started
    by_endpoint = {m.endpoint_id for m in claimed}
    assert quiet in by_endpoint
    assert sum(1 for m in claimed if m.endpoint_id == flooded) <= 4
    assert took < 1.0, f"claim took {took:.3f} s beside a 20,000-message backlog"
    async with db.transaction() as session:
        pending = await session.scalar(
            select(func.count()).where(tenant_webhook_messages.c.endpoint_id == flooded)
        )
    assert pending == 20_000


async def test_disabled_endpoints_get_no_new_events(db: Database) -> None:
    tenant_id, (endpoint,) = await tenant_with_endpoints(db, [["bulk.completed"]])
    async with db.transaction() as session:
        await hooks.update_endpoint(
            session,
            tenant_id=tenant_id,
            endpoint_id=endpoint,
            values={"disabled_at": datetime.now(UTC), "disabled_reason": "test"},
        )
        await hooks.emit_events(session, [event(tenant_id, "bulk.completed")])
        queued = await session.scalar(
            select(func.count()).where(tenant_webhook_messages.c.endpoint_id == endpoint)
        )
    assert queued == 0


async def test_a_retry_holds_back_the_later_events_of_its_notification(db: Database) -> None:
    tenant_id, (endpoint,) = await tenant_with_endpoints(db, [["delivery.sent"]])
    async with db.transaction() as session:
        await hooks.emit_events(
            session,
            [event(tenant_id, "delivery.sent", "x"), event(tenant_id, "delivery.sent", "x")],
        )
    (first,) = [m for m in await claim(db) if m.endpoint_id == endpoint]
    retry_at = datetime.now(UTC) + timedelta(hours=1)
    async with db.transaction() as session:
        now = datetime.now(UTC)
        await hooks.record_attempts(
            session,
            [hooks.AttemptOutcome(first, now, 500, "", 5, retry_at)],
            now=now,
            disable_after_failed_events=5,
            disable_after=timedelta(days=5),
        )
        due = await session.scalars(
            select(tenant_webhook_messages.c.next_attempt_at)
            .where(tenant_webhook_messages.c.endpoint_id == endpoint)
            .order_by(tenant_webhook_messages.c.id)
        )
        assert list(due) == [retry_at, retry_at]
    assert [m for m in await claim(db) if m.endpoint_id == endpoint] == []


async def test_events_failing_every_attempt_in_a_row_disable_the_endpoint(db: Database) -> None:
    tenant_id, (endpoint,) = await tenant_with_endpoints(db, [["delivery.sent"]])
    async with db.transaction() as session:
        await hooks.emit_events(session, [event(tenant_id, "delivery.sent") for _ in range(3)])
    claimed = [m for m in await claim(db) if m.endpoint_id == endpoint]
    now = datetime.now(UTC)

    def gave_up(m: hooks.ClaimedMessage, at: datetime) -> hooks.AttemptOutcome:
        return hooks.AttemptOutcome(m, at, 503, "", 5, None)

    async def record(outcomes: list[hooks.AttemptOutcome]) -> dict[str, str]:
        async with db.transaction() as session:
            return await hooks.record_attempts(
                session,
                outcomes,
                now=datetime.now(UTC),
                disable_after_failed_events=2,
                disable_after=timedelta(days=5),
            )

    # A failure, then a success in the same batch: the streak starts again.
    ok = hooks.AttemptOutcome(claimed[1], now + timedelta(seconds=1), 200, "", 5, None)
    assert await record([gave_up(claimed[0], now), ok]) == {}
    disabled = await record([gave_up(claimed[2], now + timedelta(seconds=2))])
    assert disabled == {}
    async with db.transaction() as session:
        await hooks.emit_events(session, [event(tenant_id, "delivery.sent")])
    (fourth,) = [m for m in await claim(db) if m.endpoint_id == endpoint]
    disabled = await record([gave_up(fourth, now + timedelta(seconds=3))])
    assert disabled == {endpoint: "2 events in a row failed every attempt (last: HTTP 503)"}
    async with db.transaction() as session:
        record_ = await hooks.get_endpoint(session, tenant_id=tenant_id, endpoint_id=endpoint)
    assert record_ is not None and record_.disabled_at is not None


async def test_endpoints_take_turns_for_free_slots(db: Database) -> None:
    tenant_id, (busy, other) = await tenant_with_endpoints(
        db, [["delivery.sent"], ["delivery.failed"]]
    )
    async with db.transaction() as session:
        # Earlier tests' messages out of the way: leased elsewhere.
        await session.execute(
            update(tenant_webhook_messages).values(leased_until=datetime.now(UTC) + LEASE)
        )
        await hooks.emit_events(session, [event(tenant_id, "delivery.sent") for _ in range(8)])
        await hooks.emit_events(session, [event(tenant_id, "delivery.failed")])
    claimed = [m.endpoint_id for m in await claim(db, limit=2) if m.tenant_id == tenant_id]
    assert sorted(claimed) == sorted([busy, other])
