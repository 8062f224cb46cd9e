"""Repositories against real PostgreSQL: idempotent inserts, forward-only
statuses and the roll-up, under concurrent updates."""

import asyncio
from datetime import UTC, datetime

from server.domain.ids import new_id
from server.domain.status import DeliveryStatus
from server.store import notifications as store
from server.store import tenants
from server.store.db import Database


async def new_notification(db: Database, channels: list[str]) -> tuple[str, str]:
    tenant_id = new_id("tnt")
    now = datetime.now(UTC)
    async with db.transaction() as session:
        await tenants.insert_tenant(
            session, tenant_id=tenant_id, name="t", email=f"{tenant_id}@x.example", now=now
        )
        notification_id = new_id("ntf")
        await store.insert_notifications(
            session,
            [
                store.NewNotification(
                    notification_id=notification_id,
                    tenant_id=tenant_id,
                    channels=channels,
                    recipient={},
                    subject="",
                    body="b",
                    template_id="",
                    template_version=None,
                    data={},
                    idempotency_key=None,
                    deliveries=[store.NewDelivery(new_id("dlv"), c, "a") for c in channels],
                )
            ],
            now=now,
        )
    return tenant_id, notification_id


async def fetch(db: Database, tenant_id: str, notification_id: str) -> store.NotificationRecord:
    async with db.transaction() as session:
        record = await store.get_notification(
            session, tenant_id=tenant_id, notification_id=notification_id
        )
    assert record is not None
    return record


async def advance(db: Database, *moves: tuple[str, DeliveryStatus, str]) -> list[bool]:
    async with db.transaction() as session:
        results = await store.advance_deliveries(
            session, [store.StatusMove(*m) for m in moves], now=datetime.now(UTC)
        )
    return [r.moved for r in results]


async def test_status_moves_forward_only_and_rolls_up(db: Database) -> None:
    tenant_id, notification_id = await new_notification(db, ["sms", "email"])
    sms, email = (await fetch(db, tenant_id, notification_id)).deliveries
    S = DeliveryStatus
    # One batch, in arrival order: only steps forward apply.
    assert await advance(
        db,
        (sms.delivery_id, S.DELIVERED, ""),
        (sms.delivery_id, S.SENT, ""),
        (sms.delivery_id, S.FAILED, "x"),
        ("dlv_unknown", S.DELIVERED, ""),
    ) == [True, False, False]
    assert await advance(db, (email.delivery_id, S.FAILED, "r")) == [True]
    record = await fetch(db, tenant_id, notification_id)
    sms, email = record.deliveries
    assert (sms.status, email.status) == (S.DELIVERED, S.FAILED)
    assert email.reason == "r"
    assert [e.status for e in sms.history] == ["queued", "delivered"]
    # One channel delivered and the other failed: the notification reached its recipient.
    assert record.status is S.DELIVERED
    # Another tenant cannot read it.
    async with db.transaction() as session:
        assert (
            await store.get_notification(
                session, tenant_id=new_id("tnt"), notification_id=notification_id
            )
            is None
        )


async def test_sent_then_delivered_in_one_batch_keeps_both_in_history(db: Database) -> None:
    tenant_id, notification_id = await new_notification(db, ["sms"])
    (sms,) = (await fetch(db, tenant_id, notification_id)).deliveries
    S = DeliveryStatus
    assert await advance(db, (sms.delivery_id, S.SENT, ""), (sms.delivery_id, S.DELIVERED, "")) == [
        True,
        True,
    ]
    record = await fetch(db, tenant_id, notification_id)
    assert record.status is S.DELIVERED
    assert [e.status for e in record.deliveries[0].history] == ["queued", "sent", "delivered"]


async def test_concurrent_channel_updates_roll_up_consistently(db: Database) -> None:
    channels = ["sms", "email", "slack", "voice"]
    tenant_id, notification_id = await new_notification(db, channels)
    records = (await fetch(db, tenant_id, notification_id)).deliveries
    await asyncio.gather(
        *(advance(db, (r.delivery_id, DeliveryStatus.DELIVERED, "")) for r in records)
    )
    record = await fetch(db, tenant_id, notification_id)
    assert [d.status for d in record.deliveries] == [DeliveryStatus.DELIVERED] * 4
    assert record.status is DeliveryStatus.DELIVERED


async def test_expired_idempotency_keys_are_purged_and_fresh_ones_kept(db: Database) -> None:
    from datetime import timedelta

    from contracts.policies import IdempotencyPolicy
    from server.services.idempotency import Idempotency
    from server.store import idempotency as keys

    tenant = new_id("tnt")
    old = datetime.now(UTC) - timedelta(hours=25)
    async with db.transaction() as session:
        for key, created in (("old", old), ("new", datetime.now(UTC))):
            assert await keys.try_claim(
                session, tenant_id=tenant, operation="send", key=key, request_hash="h", now=created
            )
    removed = await Idempotency(
        db, IdempotencyPolicy(retention=timedelta(hours=24))
    ).forget_expired()
    assert removed >= 1
    async with db.transaction() as session:
        assert await keys.get(session, tenant_id=tenant, operation="send", key="old") is None
        assert await keys.get(session, tenant_id=tenant, operation="send", key="new") is not None
