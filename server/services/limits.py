"""Admits requests within their tenant's rate limits and daily quota, and
reports usage. State is in PostgreSQL (server/store/limits.py), so the limits
hold across every API server process and every Envoy in front of them."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from server.domain import limits as rules
from server.domain.channels import Channel
from server.domain.limits import Charge, TenantLimits
from server.store import limits as store
from server.store import routing as routing_store
from server.store.db import Database

log = logging.getLogger(__name__)

_CHANNELS = frozenset(c.value for c in Channel)
# A refused tenant is logged at most this often per limit, with a count.
_LOG_EVERY_SECONDS = 10.0
# Reads and writes take their tokens from PostgreSQL a lease at a time: this
# many seconds' worth of the tenant's rate (at most a quarter of its burst),
# spent in this process until used up or this old. One bucket statement per
# request cost about 8 ms and capped a tenant's reads at about 150/s per API
# process here; with leases it is one per 20 reads at the default 200/s.
# Tokens a lease still holds when it expires are lost, so a tenant may get up
# to a lease less than its rate per process, never more than its bucket.
LEASE_SECONDS = 0.1


@dataclass(frozen=True)
class Admission:
    """A counted charge that was admitted, to settle once the request is done."""

    tenant_id: str
    day: date
    channels: list[str]
    charged: int


@dataclass
class _Lease:
    tokens: int
    expires_at: float
    # The bucket could not fill a lease: until expires_at each request asks
    # the bucket for itself, so a tenant over its limit costs one refused
    # take per request, as without leases, not a refused lease take too.
    short: bool = False


def lease_size(rate: rules.RateLimit) -> int:
    return max(1, min(rate.burst // 4, int(rate.per_second * LEASE_SECONDS)))


@dataclass(frozen=True)
class Usage:
    day: date
    sent: int
    sent_by_channel: dict[str, int]
    limits: TenantLimits
    resets_at: datetime

    @property
    def quota_remaining(self) -> int | None:
        quota = self.limits.daily_quota
        return max(0, quota - self.sent) if quota else None


class RefusalLog:
    """One WARNING per tenant and reason every 10 s, with how many requests
    were refused since the last one: a burst cannot flood the log."""

    def __init__(self) -> None:
        self._since: dict[tuple[str, str], tuple[float, int]] = {}

    def refused(self, tenant_id: str, reason: str, detail: str) -> None:
        key = (tenant_id, reason)
        logged_at, count = self._since.get(key, (0.0, 0))
        now = time.monotonic()
        if now - logged_at < _LOG_EVERY_SECONDS:
            self._since[key] = (logged_at, count + 1)
            return
        if len(self._since) > 10_000:
            self._since.clear()
        self._since[key] = (now, 0)
        log.warning(
            "tenant %s refused %s (%s); %d more refused since the last report",
            tenant_id,
            reason,
            detail,
            count,
        )


class Limiter:
    def __init__(
        self,
        db: Database,
        defaults: TenantLimits,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self.defaults = defaults
        self._clock = clock
        self.refusals = RefusalLog()
        self._leases: dict[tuple[str, str], _Lease] = {}

    async def limits_for(self, tenant_id: str) -> TenantLimits:
        async with self._db.transaction() as session:
            return await store.load_limits(session, tenant_id=tenant_id, defaults=self.defaults)

    async def default_routing_channels(self, tenant_id: str) -> list[str]:
        """The channels of the tenant's default routing, for counting usage."""
        async with self._db.transaction() as session:
            record = await routing_store.get_default(session, tenant_id=tenant_id)
        return [str(c) for c in record.policy["channels"]] if record else []

    async def admit(self, tenant_id: str, limits: TenantLimits, charge: Charge) -> Admission | None:
        """Takes the charge, or raises RATE_LIMITED or QUOTA_EXCEEDED.
        Counted charges return an Admission to settle."""
        if not charge.counted and await self._from_lease(tenant_id, limits, charge):
            return None
        wait, admission = await self._take(tenant_id, limits, charge)
        if wait is not None:
            rate = limits.rate(charge.limit)
            detail = f"{rate.per_second:g}/s, burst {rate.burst}"
            self.refusals.refused(tenant_id, f"{charge.limit.value} rate", detail)
            raise rules.rate_limited(charge.limit, rate, wait)
        return admission

    async def throttle(
        self, tenant_id: str, limits: TenantLimits, charge: Charge
    ) -> Admission | None:
        """Like admit, but over the rate it waits for the tokens (a stream is
        slowed down, not refused)."""
        while True:
            wait, admission = await self._take(tenant_id, limits, charge)
            if wait is None:
                return admission
            await asyncio.sleep(wait)

    async def _from_lease(self, tenant_id: str, limits: TenantLimits, charge: Charge) -> bool:
        """Spends the charge from this process's lease, taking a new lease
        when it is used up; False when the bucket cannot fill a whole lease
        (near the limit every request then asks the bucket itself, so the
        refusal and its Retry-After are exact)."""
        key = (tenant_id, charge.limit.value)
        now = time.monotonic()
        lease = self._leases.get(key)
        if lease is not None and lease.expires_at > now:
            if lease.tokens >= charge.cost:
                lease.tokens -= charge.cost
                return True
            if lease.short:
                return False
        size = lease_size(limits.rate(charge.limit))
        if size <= charge.cost:
            return False
        wait, _ = await self._take(tenant_id, limits, Charge(charge.limit, size))
        if len(self._leases) > 10_000:
            self._leases = {k: v for k, v in self._leases.items() if v.expires_at > now}
        if wait is not None:
            self._leases[key] = _Lease(0, now + LEASE_SECONDS, short=True)
            return False
        self._leases[key] = _Lease(size - charge.cost, now + LEASE_SECONDS)
        return True

    async def _take(
        self, tenant_id: str, limits: TenantLimits, charge: Charge
    ) -> tuple[float | None, Admission | None]:
        rate = limits.rate(charge.limit)
        if charge.cost > rate.burst:
            raise rules.too_large_for_burst(charge.limit, rate, charge.cost)
        now = self._clock()
        day = rules.utc_day(now)
        channels = sorted(set(charge.channels) & _CHANNELS)
        async with self._db.transaction(one_statement=True) as session:
            taken = await store.take(
                session,
                tenant_id=tenant_id,
                charge=Charge(charge.limit, charge.cost, channels),
                rate=rate,
                quota=limits.daily_quota,
                day=day,
            )
        if taken.wait_seconds is not None:
            return taken.wait_seconds, None
        if not taken.within_quota:
            self.refusals.refused(tenant_id, "quota", f"{limits.daily_quota} per day")
            raise rules.quota_exceeded(limits.daily_quota, day, now)
        if not charge.counted:
            return None, None
        return None, Admission(tenant_id, day, channels, charge.cost)

    async def settle(self, admission: Admission, accepted: int) -> None:
        """Counts `accepted` notifications instead of what was charged: a
        failed request gives its charge back, a bulk the rows it refused."""
        delta = accepted - admission.charged
        if delta == 0:
            return
        try:
            async with self._db.transaction() as session:
                await store.adjust_usage(
                    session,
                    tenant_id=admission.tenant_id,
                    day=admission.day,
                    channels=admission.channels,
                    delta=delta,
                )
        except Exception:
            # Never hides the request's own answer; the count is off by delta.
            log.warning("could not correct tenant %s usage by %d", admission.tenant_id, delta)

    async def usage(self, tenant_id: str, limits: TenantLimits) -> Usage:
        day = rules.utc_day(self._clock())
        async with self._db.transaction() as session:
            counts = await store.usage_on(session, tenant_id=tenant_id, day=day)
        return Usage(
            day=day,
            sent=counts.pop("", 0),
            sent_by_channel={c: n for c, n in sorted(counts.items()) if n},
            limits=limits,
            resets_at=rules.quota_resets_at(day),
        )
