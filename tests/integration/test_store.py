"""Repositories against real PostgreSQL: idempotent inserts, forward-only
statuses and the roll-up, under concurrent updates."""

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from server.domain.ids import new_id
from server.domain.status import DeliveryStatus
from server.store import notifications as store
from server.store import tenants
from server.store.db import Database, DatabaseLimits
from server.store.outbox import OutboxKind, PendingStart


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


async def test_a_snapshot_read_sees_one_state_across_its_statements(db: Database) -> None:
    """A notification read in several statements agrees with itself even
    when a status change commits between them (under READ COMMITTED a GET
    once returned both steps failed and the notification still queued)."""
    limited = Database(db.engine, DatabaseLimits())
    tenant_id, notification_id = await new_notification(db, ["sms"])
    delivery_id = (await fetch(db, tenant_id, notification_id)).deliveries[0].delivery_id
    for database in (db, limited):
        async with database.transaction(snapshot=True) as session:
            before = await store.get_notification(
                session, tenant_id=tenant_id, notification_id=notification_id
            )
            moved = await advance(db, (delivery_id, DeliveryStatus.SENT, ""))
            again = await store.get_notification(
                session, tenant_id=tenant_id, notification_id=notification_id
            )
            level = (await session.execute(text("SHOW transaction_isolation"))).scalar_one()
            with pytest.raises(DBAPIError, match="read-only transaction"):
                await session.execute(text("CREATE TEMP TABLE snapshot_probe (x int)"))
        assert moved == [database is db]
        assert before is not None and again is not None
        assert (again.status, again.deliveries[0].status) == (
            before.status,
            before.deliveries[0].status,
        )
        assert level == "repeatable read"
        assert (await fetch(db, tenant_id, notification_id)).status is DeliveryStatus.SENT
    # The pooled connections went back to the default for everyone else.
    async with limited.transaction() as session:
        level = (await session.execute(text("SHOW transaction_isolation"))).scalar_one()
    assert level == "read committed"


async def test_a_notification_without_routing_stores_sql_null(db: Database) -> None:
    """The roll-up reads routing steps only where routing IS NOT NULL; JSON
    null there made every send's status change read them."""
    _, notification_id = await new_notification(db, ["sms"])
    async with db.transaction() as session:
        routed = (
            await session.execute(
                text("SELECT routing IS NOT NULL FROM notifications WHERE id = :id"),
                {"id": notification_id},
            )
        ).scalar_one()
    assert routed is False


async def test_a_batch_of_moves_takes_three_statements_whatever_its_size(db: Database) -> None:
    """Lock, read, write: a status change's round trips are most of its cost
    on the send path, so their number must not grow with the batch or creep
    back as the code changes. The caller that holds the lock saves one. The
    write also counts the moves for alert rules."""
    from sqlalchemy import event

    S = DeliveryStatus
    channels = ["sms", "email", "slack"]
    tenant_id, notification_id = await new_notification(db, channels)
    deliveries = (await fetch(db, tenant_id, notification_id)).deliveries
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await advance(db, (deliveries[0].delivery_id, S.SENT, "")) == [True]
        one = len(statements)
        statements.clear()
        assert (
            await advance(
                db,
                *((d.delivery_id, S.SENT, "") for d in deliveries[1:]),
                *((d.delivery_id, S.DELIVERED, "") for d in deliveries),
            )
            == [True] * 5
        )
        batch = len(statements)
        statements.clear()
        async with db.transaction() as session:
            await store.lock_notifications(session, delivery_ids=[deliveries[0].delivery_id])
            statements.clear()
            moved = await store.advance_deliveries(
                session,
                [store.StatusMove(deliveries[0].delivery_id, S.FAILED, "late")],
                now=datetime.now(UTC),
                locked=True,
            )
        held = len(statements)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert (one, batch, held) == (3, 3, 1)  # delivered is final: the late failure reads only
    assert [r.moved for r in moved] == [False]
    record = await fetch(db, tenant_id, notification_id)
    assert record.status is S.DELIVERED
    assert [e.status for e in record.deliveries[1].history] == ["queued", "sent", "delivered"]
    async with db.transaction() as session:
        counters = (
            await session.execute(
                text(
                    "SELECT channel, sum(handed_over), sum(delivered), sum(failed), sum(receipts)"
                    " FROM alert_counters WHERE tenant_id = :t GROUP BY channel ORDER BY channel"
                ),
                {"t": tenant_id},
            )
        ).all()
    # Each channel's sent and delivered, once; the refused late failure not at all.
    assert [tuple(c) for c in counters] == [(c, 1, 1, 0, 0) for c in sorted(channels)]


async def test_a_send_is_stored_in_one_statement_whatever_its_size(own_db: Database) -> None:
    """Notifications, deliveries, their first history entries and the
    workflows' outbox rows go in one round trip; a tenant without webhooks
    needs no further read. Each is read back, with its deliveries and
    histories, in one statement too. On a database of its own: the session
    platform's outbox sweep would start workflows for the rows it leaves."""
    db = own_db
    from sqlalchemy import event

    tenant_id, _ = await new_notification(db, ["sms"])
    rows = [
        store.NewNotification(
            notification_id=new_id("ntf"),
            tenant_id=tenant_id,
            channels=["sms", "email"],
            recipient={"phone": "+14155550100", "email": "a@x.example"},
            subject="s",
            body=f"b{i}",
            template_id="",
            template_version=None if i else 3,
            data={"i": i, "nested": {"q": '"quoted"'}},
            idempotency_key=None if i else "k1",
            deliveries=[
                store.NewDelivery(new_id("dlv"), "sms", "+14155550100", {"body": "x"}),
                store.NewDelivery(new_id("dlv"), "email", "a@x.example"),
            ],
            bulk_id=None,
        )
        for i in range(3)
    ]
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.transaction() as session:
            await store.insert_notifications(
                session,
                rows,
                now=datetime.now(UTC),
                starts=[
                    PendingStart(
                        OutboxKind.NOTIFICATION, rows[0].notification_id, {"urgent": True}
                    ),
                    PendingStart(OutboxKind.NOTIFICATION, rows[1].notification_id),
                ],
            )
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 1
    async with db.transaction() as session:
        outbox = (
            await session.execute(
                text("SELECT ref, payload FROM pending_dispatches WHERE ref = ANY(:refs)"),
                {"refs": [r.notification_id for r in rows]},
            )
        ).all()
    assert sorted(outbox) == sorted(
        [(rows[0].notification_id, {"urgent": True}), (rows[1].notification_id, None)]
    )
    for row in rows:
        statements.clear()
        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        try:
            record = await fetch(db, tenant_id, row.notification_id)
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        assert len(statements) == 1  # with its deliveries and their histories
        assert (record.status, record.channels, record.recipient, record.data) == (
            DeliveryStatus.QUEUED,
            row.channels,
            row.recipient,
            row.data,
        )
        assert (record.template_version, record.idempotency_key, record.routing) == (
            row.template_version,
            row.idempotency_key,
            None,
        )
        assert [(d.delivery_id, d.channel, d.address, d.content) for d in record.deliveries] == [
            (d.delivery_id, d.channel, d.address, d.content) for d in row.deliveries
        ]
        assert [[e.status for e in d.history] for d in record.deliveries] == [["queued"]] * 2


async def test_a_one_statement_block_runs_in_autocommit(db: Database) -> None:
    """No BEGIN: each statement is its own transaction (now() moves between
    them), and the pooled connection is back in a transaction afterwards."""
    limited = Database(db.engine, DatabaseLimits())
    for database in (db, limited):
        async with database.transaction(one_statement=True) as session:
            first = (await session.execute(text("SELECT now()"))).scalar_one()
            await asyncio.sleep(0.01)
            second = (await session.execute(text("SELECT now()"))).scalar_one()
        assert second > first
        async with database.transaction() as session:
            first = (await session.execute(text("SELECT now()"))).scalar_one()
            await asyncio.sleep(0.01)
            second = (await session.execute(text("SELECT now()"))).scalar_one()
        assert second == first


async def test_late_receipts_are_noted_once_and_a_receipt_in_time_never(own_db: Database) -> None:
    """The sweep behind the receipt timeout: a delivery sent before the
    timeout is noted once, however often the sweep runs; a recent one, a
    delivered one and a queued one are left alone. On a database of its own:
    the session platform's API server sweeps its database too, with its own
    timeout, and could note the aged delivery first."""
    db = own_db
    from server.services.deliveries import note_missing_receipts

    S = DeliveryStatus
    made = {name: await new_notification(db, ["sms"]) for name in ("late", "done", "new", "queued")}
    ids = {name: (await fetch(db, *made[name])).deliveries[0].delivery_id for name in made}
    await advance(db, (ids["late"], S.SENT, ""), (ids["done"], S.SENT, ""))
    await advance(db, (ids["done"], S.DELIVERED, ""))
    async with db.transaction() as session:
        await session.execute(
            text(
                "UPDATE deliveries SET updated_at = now() - interval '1 hour' WHERE id = ANY(:ids)"
            ),
            {"ids": [ids["late"], ids["done"], ids["queued"]]},
        )
    await advance(db, (ids["new"], S.SENT, ""))
    # A batch of one makes the sweep loop.
    assert await note_missing_receipts(db, waited_seconds=60, batch=1) == 1
    assert await note_missing_receipts(db, waited_seconds=60) == 0
    for name in made:
        [delivery] = (await fetch(db, *made[name])).deliveries
        notes = [e.detail for e in delivery.history if e.kind == "note"]
        if name == "late":
            assert delivery.status is S.SENT
            assert delivery.reason.startswith("no delivery receipt from the provider within 60 s")
            assert notes == [delivery.reason]
        else:
            assert notes == [], name
    # A receipt after the note still moves the delivery on.
    assert await advance(db, (ids["late"], S.DELIVERED, "")) == [True]


async def test_a_first_attempt_is_read_and_marked_once_and_only_when_fresh(db: Database) -> None:
    """The worker's usual first attempt reads its delivery and commits the
    in-progress mark in one statement. Anything that needs a decision (a
    mark left by a crash, an earlier provider, a channel without a known-up
    provider, a status past queued) gets None and is left unchanged, for
    the full path to read."""
    tenant_id, notification_id = await new_notification(db, ["sms", "email", "slack"])
    sms, email, slack = (await fetch(db, tenant_id, notification_id)).deliveries
    now = datetime.now(UTC)

    async def claim(delivery_id: str, providers: dict[str, str]) -> store.DeliveryRecord | None:
        async with db.transaction(one_statement=True) as session:
            return await store.claim_first_attempt(
                session, delivery_id=delivery_id, providers=providers, now=now
            )

    claimed = await claim(sms.delivery_id, {"sms": "twilio", "email": "smtp"})
    assert claimed is not None
    assert (claimed.channel, claimed.attempts, claimed.attempt_provider) == ("sms", 1, "twilio")
    assert claimed.attempt_started_at == now
    assert claimed.content == sms.content and claimed.bulk_id is None
    # A second claim finds the mark (a retry after a crash must reconcile).
    assert await claim(sms.delivery_id, {"sms": "twilio"}) is None
    # The channel has no provider known to be up: the full path chooses.
    assert await claim(email.delivery_id, {"sms": "twilio"}) is None
    assert await claim(email.delivery_id, {}) is None
    # Past queued: nothing to send.
    assert await advance(db, (slack.delivery_id, DeliveryStatus.FAILED, "x")) == [True]
    assert await claim(slack.delivery_id, {"slack": "slack"}) is None
    async with db.transaction() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT channel, attempts, attempt_provider, attempt_started_at IS NOT NULL"
                    " FROM deliveries WHERE notification_id = :n ORDER BY channel"
                ),
                {"n": notification_id},
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("email", 0, None, False),
        ("slack", 0, None, False),
        ("sms", 1, "twilio", True),
    ]


async def test_an_accepted_call_locks_its_notification_before_its_delivery(db: Database) -> None:
    """The worker records an accepted call with the lock its status move
    needs in one statement. While another writer holds the notification's
    lock, that statement waits without having touched the delivery row (the
    order receipts take them, so neither can deadlock the other); then it
    records the attempt and holds the lock itself."""
    tenant_id, notification_id = await new_notification(db, ["sms"])
    (sms,) = (await fetch(db, tenant_id, notification_id)).deliveries
    now = datetime.now(UTC)
    lock_row = "SELECT id FROM {table} WHERE id = :id FOR UPDATE NOWAIT"
    recorded = asyncio.Event()

    async def record() -> None:
        async with db.transaction() as session:
            await store.lock_and_record_accepted(
                session,
                delivery_id=sms.delivery_id,
                outcome="accepted via twilio",
                now=now,
                provider_message_id="SM1",
            )
            recorded.set()
            # Held until commit: another writer cannot take it meanwhile.
            async with db.engine.connect() as other:
                with pytest.raises(DBAPIError, match="could not obtain lock"):
                    await other.execute(
                        text(lock_row.format(table="notifications")), {"id": notification_id}
                    )

    async with db.transaction() as holder:
        await store.lock_notifications(holder, delivery_ids=[sms.delivery_id])
        waiting = asyncio.create_task(record())
        await asyncio.sleep(0.5)
        assert not recorded.is_set()
        async with db.engine.connect() as other:
            # The waiting statement has not locked the delivery row.
            await other.execute(text(lock_row.format(table="deliveries")), {"id": sms.delivery_id})
            await other.rollback()
    await asyncio.wait_for(waiting, 10)
    async with db.transaction() as session:
        after = await store.get_delivery(session, delivery_id=sms.delivery_id)
    assert after is not None
    assert (after.provider_message_id, after.attempt_started_at) == ("SM1", None)
    (history,) = (await fetch(db, tenant_id, notification_id)).deliveries
    assert [(e.kind, e.detail) for e in history.history][-1] == ("attempt", "accepted via twilio")
    async with db.transaction() as session:
        with pytest.raises(Exception, match="No row was found"):
            await store.lock_and_record_accepted(
                session, delivery_id="dlv_none", outcome="x", now=now, provider_message_id="x"
            )
