"""How a tenant's work is queued in Temporal: single sends ahead of bulk
pages (priority key), and each tenant's tasks fair against the others'
(fairness key = tenant id). bench/isolation.py measures that it works."""

from temporalio.client import Client

from contracts.workflows import WorkClass, bulk_workflow_id, notification_workflow_id
from runner.stack import Stack
from tests.conftest import Tenant
from tests.e2e.test_delivery_outcomes import send
from tests.e2e.waiting import wait_for, wait_for_status


async def priority_of(stack: Stack, workflow_id: str) -> tuple[int, str]:
    client = await Client.connect(f"127.0.0.1:{stack.ports.temporal}")
    described = await client.get_workflow_handle(workflow_id).describe()
    priority = described.raw_info.priority
    return priority.priority_key, priority.fairness_key


async def test_single_send_runs_at_single_priority_keyed_by_its_tenant(
    stack: Stack, tenant: Tenant
) -> None:
    notification_id = send(tenant, "sms", "+14155550123")
    wait_for_status(tenant, notification_id, {"delivered"}, timeout=30)

    key, fairness = await priority_of(stack, notification_workflow_id(notification_id))

    assert (key, fairness) == (WorkClass.SINGLE.priority_key, tenant.tenant_id)


async def test_bulk_runs_behind_single_sends_keyed_by_its_tenant(
    stack: Stack, tenant: Tenant
) -> None:
    response = tenant.post(
        "/api/v1/notifications/bulk",
        {
            "channels": ["sms"],
            "body": "fairness",
            "recipients": [{"phone": "+14155550123"}, {"phone": "+14155550124"}],
        },
    )
    assert response.status_code == 200, response.text
    bulk_id = response.json()["bulk_id"]
    wait_for(
        lambda: tenant.get(f"/api/v1/notifications/bulk/{bulk_id}").json()["counts"]["queued"] == 0,
        timeout=30,
    )

    key, fairness = await priority_of(stack, bulk_workflow_id(bulk_id))

    assert (key, fairness) == (WorkClass.BULK.priority_key, tenant.tenant_id)
    assert WorkClass.SINGLE.priority_key < key  # lower keys are dispatched first


async def test_high_priority_send_goes_ahead_of_every_other_work(
    stack: Stack, tenant: Tenant
) -> None:
    response = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": {"phone": "+14155550123"},
            "notification": {"channels": ["sms"], "body": "Your OTP is 1", "priority": "high"},
        },
    )
    assert response.status_code == 200, response.text
    notification_id = response.json()["notification_id"]
    wait_for_status(tenant, notification_id, {"delivered"}, timeout=30)

    key, fairness = await priority_of(stack, notification_workflow_id(notification_id))

    assert (key, fairness) == (WorkClass.URGENT.priority_key, tenant.tenant_id)
    assert key < WorkClass.SINGLE.priority_key
