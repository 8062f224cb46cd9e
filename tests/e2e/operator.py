"""Running `python -m server admin …` against a test stack's database, as an
operator would, and waiting for the API servers to apply it."""

import json
import subprocess
import sys
import time
from typing import Any

from runner.stack import Stack
from tests.conftest import Tenant


def admin(stack: Stack, *args: str) -> dict[str, Any]:
    """Runs the admin CLI; returns its JSON report."""
    done = subprocess.run(
        [sys.executable, "-m", "server", "admin", *args],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def wait_for_usage(tenant: Tenant, check: Any, timeout: float = 10) -> dict[str, Any]:
    """Polls GET /api/v1/usage until `check(usage)` holds: API servers cache a
    tenant's limits for CLARION_API_KEY_CACHE_SECONDS."""
    deadline = time.monotonic() + timeout
    while True:
        response = tenant.get("/api/v1/usage")
        assert response.status_code == 200, response.text
        usage: dict[str, Any] = response.json()
        if check(usage):
            return usage
        assert time.monotonic() < deadline, f"usage never matched: {usage}"
        time.sleep(0.2)


def rate(usage: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [r for r in usage["rate_limits"] if r["name"] == name]
    return found


SMS = {
    "recipient": {"phone": "+14155550123"},
    "notification": {"channels": ["sms"], "body": "Your code is 123456"},
}
