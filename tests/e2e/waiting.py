"""Polling helpers for asynchronous outcomes; each gives up after a deadline."""

import time
from collections.abc import Callable
from typing import Any

from tests.conftest import Tenant


def wait_for(check: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    """Calls `check` until it returns something truthy; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")


def wait_for_status(
    tenant: Tenant, notification_id: str, statuses: set[str], timeout: float = 30
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = tenant.get(f"/api/v1/notifications/{notification_id}").json()
        return body if body["status"] in statuses else None

    result: dict[str, Any] = wait_for(check, timeout)
    return result
