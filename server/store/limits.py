"""Tenant limits, token buckets and daily usage. Functions never commit: the
caller owns the transaction. Taking tokens is one statement on the tenant's
own rows, so tenants never wait on each other's limits."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.limits import Charge, LimitName, RateLimit, TenantLimits
from server.store.tables import daily_usage, rate_buckets, tenant_limits, tenants

# Tokens in the bucket now, refilled since it was last taken from.
_AVAILABLE = (
    "LEAST(CAST(:burst AS double precision), {t}.tokens + CAST(:rate AS double precision)"
    " * GREATEST(0, CAST(EXTRACT(EPOCH FROM clock_timestamp() - {t}.refilled_at)"
    " AS double precision)))"
)
_TAKE = f"""
WITH bucket AS (
    INSERT INTO rate_buckets AS b (tenant_id, name, tokens, refilled_at)
    VALUES (:tenant_id, :name, :burst - :cost, clock_timestamp())
    ON CONFLICT (tenant_id, name) DO UPDATE
    SET tokens = {_AVAILABLE.format(t="b")} - :cost, refilled_at = clock_timestamp()
    WHERE {_AVAILABLE.format(t="b")} >= :cost
    RETURNING b.tokens
)"""
# Counted requests also add to today's usage, within the quota (0 = none).
_COUNT = """,
total AS (
    INSERT INTO daily_usage AS u (tenant_id, day, channel, sent)
    SELECT :tenant_id, :day, '', :cost
    WHERE EXISTS (SELECT 1 FROM bucket) AND (:quota = 0 OR :cost <= :quota)
    ON CONFLICT (tenant_id, day, channel) DO UPDATE SET sent = u.sent + :cost
    WHERE :quota = 0 OR u.sent + :cost <= :quota
    RETURNING u.sent
),
per_channel AS (
    INSERT INTO daily_usage AS u (tenant_id, day, channel, sent)
    SELECT :tenant_id, :day, channel, :cost
    FROM unnest(CAST(:channels AS text[])) AS channel
    WHERE EXISTS (SELECT 1 FROM total)
    ON CONFLICT (tenant_id, day, channel) DO UPDATE SET sent = u.sent + :cost
)"""
# Built once: parsing a text() for its binds on every request cost the API
# 2% of its CPU (py-spy).
_TAKE_TOKENS = text(_TAKE + " SELECT (SELECT tokens FROM bucket)")
_TAKE_AND_COUNT = text(
    _TAKE + _COUNT + " SELECT (SELECT tokens FROM bucket), (SELECT sent FROM total)"
)
_AVAILABLE_NOW = text(
    f"SELECT {_AVAILABLE.format(t='rate_buckets')} FROM rate_buckets"
    " WHERE tenant_id = :tenant_id AND name = :name"
)


@dataclass(frozen=True)
class Taken:
    # None when the bucket had too few tokens: how long until it has enough.
    wait_seconds: float | None
    # False when the request would exceed the quota (tokens were still taken).
    within_quota: bool


async def take(
    session: AsyncSession,
    *,
    tenant_id: str,
    charge: Charge,
    rate: RateLimit,
    quota: int,
    day: date,
) -> Taken:
    """Takes `charge.cost` tokens and, for counted charges, adds them to
    today's usage unless that would pass `quota`. `charge.channels` must be
    distinct and sorted (the lock order)."""
    if not charge.counted:
        wait = await take_tokens(
            session, owner=tenant_id, name=charge.limit.value, rate=rate, cost=charge.cost
        )
        return Taken(wait_seconds=wait, within_quota=True)
    params = _bucket_params(tenant_id, charge.limit.value, rate, charge.cost)
    params |= {"day": day, "quota": quota, "channels": charge.channels}
    tokens, sent = (await session.execute(_TAKE_AND_COUNT, params)).one()
    if tokens is not None:
        return Taken(wait_seconds=None, within_quota=sent is not None)
    return Taken(wait_seconds=await _wait(session, params, rate, charge.cost), within_quota=True)


async def take_tokens(
    session: AsyncSession, *, owner: str, name: str, rate: RateLimit, cost: int = 1
) -> float | None:
    """Takes `cost` tokens from the bucket `name` of `owner` (a tenant, or
    anything else a limit is kept per, like a login email); None when taken,
    else the seconds until there are enough."""
    params = _bucket_params(owner, name, rate, cost)
    tokens = (await session.execute(_TAKE_TOKENS, params)).scalar_one()
    return None if tokens is not None else await _wait(session, params, rate, cost)


async def give_back(
    session: AsyncSession, *, owner: str, name: str, rate: RateLimit, cost: int = 1
) -> None:
    """Returns tokens taken by take_tokens (up to the burst)."""
    await session.execute(
        update(rate_buckets)
        .where(rate_buckets.c.tenant_id == owner, rate_buckets.c.name == name)
        .values(tokens=func.least(rate.burst, rate_buckets.c.tokens + cost))
    )


async def forget_idle_buckets(session: AsyncSession, *, owner_prefix: str, since: datetime) -> int:
    """Deletes buckets of owners starting with `owner_prefix` untouched since
    `since`: full again by then, they are the same as no row."""
    removed = await session.execute(
        delete(rate_buckets).where(
            rate_buckets.c.tenant_id.startswith(owner_prefix, autoescape=True),
            rate_buckets.c.refilled_at < since,
        )
    )
    return int(removed.rowcount or 0)  # type: ignore[attr-defined]


def _bucket_params(owner: str, name: str, rate: RateLimit, cost: int) -> dict[str, Any]:
    return {
        "tenant_id": owner,
        "name": name,
        "burst": rate.burst,
        "rate": rate.per_second,
        "cost": cost,
    }


async def _wait(session: AsyncSession, params: dict[str, Any], rate: RateLimit, cost: int) -> float:
    available = (await session.execute(_AVAILABLE_NOW, params)).scalar_one()
    return float((cost - available) / rate.per_second)


async def adjust_usage(
    session: AsyncSession, *, tenant_id: str, day: date, channels: list[str], delta: int
) -> None:
    """Corrects what `take` counted, e.g. a request that failed (negative
    delta) or a bulk with refused rows. Rows are locked in `take`'s order."""
    await session.execute(
        update(daily_usage)
        .where(
            daily_usage.c.tenant_id == tenant_id,
            daily_usage.c.day == day,
            daily_usage.c.channel.in_(["", *channels]),
        )
        .values(sent=func.greatest(0, daily_usage.c.sent + delta))
    )


async def usage_on(session: AsyncSession, *, tenant_id: str, day: date) -> dict[str, int]:
    """Counts for `day`: "" is notifications, every other key a channel."""
    rows = await session.execute(
        select(daily_usage.c.channel, daily_usage.c.sent).where(
            daily_usage.c.tenant_id == tenant_id, daily_usage.c.day == day
        )
    )
    return {row.channel: int(row.sent) for row in rows}


async def load_limits(
    session: AsyncSession, *, tenant_id: str, defaults: TenantLimits
) -> TenantLimits:
    """The tenant's overrides over `defaults`."""
    row = (
        await session.execute(select(tenant_limits).where(tenant_limits.c.tenant_id == tenant_id))
    ).first()
    if row is None:
        return defaults
    rates = dict(defaults.rates)
    for name, value in row.rates.items():
        rates[LimitName(name)] = RateLimit(float(value["per_second"]), int(value["burst"]))
    return TenantLimits(
        rates=rates,
        daily_quota=defaults.daily_quota if row.daily_quota is None else row.daily_quota,
        suspended_reason=row.suspended_reason if row.suspended_at is not None else None,
    )


@dataclass(frozen=True)
class Overrides:
    """What an operator has set for a tenant, as stored."""

    rates: dict[str, dict[str, float]]
    daily_quota: int | None
    suspended_at: datetime | None
    suspended_reason: str


async def find_tenant(session: AsyncSession, *, tenant: str) -> str | None:
    """The id of the tenant with this id or account email. Not tenant-scoped:
    for operators only."""
    row = await session.execute(
        select(tenants.c.id).where((tenants.c.id == tenant) | (tenants.c.email == tenant.lower()))
    )
    return row.scalar_one_or_none()


async def get_overrides(session: AsyncSession, *, tenant_id: str) -> Overrides:
    row = (
        await session.execute(select(tenant_limits).where(tenant_limits.c.tenant_id == tenant_id))
    ).first()
    if row is None:
        return Overrides({}, None, None, "")
    return Overrides(row.rates, row.daily_quota, row.suspended_at, row.suspended_reason)


async def save_overrides(
    session: AsyncSession, *, tenant_id: str, overrides: Overrides, now: datetime
) -> None:
    values = {
        "rates": overrides.rates,
        "daily_quota": overrides.daily_quota,
        "suspended_at": overrides.suspended_at,
        "suspended_reason": overrides.suspended_reason,
        "updated_at": now,
    }
    statement = insert(tenant_limits).values(tenant_id=tenant_id, **values)
    await session.execute(
        statement.on_conflict_do_update(index_elements=[tenant_limits.c.tenant_id], set_=values)
    )
