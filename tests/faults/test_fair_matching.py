"""Temporal's matching serves tenants in turns (fairness keys, enabled on the
dev server by runner/stack.py): with the worker paused, tenant A queues 200
single sends, then tenant B one; once the worker is back, B's workflow task
is among the first handed out, not the 201st."""

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from contracts.workflows import notification_workflow_id
from tests.conftest import signup
from tests.e2e.test_delivery_outcomes import send
from tests.e2e.waiting import wait_for_status
from tests.faults.conftest import StartStack

BACKLOG = 200


async def first_task_started(client: Client, notification_id: str) -> datetime | None:
    handle = client.get_workflow_handle(notification_workflow_id(notification_id))
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            return event.event_time.ToDatetime()
    return None


async def _wait_started(client: Client, tenant_id: str, count: int) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    query = f"TenantId = '{tenant_id}'"
    while (await client.count_workflows(query)).count < count:
        assert asyncio.get_running_loop().time() < deadline, f"{count} workflows never started"
        await asyncio.sleep(0.2)


async def test_another_tenants_backlog_does_not_queue_a_single_send(
    own_stack: StartStack,
) -> None:
    platform = own_stack(supervised=False)
    with httpx.Client(base_url=platform.api_url, timeout=30) as api:
        a, b = signup(api), signup(api)
        worker = next(c for c in platform.children if c.name == "worker").process
        client = await Client.connect(f"127.0.0.1:{platform.ports.temporal}")
        worker.send_signal(signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(8) as pool:
                a_ids = list(pool.map(lambda i: send(a, "sms", f"+1212555{i:04d}"), range(BACKLOG)))
            # The API answers before it starts the workflow (outbox): wait
            # until all of A's are started, so that B's task really queues
            # behind a backlog in Temporal's matching, not behind the starts.
            await _wait_started(client, a.tenant_id, BACKLOG)
            b_id = send(b, "sms", "+14155550123")
            await _wait_started(client, b.tenant_id, 1)
        finally:
            worker.send_signal(signal.SIGCONT)
        wait_for_status(b, b_id, {"delivered"}, timeout=60)

        b_started = await first_task_started(client, b_id)
        a_started = [await first_task_started(client, i) for i in a_ids]

    assert b_started is not None
    ahead = sum(1 for t in a_started if t is not None and t < b_started)
    print(f"\n{ahead} of tenant A's {BACKLOG} backlogged workflow tasks went before B's")
    # In FIFO order B would come after all 200; what runs before it is what
    # the worker had already taken (16 slots and its pollers' tasks).
    assert ahead < 50, f"{ahead} of tenant A's {BACKLOG} workflow tasks went before B's"
