"""Circuit breakers per provider, in PostgreSQL so that every worker sees one state.

closed: calls go through; `threshold` consecutive transient failures open it.
open: the provider is skipped until `cooldown` has passed since it opened.
half_open: one caller (the first to see the cool-down over) probes; its
success closes the breaker, its failure opens it again for another cool-down.
A probe that never reports (its worker died) is taken over after `probe_timeout`.

Each change is one short transaction on the provider's row (SELECT ... FOR
UPDATE), so concurrent workers cannot both take the probe or lose a count.
Transitions are logged and counted (`transitions` column, `counts`).

A breaker this process saw closed and clean in the last CLEAN_CACHE_SECONDS
is trusted without a query, so healthy sends (a bulk's hundreds per second)
do not queue on one row; another worker's opening is seen that much later."""

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.db import Database

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
CLEAN_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    probe_timeout: timedelta = timedelta(seconds=20)


@dataclass
class _Row:
    state: str
    failures: int
    opened_at: datetime | None
    probe_started_at: datetime | None


class Breakers:
    def __init__(self, db: Database, policy: BreakerPolicy) -> None:
        self._db = db
        self.policy = policy
        # (provider, from, to) -> transitions made by this process.
        self.counts: Counter[tuple[str, str, str]] = Counter()
        # provider -> monotonic time it was last seen closed with no failures.
        self._clean: dict[str, float] = {}

    def seen_clean(self, provider: str) -> bool:
        """Whether this process saw the breaker closed and clean moments ago,
        so that allow() would say yes without reading it."""
        seen = self._clean.get(provider)
        return seen is not None and time.monotonic() - seen < CLEAN_CACHE_SECONDS

    async def allow(self, provider: str, now: datetime) -> bool:
        """Whether this caller may call the provider now (taking the probe if due)."""
        if self.seen_clean(provider):
            return True
        async with self._db.transaction() as session:
            row = await _lock(session, provider, now)
            if row.state == CLOSED:
                if row.failures == 0:
                    self._clean[provider] = time.monotonic()
                return True
            due = row.opened_at is None or now - row.opened_at >= self.policy.cooldown
            if row.state == OPEN and due:
                await self._move(session, provider, row.state, HALF_OPEN, now, probe=now)
                return True
            lost_probe = (
                row.state == HALF_OPEN
                and row.probe_started_at is not None
                and now - row.probe_started_at >= self.policy.probe_timeout
            )
            if lost_probe:
                await self._move(session, provider, HALF_OPEN, HALF_OPEN, now, probe=now)
                return True
            return False

    async def succeeded(self, provider: str, now: datetime) -> None:
        if self.seen_clean(provider):
            return
        async with self._db.transaction() as session:
            row = await _lock(session, provider, now)
            if not (row.state == CLOSED and row.failures == 0):
                await self._move(session, provider, row.state, CLOSED, now, failures=0)
        self._clean[provider] = time.monotonic()

    async def failed(self, provider: str, now: datetime) -> None:
        """A transient failure (an outage, 5xx, throttling, no connection)."""
        self._clean.pop(provider, None)
        async with self._db.transaction() as session:
            row = await _lock(session, provider, now)
            failures = row.failures + 1
            if row.state == HALF_OPEN or (
                row.state == CLOSED and failures >= self.policy.threshold
            ):
                await self._move(
                    session, provider, row.state, OPEN, now, failures=failures, opened=now
                )
            else:
                await self._move(session, provider, row.state, row.state, now, failures=failures)

    async def _move(
        self,
        session: AsyncSession,
        provider: str,
        old: str,
        new: str,
        now: datetime,
        *,
        failures: int | None = None,
        opened: datetime | None = None,
        probe: datetime | None = None,
    ) -> None:
        changed = old != new
        await session.execute(
            text(
                "UPDATE provider_breakers SET state = :new, updated_at = :now,"
                " consecutive_failures = COALESCE(:failures, consecutive_failures),"
                " opened_at = COALESCE(:opened, opened_at),"
                " probe_started_at = :probe,"
                " transitions = transitions + :changed"
                " WHERE provider = :provider"
            ),
            {
                "new": new,
                "now": now,
                "failures": failures,
                "opened": opened,
                "probe": probe,
                "changed": int(changed),
                "provider": provider,
            },
        )
        if changed:
            self.counts[(provider, old, new)] += 1
            log.warning("provider breaker %s: %s -> %s", provider, old, new)


async def _lock(session: AsyncSession, provider: str, now: datetime) -> _Row:
    await session.execute(
        text(
            "INSERT INTO provider_breakers (provider, updated_at) VALUES (:p, :now)"
            " ON CONFLICT (provider) DO NOTHING"
        ),
        {"p": provider, "now": now},
    )
    found = (
        await session.execute(
            text(
                "SELECT state, consecutive_failures, opened_at, probe_started_at"
                " FROM provider_breakers WHERE provider = :p FOR UPDATE"
            ),
            {"p": provider},
        )
    ).one()
    return _Row(found[0], found[1], found[2], found[3])
