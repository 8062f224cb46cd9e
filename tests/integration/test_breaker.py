"""Provider circuit breakers in PostgreSQL: opening after N transient failures,
one half-open probe among concurrent callers, closing on its success."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from server.store.db import Database
from workflows.breaker import BreakerPolicy, Breakers


async def test_opens_probes_once_and_closes(db: Database) -> None:
    policy = BreakerPolicy(threshold=3, cooldown=timedelta(seconds=10))
    breakers = Breakers(db, policy)
    other_worker = Breakers(db, policy)
    name = f"p-{uuid.uuid4().hex[:8]}"
    t0 = datetime.now(UTC)
    assert await breakers.allow(name, t0)
    for _ in range(2):
        await breakers.failed(name, t0)
    assert await other_worker.allow(name, t0)  # two failures: still closed
    await other_worker.failed(name, t0)  # the third, from another worker, opens it
    assert not await breakers.allow(name, t0 + timedelta(seconds=9))
    # After the cool-down exactly one of many concurrent callers gets the probe.
    later = t0 + timedelta(seconds=10)
    allowed = await asyncio.gather(*(breakers.allow(name, later) for _ in range(8)))
    assert sum(allowed) == 1
    await breakers.failed(name, later)  # the probe failed: open again
    assert not await breakers.allow(name, later + timedelta(seconds=5))
    again = later + timedelta(seconds=10)
    assert await breakers.allow(name, again)
    await breakers.succeeded(name, again)
    assert await other_worker.allow(name, again)
    assert breakers.counts[(name, "open", "half_open")] == 2
    assert breakers.counts[(name, "half_open", "closed")] == 1
    assert other_worker.counts[(name, "closed", "open")] == 1


async def test_a_success_resets_the_count(db: Database) -> None:
    breakers = Breakers(db, BreakerPolicy(threshold=2))
    name = f"p-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    await breakers.failed(name, now)
    await breakers.succeeded(name, now)
    await breakers.failed(name, now)
    assert await breakers.allow(name, now)
