from collections.abc import AsyncIterator

import pytest

from runner.stack import Stack
from server.store.db import Database, create_engine, migrate
from tests.conftest import fresh_database


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[Database]:
    """A connection pool to the session platform's database (migrated by the stack)."""
    assert stack.database_url
    database = Database(create_engine(stack.database_url))
    yield database
    await database.close()


@pytest.fixture(scope="module")
async def own_db(database_server: str) -> AsyncIterator[Database]:
    """A migrated database of its own, which no platform process reads: the
    session platform's outbox sweeper and webhook sender would otherwise
    lease rows a test has just written, before the test's own claim."""
    with fresh_database(database_server) as url:
        migrate(url)
        database = Database(create_engine(url))
        yield database
        await database.close()
