"""Workflows already running when a new worker version deploys replay under
its code: histories recorded with an earlier NotificationWorkflow must
replay without a nondeterminism error. Those from before the local-activity
patch call the provider as an activity task; those from before revision 1
(NotificationWorkflowInput.revision) carry the patch markers."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.notification import NotificationWorkflow

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize(
    "name",
    [
        # Two transient failures, accepted, then the receipt's signal.
        "notification_retried_before_local_activity",
        # Refused for good, then record_failure.
        "notification_refused_before_local_activity",
        # An SMS with the local-activity patch marker, then its receipt.
        "notification_sms_with_local_send_patch",
        # Routed SMS then email, with both patch markers.
        "notification_routed_with_local_send_patch",
    ],
)
async def test_histories_from_before_the_patch_still_replay(name: str) -> None:
    text = (HISTORIES / f"{name}.json").read_text()
    history = WorkflowHistory.from_json(f"notification-{name}", text)
    result = await Replayer(workflows=[NotificationWorkflow]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure
