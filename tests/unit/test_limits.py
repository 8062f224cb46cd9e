"""The pure rules of tenant limits: UTC days, reset times and the errors."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from server.domain.limits import (
    LimitName,
    RateLimit,
    quota_exceeded,
    quota_resets_at,
    rate_limited,
    utc_day,
)
from server.settings import Settings


def test_the_quota_day_is_the_utc_day_whatever_the_local_offset() -> None:
    late_in_new_york = datetime(2026, 3, 1, 22, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert utc_day(late_in_new_york).isoformat() == "2026-03-02"
    assert quota_resets_at(utc_day(late_in_new_york)) == datetime(2026, 3, 3, tzinfo=UTC)


def test_quota_exceeded_names_the_reset_and_retries_until_it() -> None:
    now = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)
    error = quota_exceeded(1000, utc_day(now), now)
    assert error.reason == "QUOTA_EXCEEDED"
    assert "resets at 2027-01-01T00:00:00Z" in error.message
    assert error.retry_after_seconds == 30


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    rate = RateLimit(per_second=200, burst=400)
    assert rate_limited(LimitName.SEND, rate, 0.004).retry_after_seconds == 1
    assert rate_limited(LimitName.SEND, rate, 2.1).retry_after_seconds == 3


def test_a_rate_limit_needs_a_positive_rate_and_burst() -> None:
    with pytest.raises(ValueError):
        RateLimit(per_second=0, burst=10)
    with pytest.raises(ValueError):
        RateLimit(per_second=1, burst=0)


def test_trial_mode_quota_applies_only_without_the_sandbox() -> None:
    assert Settings(run_sandbox=True).default_limits().daily_quota == 0
    assert Settings(run_sandbox=False).default_limits().daily_quota == 1_000
    assert Settings(run_sandbox=True, default_daily_quota=50).default_limits().daily_quota == 50
    assert Settings(run_sandbox=False, default_daily_quota=0).default_limits().daily_quota == 0
