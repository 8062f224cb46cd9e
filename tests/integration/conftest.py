from collections.abc import AsyncIterator

import pytest

from runner.stack import Stack
from server.store.db import Database, create_engine


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[Database]:
    """A connection pool to the session platform's database (migrated by the stack)."""
    assert stack.database_url
    database = Database(create_engine(stack.database_url, pool_size=8))
    yield database
    await database.close()
