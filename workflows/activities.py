"""Delivery activities: the I/O of a notification workflow. Each is idempotent
per delivery (`notification_id:channel`)."""

import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.policies import RolloutPolicy
from contracts.workflows import DeliveryRef, TemplateApprovalInput
from providers.base import (
    OutboundMessage,
    ProviderAccepted,
    ProviderError,
    WhatsAppTemplate,
)
from providers.whatsapp.adapter import WhatsAppCloudProvider
from server.domain.routing import StepOutcome
from server.domain.status import DeliveryStatus
from server.services.deliveries import move_delivery
from server.services.routing import advance_routing
from server.store import notifications as store
from server.store import templates as template_store
from server.store.db import Database
from server.store.notifications import DeliveryRecord
from workflows.failover import Carrier, Failover, NoProviderAllowed
from workflows.reconcile import call_provider, reconcile, unknown_outcome_note

log = logging.getLogger(__name__)

PERMANENT_FAILURE = "PermanentDeliveryFailure"
TRANSIENT_FAILURE = "TransientDeliveryFailure"


@dataclass
class SendDeliveryInput:
    delivery_id: str
    retry_initial_seconds: float
    retry_max_seconds: float


@dataclass
class SendDeliveryResult:
    status: str
    # True when no receipt will follow (delivered already, or nothing to send).
    final: bool


@dataclass
class RecordFailureInput:
    delivery_id: str
    # Tenant-readable reason from a permanent failure; empty when retries ran out.
    reason: str


@dataclass
class MissingReceiptInput:
    delivery_id: str
    waited_seconds: float


@dataclass
class AdvanceRoutingInput:
    notification_id: str
    position: int
    delivery_id: str
    # domain.routing.StepOutcome: sent, delivered, failed or timed_out.
    outcome: str
    reason: str
    # Create and return the next step's delivery.
    start_next: bool


def backoff_with_jitter(attempt: int, initial: float, maximum: float) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, so
    retries from many deliveries spread out instead of arriving together."""
    ceiling = min(maximum, initial * 2 ** (attempt - 1))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


def outbound_message(delivery: DeliveryRecord) -> OutboundMessage:
    """What the provider adapter sends for a stored delivery (adapters that
    take status callback URLs build them: providers/registry.py)."""
    content = delivery.content
    template = None
    if "whatsapp_name" in content:
        template = WhatsAppTemplate(
            name=content["whatsapp_name"],
            language=content["language"],
            parameters=list(content["parameters"]),
        )
    return OutboundMessage(
        delivery_id=delivery.delivery_id,
        notification_id=delivery.notification_id,
        channel=delivery.channel,
        address=delivery.address,
        subject=content.get("subject", ""),
        body=content.get("body", ""),
        html_body=content.get("html_body", ""),
        template=template,
    )


class DeliveryActivities:
    def __init__(
        self,
        db: Database,
        failover: Failover,
        rollout: RolloutPolicy,
        settle_after: timedelta,
    ) -> None:
        self._db = db
        self.failover = failover
        self._rollout = rollout
        # See reconcile(): an attempt younger than this may still be running.
        self.settle_after = settle_after

    @activity.defn(name="send_delivery")
    async def send_delivery(self, task: SendDeliveryInput) -> SendDeliveryResult:
        attempt = activity.info().attempt
        first = self.failover.first_choices()
        # The usual case, a first attempt at a provider known to be up, reads
        # the delivery and commits its in-progress mark (see begin_attempts)
        # in one statement; anything else takes _prepare_attempt.
        async with self._db.transaction(one_statement=True) as session:
            delivery = await store.claim_first_attempt(
                session,
                delivery_id=task.delivery_id,
                providers={channel: c.name for channel, c in first.items()},
                now=datetime.now(UTC),
            )
        if delivery is not None:
            carrier = first[delivery.channel]
        else:
            prepared = await self._prepare_attempt(task, attempt)
            if isinstance(prepared, SendDeliveryResult):
                return prepared
            delivery, carrier = prepared
        message = outbound_message(delivery)
        try:
            accepted = await call_provider(carrier.provider, message, via=carrier.name)
        except ProviderError as error:
            outcome = unknown_outcome_note(error.reason) if error.outcome_unknown else error.reason
            await self._record_attempt(
                delivery.delivery_id,
                _via(outcome, carrier),
                retrying="" if error.permanent else f"{error.reason}; retrying",
                unknown=error.outcome_unknown,
            )
            await self.failover.report(delivery.channel, carrier, error)
            log.warning(
                "delivery %s attempt %d via %s: %s",
                delivery.delivery_id, attempt, carrier.name, error.detail,
            )  # fmt: skip
            if error.permanent:
                raise ApplicationError(
                    error.reason, type=PERMANENT_FAILURE, non_retryable=True
                ) from None
            delay = error.retry_after or backoff_with_jitter(
                attempt, task.retry_initial_seconds, task.retry_max_seconds
            )
            raise ApplicationError(
                error.reason, type=TRANSIENT_FAILURE, next_retry_delay=timedelta(seconds=delay)
            ) from None
        result = await self._record_accepted(delivery, accepted, carrier.name)
        await self.failover.report(delivery.channel, carrier, None)
        return result

    async def _prepare_attempt(
        self, task: SendDeliveryInput, attempt: int
    ) -> SendDeliveryResult | tuple[DeliveryRecord, Carrier]:
        """Reads the delivery, and reconciles an attempt whose outcome is
        unknown or chooses a provider past open breakers, then marks the
        attempt in progress: the delivery and its carrier to call, or the
        result when there is nothing to send."""
        async with self._db.transaction(one_statement=True) as session:
            delivery = await store.get_delivery(session, delivery_id=task.delivery_id)
            if delivery is None:
                raise ApplicationError(
                    f"delivery {task.delivery_id} does not exist",
                    type=PERMANENT_FAILURE,
                    non_retryable=True,
                )
        # Already handed over on an earlier attempt: never send twice.
        if delivery.provider_message_id or delivery.status is not DeliveryStatus.QUEUED:
            return SendDeliveryResult(delivery.status.value, final=delivery.status.is_final)
        if delivery.attempt_started_at is not None:
            message = outbound_message(delivery)
            # No answer last time: only the provider that carried it can say.
            carrier = self.failover.carrier(delivery.channel, delivery.attempt_provider)
            reconciled = await reconcile(
                self._db, carrier.provider, delivery, message, settle_after=self.settle_after
            )
            if reconciled.adopted:
                return await self._record_accepted(delivery, reconciled.adopted, carrier.name)
            if reconciled.fail_reason:
                raise ApplicationError(
                    reconciled.fail_reason, type=PERMANENT_FAILURE, non_retryable=True
                )
            if reconciled.retry_reason:
                raise ApplicationError(
                    reconciled.retry_reason,
                    type=TRANSIENT_FAILURE,
                    next_retry_delay=timedelta(
                        seconds=reconciled.wait_seconds
                        or backoff_with_jitter(
                            attempt, task.retry_initial_seconds, task.retry_max_seconds
                        )
                    ),
                )
            # It does not have it: send again there (SMTP's resend keeps its
            # Message-ID only at the same server).
        else:
            try:
                carrier = await self.failover.choose(delivery.channel, delivery.attempt_provider)
            except NoProviderAllowed as skipped:
                await self._record_attempt(
                    delivery.delivery_id, str(skipped), retrying=f"{skipped}; retrying"
                )
                raise ApplicationError(
                    str(skipped),
                    type=TRANSIENT_FAILURE,
                    next_retry_delay=timedelta(
                        seconds=backoff_with_jitter(
                            attempt, task.retry_initial_seconds, task.retry_max_seconds
                        )
                    ),
                ) from None
        # Committed on its own, before the call (see begin_attempts).
        async with self._db.transaction(one_statement=True) as session:
            await store.begin_attempts(
                session,
                delivery_ids=[delivery.delivery_id],
                now=datetime.now(UTC),
                provider=carrier.name,
            )
        return delivery, carrier

    async def _record_accepted(
        self, delivery: DeliveryRecord, accepted: ProviderAccepted, via: str
    ) -> SendDeliveryResult:
        status = DeliveryStatus.DELIVERED if accepted.delivered else DeliveryStatus.SENT
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            # Locks the notification before the delivery row, in the order
            # receipts use, and holds it for the status move below.
            await store.lock_and_record_accepted(
                session,
                delivery_id=delivery.delivery_id,
                outcome=f"accepted via {via}",
                now=now,
                provider_message_id=accepted.provider_message_id,
            )
            await move_delivery(
                session,
                delivery_id=delivery.delivery_id,
                status=status,
                reason="",
                now=now,
                rollout=self._rollout,
                locked=True,
            )
        return SendDeliveryResult(status.value, final=accepted.delivered)

    @activity.defn(name="record_failure")
    async def record_failure(self, task: RecordFailureInput) -> None:
        async with self._db.transaction() as session:
            delivery = await store.get_delivery(session, delivery_id=task.delivery_id)
            if delivery is None:
                return
            reason = task.reason or f"provider unavailable after {delivery.attempts} attempts"
            await move_delivery(
                session,
                delivery_id=task.delivery_id,
                status=DeliveryStatus.FAILED,
                reason=reason,
                now=datetime.now(UTC),
                rollout=self._rollout,
            )

    @activity.defn(name="advance_routing")
    async def advance_routing(self, task: AdvanceRoutingInput) -> DeliveryRef | None:
        """Records a routing step's outcome; returns the next step's delivery."""
        async with self._db.transaction() as session:
            following = await advance_routing(
                session,
                notification_id=task.notification_id,
                position=task.position,
                outcome=StepOutcome(task.outcome),
                reason=task.reason,
                start_next=task.start_next,
                rollout=self._rollout,
            )
        return DeliveryRef(following.delivery_id, following.channel) if following else None

    @activity.defn(name="record_missing_receipt")
    async def record_missing_receipt(self, task: MissingReceiptInput) -> None:
        """Workflows started before revision 2 wait for the receipt, and call
        this when it is late: it notes the delivery if it is still sent and
        the API servers' sweep has not noted it yet."""
        async with self._db.transaction(one_statement=True) as session:
            await store.note_missing_receipts(
                session,
                waited_seconds=task.waited_seconds,
                now=datetime.now(UTC),
                delivery_id=task.delivery_id,
            )

    async def _record_attempt(
        self, delivery_id: str, outcome: str, retrying: str, unknown: bool = False
    ) -> None:
        async with self._db.transaction() as session:
            await store.record_attempt(
                session,
                delivery_id=delivery_id,
                outcome=outcome,
                retrying=retrying,
                now=datetime.now(UTC),
                unknown=unknown,
            )


def _via(outcome: str, carrier: Carrier) -> str:
    """A history line naming the provider that carried the attempt."""
    return f"{outcome} (via {carrier.name})"


class TemplateActivities:
    """Submits WhatsApp template content to Meta for review."""

    def __init__(self, db: Database, whatsapp: WhatsAppCloudProvider) -> None:
        self._db = db
        self._whatsapp = whatsapp

    @activity.defn(name="submit_whatsapp_template")
    async def submit_whatsapp_template(self, approval: TemplateApprovalInput) -> None:
        try:
            await self._whatsapp.submit_template(
                name=approval.whatsapp_name,
                language=approval.language,
                body=approval.body,
                examples=approval.examples,
            )
        except ProviderError as error:
            if not error.permanent:
                raise ApplicationError(error.reason, type=TRANSIENT_FAILURE) from None
            # Refused outright: the tenant sees the rejection on the version.
            async with self._db.transaction() as session:
                await template_store.set_whatsapp_review(
                    session,
                    whatsapp_name=approval.whatsapp_name,
                    status="rejected",
                    reason=error.reason,
                )
