"""The outbox of workflow starts: what was committed but never started (its
API server died, Temporal was down, or Temporal lost the start) is started by
the sweeper, which holds no lock while it calls Temporal."""

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from temporalio.client import Client
from temporalio.service import RPCError

from contracts.workflows import DeliveryRef, notification_workflow_id
from runner.stack import Stack
from server.services.dispatch import Dispatcher, Outbox
from server.settings import Settings
from server.store import outbox as store
from server.store.db import Database, DatabaseLimits, request_budget
from server.store.outbox import OutboxKind, PendingStart
from server.store.tables import notifications, pending_dispatches
from tests.integration.test_store import new_notification

A_DAY_AGO = timedelta(days=1)


@pytest.fixture
def db(own_db: Database) -> Database:
    # Not the session platform's: its sweeper would start these day-old
    # outbox rows itself, racing the sweep a test makes.
    return own_db


@pytest.fixture
async def temporal(stack: Stack) -> Client:
    return await Client.connect(f"127.0.0.1:{stack.ports.temporal}")


def outbox_for(db: Database, client: Client) -> Outbox:
    settings = Settings()
    dispatcher = Dispatcher(
        client, settings.task_queue, settings.delivery_policy(), rpc_timeout=timedelta(seconds=2)
    )
    return Outbox(db, dispatcher)


async def stored_notification(db: Database, *, age: timedelta) -> str:
    """A notification stored `age` ago, with no workflow and no outbox row."""
    _, notification_id = await new_notification(db, ["slack"])
    async with db.transaction() as session:
        await session.execute(
            update(notifications)
            .where(notifications.c.id == notification_id)
            .values(created_at=datetime.now(UTC) - age)
        )
    return notification_id


async def add_outbox_row(db: Database, notification_id: str, *, age: timedelta) -> None:
    async with db.transaction() as session:
        await store.add(
            session,
            [PendingStart(OutboxKind.NOTIFICATION, notification_id)],
            now=datetime.now(UTC) - age,
        )


async def outbox_row(db: Database, ref: str) -> tuple[datetime | None] | None:
    async with db.transaction() as session:
        row = (
            await session.execute(
                select(pending_dispatches.c.leased_until).where(pending_dispatches.c.ref == ref)
            )
        ).first()
    return None if row is None else (row.leased_until,)


async def workflow_exists(client: Client, notification_id: str) -> bool:
    try:
        await client.get_workflow_handle(notification_workflow_id(notification_id)).describe()
    except RPCError:
        return False
    return True


async def test_a_stored_but_unstarted_notification_is_started_by_the_sweeper(
    db: Database, temporal: Client
) -> None:
    notification_id = await stored_notification(db, age=timedelta(0))
    await add_outbox_row(db, notification_id, age=timedelta(minutes=1))
    outbox = outbox_for(db, temporal)

    # Younger than the grace period: left to the request that stored it.
    await outbox.sweep(older_than=timedelta(minutes=5))
    assert not await workflow_exists(temporal, notification_id)
    assert await outbox.sweep(older_than=timedelta(seconds=1)) >= 1
    assert await workflow_exists(temporal, notification_id)
    assert await outbox_row(db, notification_id) is None


async def test_a_queued_notification_whose_workflow_was_lost_is_started_again(
    db: Database, temporal: Client
) -> None:
    # As after a hard kill of Temporal: stored, its start returned, then lost.
    notification_id = await stored_notification(db, age=A_DAY_AGO)
    outbox = outbox_for(db, temporal)

    await outbox.sweep(older_than=timedelta(seconds=1), recheck_after=timedelta(hours=1))
    assert await workflow_exists(temporal, notification_id)
    # Checked now: not again until another recheck period has passed.
    async with db.transaction() as session:
        checked = await session.scalar(
            select(notifications.c.workflow_checked_at).where(notifications.c.id == notification_id)
        )
    assert checked is not None and datetime.now(UTC) - checked < timedelta(minutes=1)
    await outbox.sweep(older_than=timedelta(seconds=1), recheck_after=timedelta(hours=1))
    assert await outbox_row(db, notification_id) is None


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers, like a SIGSTOPped server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


async def test_the_sweeper_holds_no_lock_while_temporal_hangs_and_retries_later(
    db: Database, silent_port: int
) -> None:
    notification_id = await stored_notification(db, age=timedelta(0))
    await add_outbox_row(db, notification_id, age=A_DAY_AGO)
    hanging = await Client.connect(f"127.0.0.1:{silent_port}", lazy=True)
    sweep = asyncio.create_task(outbox_for(db, hanging).sweep(older_than=timedelta(seconds=1)))
    await asyncio.sleep(0.5)
    assert not sweep.done()

    # While the start hangs, the row is leased, committed and not locked.
    async with db.transaction() as session:
        locked = await session.execute(
            select(pending_dispatches.c.ref)
            .where(pending_dispatches.c.ref == notification_id)
            .with_for_update(nowait=True)
        )
        assert locked.scalar_one() == notification_id
    row = await outbox_row(db, notification_id)
    assert row is not None and row[0] is not None and row[0] > datetime.now(UTC)

    # The RPC timeout ends the hang; the row is given back for the next sweep.
    started = await asyncio.wait_for(sweep, timeout=15)
    assert started == 0
    assert await outbox_row(db, notification_id) == (None,)


class SlowDispatcher(Dispatcher):
    """Temporal answering a start after `delay`, as under a burst."""

    def __init__(self, client: Client, delay: float) -> None:
        settings = Settings()
        super().__init__(client, settings.task_queue, settings.delivery_policy())
        self.delay = delay
        self.started: list[str] = []  # notification ids, once per start made

    async def start_notification(self, **kwargs: Any) -> None:
        self.started.append(kwargs["notification_id"])
        await asyncio.sleep(self.delay)
        await super().start_notification(**kwargs)


async def test_a_start_slower_than_its_request_budget_still_clears_its_row(
    db: Database, temporal: Client
) -> None:
    """The start runs after the answer; the request's deadline must not
    follow it (it did, and under a burst most clears failed at once)."""
    notification_id = await stored_notification(db, age=timedelta(0))
    await add_outbox_row(db, notification_id, age=timedelta(0))
    limited = Database(db.engine, DatabaseLimits())
    outbox = Outbox(limited, SlowDispatcher(temporal, delay=0.5))
    with request_budget(0.2):
        outbox.start_notification_soon(
            notification_id=notification_id,
            tenant_id="tnt_test",
            deliveries=[DeliveryRef(f"dlv_{notification_id}", "slack")],
        )
    for _ in range(50):  # no sweeper runs here: only the start can clear it
        await asyncio.sleep(0.1)
        if await outbox_row(db, notification_id) is None:
            break
    assert await outbox_row(db, notification_id) is None
    assert await workflow_exists(temporal, notification_id)


async def test_the_sweeper_leaves_a_start_in_flight_to_it(db: Database, temporal: Client) -> None:
    """A start slower than the sweeper's grace is made once, by the request
    that stored it (the sweeper used to start it a second time)."""
    notification_id = await stored_notification(db, age=timedelta(0))
    await add_outbox_row(db, notification_id, age=timedelta(minutes=1))
    dispatcher = SlowDispatcher(temporal, delay=1.0)
    outbox = Outbox(db, dispatcher)
    outbox.start_notification_soon(
        notification_id=notification_id,
        tenant_id="tnt_test",
        deliveries=[DeliveryRef(f"dlv_{notification_id}", "slack")],
    )
    await asyncio.sleep(0.2)
    # Other tests' rows may be swept here; this one must not be.
    await outbox.sweep(older_than=timedelta(seconds=1))
    for _ in range(50):
        await asyncio.sleep(0.1)
        if await outbox_row(db, notification_id) is None:
            break
    assert await outbox_row(db, notification_id) is None
    assert dispatcher.started.count(notification_id) == 1
    assert await workflow_exists(temporal, notification_id)
