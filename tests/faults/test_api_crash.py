"""The API server killed between its commit and the workflow start (Temporal
SIGSTOPped, so the start hangs after the commit): recovery (the other API
process's sweeper, or the restarted server's) starts the notification's
workflow exactly once, it is delivered once, and a client retry with the same
idempotency key gets the same notification."""

import asyncio
import os
import signal
import time

import httpx
from temporalio.client import Client

from contracts.workflows import notification_workflow_id
from tests.conftest import signup
from tests.e2e.waiting import wait_for, wait_for_status
from tests.faults.conftest import StartStack, creates_by_number
from tests.faults.processes import stopped

PHONE = "+14155550188"


async def _runs(temporal_port: int, workflow_id: str) -> int:
    client = await Client.connect(f"127.0.0.1:{temporal_port}")
    return len([w async for w in client.list_workflows(f'WorkflowId = "{workflow_id}"')])


def test_api_killed_after_commit_before_start_is_started_once_by_recovery(
    own_stack: StartStack,
) -> None:
    platform = own_stack(CLARION_DISPATCH_SWEEP_SECONDS="1")
    send = {
        "recipient": {"phone": PHONE},
        "notification": {"channels": ["sms"], "body": "crash between commit and start"},
        "idempotency_key": "crash-after-commit",
    }
    with httpx.Client(base_url=platform.api_url, timeout=30) as api:
        tenant = signup(api)
        api_pid = platform.pid("api")
        with stopped([platform.pid("temporal")]):
            first = tenant.post("/api/v1/notifications/send", send)
            assert first.status_code == 200, first.text
            # Committed and answered; its workflow start is hanging on Temporal.
            os.kill(api_pid, signal.SIGKILL)
            wait_for(lambda: platform.pid("api") != api_pid, timeout=30)
            time.sleep(2)
        platform.wait_up("api", timeout=60)
        notification_id = first.json()["notification_id"]

        retry = wait_for(
            lambda: (r := tenant.post("/api/v1/notifications/send", send)).status_code == 200 and r,
            timeout=30,
        )
        assert retry.json()["notification_id"] == notification_id
        final = wait_for_status(tenant, notification_id, {"delivered", "failed"}, timeout=120)

    assert final["status"] == "delivered", final
    runs = asyncio.run(_runs(platform.ports.temporal, notification_workflow_id(notification_id)))
    copies = creates_by_number(platform)[PHONE]
    print(f"\nAPI server killed after commit: {runs} workflow run(s), {copies} create(s)")
    assert runs == 1
    assert copies == 1
    # Recovery found the outbox row: one of the API processes' sweepers.
    logs = [(platform.data_dir / "logs" / f"{n}.log").read_text() for n in ("api", "api-bulk")]
    assert any("workflows left pending" in log for log in logs)
