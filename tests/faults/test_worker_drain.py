"""SIGTERM to the worker (a deploy, a scale-down) drains it: it stops taking
tasks, lets the provider call in flight finish and report, then exits, so
that the restarted worker has nothing to run again."""

import signal
import time
from datetime import datetime

import httpx

from tests.conftest import signup
from tests.e2e.waiting import wait_for_status
from tests.faults.conftest import StartStack, sandbox_requests

# The sandbox answers this number's Messages create after 3 s.
SLOW_NUMBER = "+15005550303"


def test_sigterm_lets_the_call_in_flight_finish_and_nothing_is_sent_twice(
    own_stack: StartStack,
) -> None:
    platform = own_stack()
    child = platform.supervisor.child("worker")
    worker = child.process
    with httpx.Client(base_url=platform.api_url, timeout=30) as api:
        tenant = signup(api)
        response = tenant.post(
            "/api/v1/notifications/send",
            {
                "recipient": {"phone": SLOW_NUMBER},
                "notification": {"channels": ["sms"], "body": "drain test"},
            },
        )
        assert response.status_code == 200, response.text
        notification_id = response.json()["notification_id"]
        # Mid-call: the workflow starts within milliseconds, the answer takes 3 s.
        time.sleep(1.5)
        terminated_at = time.time()
        worker.send_signal(signal.SIGTERM)
        exit_code = worker.wait(timeout=30)
        exited_at = time.time()
        # Read before the supervisor's restart (0.5 s later) appends to the log.
        drain_log = child.output_since_start()
        assert exit_code == 0, drain_log

        [create] = sandbox_requests(platform, to=SLOW_NUMBER)
        answered_at = datetime.fromisoformat(str(create["received_at"])).timestamp()
        # Answered after the SIGTERM (so it was in flight), before the exit (so it was awaited).
        assert terminated_at < answered_at <= exited_at
        assert "worker drained; exiting" in drain_log
        assert " ERROR " not in drain_log, drain_log

        platform.wait_up("worker", timeout=60)
        final = wait_for_status(tenant, notification_id, {"sent", "delivered"}, timeout=60)
        [delivery] = final["deliveries"]
        assert delivery["attempts"] == 1, final
        assert len(sandbox_requests(platform, to=SLOW_NUMBER)) == 1
