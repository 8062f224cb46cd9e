"""Per-tenant rate limits, daily quotas and suspension: the rules, without I/O.

Each limit is a token bucket: `burst` tokens at most, refilled at
`per_second`; a request takes its cost (1, or a bulk's row count). The daily
quota counts notifications accepted per UTC day (a bulk row is one)."""

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from server.domain.errors import ClarionError, ErrorKind


class LimitName(StrEnum):
    SEND = "send"
    BULK_ROWS = "bulk_rows"
    WRITES = "writes"
    READS = "reads"


# What each limit covers, for the usage endpoint and the admin CLI.
LIMIT_SCOPES: dict[LimitName, str] = {
    LimitName.SEND: "single sends (POST /api/v1/notifications/send)",
    LimitName.BULK_ROWS: "bulk rows, JSON and CSV uploads (a bulk of N rows takes N)",
    LimitName.WRITES: "template and API key changes",
    LimitName.READS: "every other call: gets, lists, previews, capabilities, usage",
}
# Limits whose requests create notifications, and so count toward the quota.
COUNTED = frozenset({LimitName.SEND, LimitName.BULK_ROWS})


@dataclass(frozen=True)
class RateLimit:
    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and self.burst >= 1):
            raise ValueError("a rate limit needs per_second > 0 and burst >= 1")


@dataclass(frozen=True)
class TenantLimits:
    """What applies to one tenant: its overrides over the deployment's defaults."""

    rates: dict[LimitName, RateLimit]
    # Notifications per UTC day; 0 means no quota.
    daily_quota: int
    # Set while an operator has suspended the tenant.
    suspended_reason: str | None = None

    def rate(self, name: LimitName) -> RateLimit:
        return self.rates[name]


@dataclass
class Charge:
    """What one request takes: `cost` tokens of `limit`, and for counted
    limits, `cost` notifications on each of `channels` today."""

    limit: LimitName
    cost: int
    channels: list[str] = field(default_factory=list)

    @property
    def counted(self) -> bool:
        return self.limit in COUNTED


def utc_day(now: datetime) -> date:
    return now.astimezone(UTC).date()


def quota_resets_at(day: date) -> datetime:
    """The quota of `day` resets at the next UTC midnight."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds for Retry-After, at least 1."""
    return max(1, math.ceil((moment - now).total_seconds()))


def rate_limited(name: LimitName, rate: RateLimit, wait_seconds: float) -> ClarionError:
    retry = max(1, math.ceil(wait_seconds))
    return ClarionError(
        ErrorKind.RESOURCE_EXHAUSTED,
        "RATE_LIMITED",
        f"this tenant is over its {name.value} rate limit ({rate.per_second:g} per second, "
        f"burst {rate.burst}); retry after {retry} s (Retry-After header)",
        retry_after_seconds=retry,
    )


def too_large_for_burst(name: LimitName, rate: RateLimit, cost: int) -> ClarionError:
    return ClarionError(
        ErrorKind.RESOURCE_EXHAUSTED,
        "RATE_LIMITED",
        f"this request needs {cost} {name.value} tokens, more than this tenant's burst of "
        f"{rate.burst}; split it into requests of at most {rate.burst}",
    )


def quota_exceeded(quota: int, day: date, now: datetime) -> ClarionError:
    resets = quota_resets_at(day)
    return ClarionError(
        ErrorKind.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        f"this tenant's daily quota of {quota} notifications is used up for {day.isoformat()} "
        f"(UTC); it resets at {resets.isoformat().replace('+00:00', 'Z')}. "
        "Ask the operator to raise it",
        retry_after_seconds=seconds_until(resets, now),
    )


def suspended(reason: str) -> ClarionError:
    because = f": {reason}" if reason else ""
    return ClarionError(
        ErrorKind.PERMISSION_DENIED,
        "TENANT_SUSPENDED",
        f"this tenant is suspended{because}. Its API keys are refused until the operator "
        "lifts the suspension; contact them",
    )
