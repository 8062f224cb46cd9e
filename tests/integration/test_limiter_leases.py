"""Reads and writes take their tokens from the tenant's PostgreSQL bucket a
lease at a time, so most requests never touch the database, and several
API processes together still never admit more than the bucket holds."""

import asyncio
import time
import uuid
from typing import Any

from sqlalchemy import text

from runner.stack import Stack
from server.domain.errors import ClarionError
from server.domain.limits import Charge, LimitName, RateLimit, TenantLimits
from server.services.limits import Limiter, lease_size
from server.store.db import Database, create_engine

READS = RateLimit(per_second=100, burst=200)


def _limits() -> TenantLimits:
    rates = {name: READS for name in LimitName}
    return TenantLimits(rates=rates, daily_quota=0)


async def _tokens(db: Database, tenant_id: str) -> float:
    async with db.transaction() as session:
        return float(
            (
                await session.execute(
                    text("SELECT tokens FROM rate_buckets WHERE tenant_id = :t AND name = 'reads'"),
                    {"t": tenant_id},
                )
            ).scalar_one()
        )


async def test_a_read_takes_a_lease_and_the_next_ones_spend_it(db: Database) -> None:
    tenant_id = f"tnt_lease{uuid.uuid4().hex[:8]}"
    limiter = Limiter(db, _limits())
    assert lease_size(READS) == 10
    await limiter.admit(tenant_id, _limits(), Charge(LimitName.READS, 1))
    assert await _tokens(db, tenant_id) == READS.burst - 10
    for _ in range(9):
        await limiter.admit(tenant_id, _limits(), Charge(LimitName.READS, 1))
    # Nine more reads, spent from the lease: the bucket was not touched.
    assert await _tokens(db, tenant_id) == READS.burst - 10


async def test_two_processes_never_admit_more_than_the_bucket_gives(db: Database) -> None:
    tenant_id = f"tnt_lease{uuid.uuid4().hex[:8]}"
    processes = [Limiter(db, _limits()), Limiter(db, _limits())]
    admitted, refused = 0, []

    async def reads(limiter: Limiter) -> None:
        nonlocal admitted
        for _ in range(300):
            try:
                await limiter.admit(tenant_id, _limits(), Charge(LimitName.READS, 1))
                admitted += 1
            except ClarionError as error:
                refused.append(error)

    started = time.monotonic()
    await asyncio.gather(*(reads(p) for p in processes))
    elapsed = time.monotonic() - started
    # The burst, plus what the bucket refilled meanwhile; nothing beyond it.
    assert READS.burst <= admitted <= READS.burst + READS.per_second * elapsed + 1
    assert refused, "600 reads at once must pass a burst of 200"
    assert all(e.reason == "RATE_LIMITED" and e.retry_after_seconds for e in refused)


class CountingDatabase(Database):
    """Counts the transactions the limiter opens: one per bucket statement."""

    transactions = 0

    def transaction(self, **kwargs: Any) -> Any:
        self.transactions += 1
        return super().transaction(**kwargs)


async def test_a_tenant_over_its_limit_costs_one_statement_per_request(stack: Stack) -> None:
    assert stack.database_url
    db = CountingDatabase(create_engine(stack.database_url, pool_size=2))
    slow = RateLimit(per_second=20, burst=8)
    limits = TenantLimits(rates={name: slow for name in LimitName}, daily_quota=0)
    limiter = Limiter(db, limits)
    tenant_id = f"tnt_lease{uuid.uuid4().hex[:8]}"
    assert lease_size(slow) == 2
    try:
        refused = 0
        while refused == 0:  # spend the burst
            try:
                await limiter.admit(tenant_id, limits, Charge(LimitName.READS, 1))
            except ClarionError:
                refused = 1
        before = db.transactions
        for _ in range(20):
            try:
                await limiter.admit(tenant_id, limits, Charge(LimitName.READS, 1))
            except ClarionError as error:
                assert error.reason == "RATE_LIMITED"
        # One bucket statement per request, and at most one more lease try
        # per LEASE_SECONDS; not a refused lease take before every refusal.
        assert db.transactions - before <= 20 + 2
    finally:
        await db.close()
