"""TemplateApprovalWorkflow: submits a template version's WhatsApp content to
Meta, retrying durably. Meta's verdict arrives later by webhook."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts.workflows import TEMPLATE_APPROVAL_WORKFLOW, TemplateApprovalInput
    from workflows.activities import TemplateActivities


@workflow.defn(name=TEMPLATE_APPROVAL_WORKFLOW)
class TemplateApprovalWorkflow:
    @workflow.run
    async def run(self, approval: TemplateApprovalInput) -> None:
        await workflow.execute_activity_method(
            TemplateActivities.submit_whatsapp_template,
            approval,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(hours=24),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(minutes=5),
                non_retryable_error_types=["PermanentDeliveryFailure"],
            ),
        )
