"""What the API server and the worker agree on: workflow names, inputs and
signals. Plain dataclasses, so Temporal serialises them as JSON."""

from dataclasses import dataclass, field
from enum import StrEnum

NOTIFICATION_WORKFLOW = "NotificationWorkflow"
TEMPLATE_APPROVAL_WORKFLOW = "TemplateApprovalWorkflow"
BULK_WORKFLOW = "BulkSendWorkflow"
ALERT_RULE_WORKFLOW = "AlertRuleWorkflow"
RECEIPT_SIGNAL = "delivery_receipt"
TENANT_SEARCH_ATTRIBUTE = "TenantId"


class WorkClass(StrEnum):
    """How urgent a workflow's tasks are, as Temporal's task queue priority.
    Someone waits for a single send; bulk pages and approvals can wait."""

    # A single send with `priority: "high"` (an OTP, an alert).
    URGENT = "urgent"
    SINGLE = "single"
    BACKGROUND = "background"
    BULK = "bulk"

    @property
    def priority_key(self) -> int:
        # 1 is dispatched first; 3 is Temporal's default; 5 the last.
        return {
            WorkClass.URGENT: 1,
            WorkClass.SINGLE: 2,
            WorkClass.BACKGROUND: 3,
            WorkClass.BULK: 4,
        }[self]


def notification_workflow_id(notification_id: str) -> str:
    """One workflow per notification; a retried request maps to the same id."""
    return f"notification-{notification_id}"


@dataclass
class DeliveryRef:
    delivery_id: str
    channel: str


@dataclass
class DeliveryPolicy:
    """Retry and receipt limits, fixed when the notification is accepted and
    visible in the workflow's input in the Temporal UI."""

    max_attempts: int = 6
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    # Overall limit on trying to hand a delivery to the provider.
    deadline_seconds: float = 3600.0
    provider_timeout_seconds: float = 15.0
    receipt_timeout_seconds: float = 3600.0


@dataclass
class RoutingPlan:
    """Channel fallback: the steps are tried in order; `deliveries` holds
    the first step's delivery, later ones are created as they are tried."""

    channels: list[str]
    # "sent" or "delivered" (domain.routing.SuccessOn).
    success_on: str
    step_timeout_seconds: float


# See NotificationWorkflowInput.revision; raise it instead of adding a patch
# when a change must tell new workflows from running ones.
NOTIFICATION_REVISION = 2


@dataclass
class NotificationWorkflowInput:
    notification_id: str
    tenant_id: str
    deliveries: list[DeliveryRef] = field(default_factory=list)
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    # None: every delivery at once.
    routing: RoutingPlan | None = None
    # The NotificationWorkflow revision of the server that started it. From
    # revision 1 (2026-12-03) on, what earlier changes decided by asking
    # workflow.patched() (the local-activity provider call, routing) follows
    # from this, which the history keeps: each ask records a marker and a
    # TemporalChangeVersion search-attribute upsert in every new workflow.
    # Inputs recorded before lack it (0) and ask the patches as they did.
    # From revision 2 (2026-12-04) on, a delivery's workflow ends once the
    # provider has the message, unless a routing step waits for its receipt:
    # receipts are recorded in PostgreSQL alone, and the API servers note
    # the late ones. Earlier workflows wait for the receipt as they did.
    revision: int = 0


@dataclass
class DeliveryReceipt:
    """A provider's final word on one delivery, sent as a signal."""

    delivery_id: str
    status: str  # "delivered" or "failed"


def template_approval_workflow_id(whatsapp_name: str) -> str:
    return f"template-approval-{whatsapp_name}"


@dataclass
class TemplateApprovalInput:
    """WhatsApp content to submit to Meta for review."""

    whatsapp_name: str
    language: str
    # Meta's text, with positional {{1}} placeholders.
    body: str
    # One sample value per placeholder, which Meta requires for review.
    examples: list[str] = field(default_factory=list)


def bulk_workflow_id(bulk_id: str) -> str:
    return f"bulk-{bulk_id}"


@dataclass
class BulkSendInput:
    bulk_id: str
    tenant_id: str
    # Rows are 0..rows-1; refused rows simply have no notification.
    rows: int
    page_size: int = 500
    # Pages handed to providers at the same time.
    parallel_pages: int = 4
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)


def alert_rule_workflow_id(rule_id: str) -> str:
    """One workflow per alert rule, for as long as the rule exists."""
    return f"alert-rule-{rule_id}"


@dataclass
class AlertRuleInput:
    """An alert rule to check every `check_seconds` until it is deleted."""

    rule_id: str
    tenant_id: str
    check_seconds: float = 30.0
    # Checks before the workflow continues as new, bounding its history.
    checks_per_run: int = 100


@dataclass
class AlertCheckResult:
    # The rule was deleted: nothing more to check.
    gone: bool
