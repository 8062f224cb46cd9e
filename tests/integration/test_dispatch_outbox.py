"""The outbox of workflow starts: a notification committed but never started
(its API server died, or Temporal was down) is started by the sweeper, once."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from temporalio.client import Client

from runner.stack import Stack
from server.services.dispatch import Dispatcher
from server.services.notifications import dispatch_pending
from server.settings import Settings
from server.store import notifications as store
from server.store.db import Database, create_engine
from server.store.tables import pending_dispatches
from tests.integration.test_store import new_notification
from workflows.contracts import notification_workflow_id


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[Database]:
    assert stack.database_url
    database = Database(create_engine(stack.database_url, pool_size=2))
    yield database
    await database.close()


async def test_a_stored_but_unstarted_notification_is_started_by_the_sweeper(
    db: Database, stack: Stack
) -> None:
    _, notification_id = await new_notification(db, ["slack"])
    async with db.transaction() as session:
        await store.add_pending_dispatch(
            session, notification_id=notification_id, now=datetime.now(UTC) - timedelta(minutes=1)
        )
    settings = Settings()
    client = await Client.connect(f"127.0.0.1:{stack.ports.temporal}")
    dispatcher = Dispatcher(client, settings.task_queue, settings.delivery_policy())

    # Younger than the grace period: left to the request that stored it.
    assert await dispatch_pending(db, dispatcher, older_than=timedelta(minutes=5)) == 0
    started = await dispatch_pending(db, dispatcher, older_than=timedelta(seconds=1))
    assert started >= 1
    description = await client.get_workflow_handle(
        notification_workflow_id(notification_id)
    ).describe()
    assert description.id == notification_workflow_id(notification_id)
    async with db.transaction() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(pending_dispatches)
            .where(pending_dispatches.c.notification_id == notification_id)
        )
    assert left == 0
