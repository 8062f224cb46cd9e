"""What a platform engineer sees of a single send in the Temporal UI: each
provider call as a local-activity marker with its attempt and failure, and
each retry's backoff as a durable timer; nothing else. The workflow ends when
the provider has the message: the receipt is in the notification's history
in the API, not in the workflow's."""

import json
from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from contracts.workflows import notification_workflow_id
from runner.stack import Stack
from tests.conftest import Tenant
from tests.e2e.test_delivery_outcomes import send
from tests.e2e.waiting import wait_for_status


async def test_retries_wait_on_durable_timers_and_the_send_is_one_marker(
    stack: Stack, tenant: Tenant
) -> None:
    # The sandbox fails this recipient twice (503), then accepts.
    notification_id = send(tenant, "sms", "+15005550202")
    wait_for_status(tenant, notification_id, {"delivered"}, timeout=60)
    client = await Client.connect(f"127.0.0.1:{stack.ports.temporal}")
    handle = client.get_workflow_handle(notification_workflow_id(notification_id))
    await handle.result()
    events = (await handle.fetch_history()).events
    kinds = Counter(EventType.Name(e.event_type) for e in events)

    markers = [
        e.marker_recorded_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    # One marker per provider call: what was called, which attempt, and why
    # it failed.
    calls = [
        (
            json.loads(m.details["data"].payloads[0].data),
            m.failure.application_failure_info.type if m.HasField("failure") else "",
        )
        for m in markers
    ]
    assert [(data["activity_type"], data["attempt"], failure) for data, failure in calls] == [
        ("send_delivery", 1, "TransientDeliveryFailure"),
        ("send_delivery", 2, "TransientDeliveryFailure"),
        ("send_delivery", 3, ""),
    ]
    assert "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" not in kinds
    # Two backoffs fired, and no other timer: nothing waits for the receipt.
    assert kinds["EVENT_TYPE_TIMER_STARTED"] == kinds["EVENT_TYPE_TIMER_FIRED"] == 2
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED" not in kinds
    assert EventType.Name(events[-1].event_type) == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    # Started at the current revision: no patch marker, and so no
    # TemporalChangeVersion upsert (a visibility write per workflow).
    assert {m.marker_name for m in (e.marker_recorded_event_attributes for e in events)} <= {
        "core_local_activity",
        "",
    }
    assert "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES" not in kinds
