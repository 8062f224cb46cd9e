"""The API server's side of Temporal: starting notification workflows and
signalling receipts to them."""

import logging

from temporalio.client import Client
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from workflows.contracts import (
    BULK_WORKFLOW,
    NOTIFICATION_WORKFLOW,
    RECEIPT_SIGNAL,
    TEMPLATE_APPROVAL_WORKFLOW,
    TENANT_SEARCH_ATTRIBUTE,
    BulkSendInput,
    DeliveryPolicy,
    DeliveryReceipt,
    DeliveryRef,
    NotificationWorkflowInput,
    TemplateApprovalInput,
    bulk_workflow_id,
    notification_workflow_id,
    template_approval_workflow_id,
)

log = logging.getLogger(__name__)
_TENANT = SearchAttributeKey.for_keyword(TENANT_SEARCH_ATTRIBUTE)


class Dispatcher:
    def __init__(self, client: Client, task_queue: str, policy: DeliveryPolicy) -> None:
        self._client = client
        self._task_queue = task_queue
        self._policy = policy

    async def start_notification(
        self, *, notification_id: str, tenant_id: str, deliveries: list[DeliveryRef]
    ) -> None:
        """Starts the notification's workflow. Starting it twice is harmless:
        the id is derived from the notification, so the second start is refused."""
        workflow_input = NotificationWorkflowInput(
            notification_id=notification_id,
            tenant_id=tenant_id,
            deliveries=deliveries,
            policy=self._policy,
        )
        try:
            await self._client.start_workflow(
                NOTIFICATION_WORKFLOW,
                workflow_input,
                id=notification_workflow_id(workflow_input.notification_id),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(_TENANT, workflow_input.tenant_id)]
                ),
            )
        except WorkflowAlreadyStartedError:
            pass

    async def start_bulk(self, *, bulk_id: str, tenant_id: str, rows: int) -> None:
        """One workflow per bulk, however many recipients: it pages through them."""
        try:
            await self._client.start_workflow(
                BULK_WORKFLOW,
                BulkSendInput(bulk_id=bulk_id, tenant_id=tenant_id, rows=rows, policy=self._policy),
                id=bulk_workflow_id(bulk_id),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes([SearchAttributePair(_TENANT, tenant_id)]),
            )
        except WorkflowAlreadyStartedError:
            pass

    async def start_template_approval(self, approval: TemplateApprovalInput) -> None:
        """Submits WhatsApp content to Meta with durable retries."""
        try:
            await self._client.start_workflow(
                TEMPLATE_APPROVAL_WORKFLOW,
                approval,
                id=template_approval_workflow_id(approval.whatsapp_name),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass

    async def signal_receipt(self, notification_id: str, receipt: DeliveryReceipt) -> None:
        """Tells a waiting workflow about a receipt. The database already has
        it, so a workflow that has finished waiting can ignore it."""
        handle = self._client.get_workflow_handle(notification_workflow_id(notification_id))
        try:
            await handle.signal(RECEIPT_SIGNAL, receipt)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            log.info("workflow for %s is closed; receipt kept in the database", notification_id)
