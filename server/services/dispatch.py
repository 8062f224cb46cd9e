"""The API server's side of Temporal: starting workflows through a
transactional outbox, and signalling receipts to them."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import (
    Priority,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.workflows import (
    ALERT_RULE_WORKFLOW,
    BULK_WORKFLOW,
    NOTIFICATION_REVISION,
    NOTIFICATION_WORKFLOW,
    RECEIPT_SIGNAL,
    TEMPLATE_APPROVAL_WORKFLOW,
    TENANT_SEARCH_ATTRIBUTE,
    AlertRuleInput,
    BulkSendInput,
    DeliveryPolicy,
    DeliveryReceipt,
    DeliveryRef,
    NotificationWorkflowInput,
    RoutingPlan,
    TemplateApprovalInput,
    WorkClass,
    alert_rule_workflow_id,
    bulk_workflow_id,
    notification_workflow_id,
    template_approval_workflow_id,
)
from server import tracing
from server.domain.routing import RoutingPolicy
from server.services.fair_gate import FairGate
from server.store import outbox as store
from server.store.db import Database, outside_request_budget
from server.store.outbox import OutboxKind, PendingStart

log = logging.getLogger(__name__)
_TENANT = SearchAttributeKey.for_keyword(TENANT_SEARCH_ATTRIBUTE)


def routing_plan(stored: dict[str, Any] | None) -> RoutingPlan | None:
    """The workflow's routing input from a notification's stored policy."""
    if stored is None:
        return None
    policy = RoutingPolicy.from_json(stored)
    return RoutingPlan(
        channels=[c.value for c in policy.channels],
        success_on=policy.success_on.value,
        step_timeout_seconds=policy.step_timeout_seconds,
    )


class Dispatcher:
    def __init__(
        self,
        client: Client,
        task_queue: str,
        policy: DeliveryPolicy,
        rpc_timeout: timedelta = timedelta(seconds=3),
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._policy = policy
        # A frozen Temporal must not hold a start (and its caller) forever.
        self._rpc_timeout = rpc_timeout

    async def start_notification(
        self,
        *,
        notification_id: str,
        tenant_id: str,
        deliveries: list[DeliveryRef],
        routing: RoutingPlan | None = None,
        urgent: bool = False,
    ) -> None:
        """Starts the notification's workflow. Starting it twice is harmless:
        the id is derived from the notification, so the second start is refused."""
        workflow_input = NotificationWorkflowInput(
            notification_id=notification_id,
            tenant_id=tenant_id,
            deliveries=deliveries,
            policy=self._policy,
            routing=routing,
            revision=NOTIFICATION_REVISION,
        )
        await self._start(
            NOTIFICATION_WORKFLOW, workflow_input, notification_workflow_id(notification_id),
            tenant_id, WorkClass.URGENT if urgent else WorkClass.SINGLE,
        )  # fmt: skip

    async def start_bulk(self, *, bulk_id: str, tenant_id: str, rows: int) -> None:
        """One workflow per bulk, however many recipients: it pages through them."""
        await self._start(
            BULK_WORKFLOW,
            BulkSendInput(bulk_id=bulk_id, tenant_id=tenant_id, rows=rows, policy=self._policy),
            bulk_workflow_id(bulk_id),
            tenant_id,
            WorkClass.BULK,
        )

    async def start_template_approval(self, approval: TemplateApprovalInput) -> None:
        """Submits WhatsApp content to Meta with durable retries."""
        await self._start(
            TEMPLATE_APPROVAL_WORKFLOW,
            approval,
            template_approval_workflow_id(approval.whatsapp_name),
            tenant_id=None,
            work=WorkClass.BACKGROUND,
        )

    async def start_alert_rule(self, rule: AlertRuleInput) -> None:
        """The rule's checks: behind single sends, since a check can wait
        seconds and someone waits for a send."""
        await self._start(
            ALERT_RULE_WORKFLOW, rule, alert_rule_workflow_id(rule.rule_id), rule.tenant_id,
            WorkClass.BACKGROUND,
        )  # fmt: skip

    async def stop_alert_rule(self, rule_id: str) -> None:
        """Cancels a deleted rule's checks. If this fails, the next check
        finds the rule gone and ends the workflow."""
        handle = self._client.get_workflow_handle(alert_rule_workflow_id(rule_id))
        try:
            async with asyncio.timeout(self._rpc_timeout.total_seconds() * 2):
                await handle.cancel(rpc_timeout=self._rpc_timeout)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                log.warning("could not cancel checks of alert rule %s: %s", rule_id, exc)
        except TimeoutError:
            log.warning("could not cancel checks of alert rule %s: Temporal timed out", rule_id)

    async def _start(
        self, workflow: str, arg: object, workflow_id: str, tenant_id: str | None, work: WorkClass
    ) -> None:
        tenant = [SearchAttributePair(_TENANT, tenant_id)] if tenant_id else []
        # Temporal's matching dispatches backlogged tasks by priority_key
        # (lower first), then round-robin across fairness keys within a key;
        # activities inherit both from their workflow. See architecture.md.
        priority = Priority(priority_key=work.priority_key, fairness_key=tenant_id or None)
        # rpc_timeout bounds each attempt; the client retries unreachable
        # servers on its own, so the whole call gets a deadline too.
        async with asyncio.timeout(self._rpc_timeout.total_seconds() * 2):
            try:
                await self._client.start_workflow(
                    workflow,
                    arg,
                    id=workflow_id,
                    task_queue=self._task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    rpc_timeout=self._rpc_timeout,
                    search_attributes=TypedSearchAttributes(tenant),
                    priority=priority,
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


Start = Callable[[], Awaitable[None]]
# A leased row, whose tenant it is ("" for none), and the call that starts it.
Planned = tuple[PendingStart, str, Start | None]


class Outbox:
    """Workflow starts stored in the same transaction as what they start
    (`add`), so an accepted request is never lost to a Temporal outage or a
    crash. The request starts its workflow right after committing
    (`start_soon`); `sweep`, run by every API server, starts what is left."""

    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        *,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 100,
        concurrency: int = 16,
    ) -> None:
        self._db = db
        self.dispatcher = dispatcher
        # Longer than a sweep of `batch` starts takes, `concurrency` at a time.
        self._lease = lease
        self._batch = batch
        # Shared by every start of this process, at accept and in sweeps: a
        # tenant's burst must not queue another tenant's start behind it.
        self._gate = FairGate(concurrency)
        self._starting: set[asyncio.Task[int]] = set()
        # The rows whose start_soon is still running: this process's sweeper
        # leaves them to it. Under a burst a start can wait in the gate for
        # longer than the sweeper's grace, which then started it a second time.
        self._in_flight: set[tuple[OutboxKind, str]] = set()

    async def add(self, session: AsyncSession, starts: list[PendingStart]) -> None:
        await store.add(session, starts, now=datetime.now(UTC))

    def start_notification_soon(
        self,
        *,
        notification_id: str,
        tenant_id: str,
        deliveries: list[DeliveryRef],
        routing: RoutingPlan | None = None,
        urgent: bool = False,
    ) -> None:
        self._start_soon(
            notification_start(notification_id, urgent=urgent),
            tenant_id,
            partial(
                self.dispatcher.start_notification,
                notification_id=notification_id,
                tenant_id=tenant_id,
                deliveries=deliveries,
                routing=routing,
                urgent=urgent,
            ),
        )

    async def start_notification_now(
        self, *, notification_id: str, tenant_id: str, deliveries: list[DeliveryRef]
    ) -> None:
        """An urgent single send stored by a caller with no one to answer
        first (an alert): started at once; the sweeper retries if this fails."""
        await self._start_and_clear(
            [
                (
                    notification_start(notification_id, urgent=True),
                    tenant_id,
                    partial(
                        self.dispatcher.start_notification, notification_id=notification_id,
                        tenant_id=tenant_id, deliveries=deliveries, urgent=True,
                    ),
                )
            ]
        )  # fmt: skip

    def start_alert_rule_soon(self, rule: AlertRuleInput) -> None:
        self._start_soon(
            alert_rule_start(rule), rule.tenant_id, partial(self.dispatcher.start_alert_rule, rule)
        )

    def start_bulk_soon(self, *, bulk_id: str, tenant_id: str, rows: int) -> None:
        self._start_soon(
            PendingStart(OutboxKind.BULK, bulk_id),
            tenant_id,
            partial(self.dispatcher.start_bulk, bulk_id=bulk_id, tenant_id=tenant_id, rows=rows),
        )

    def start_approval_soon(self, approval: TemplateApprovalInput) -> None:
        self._start_soon(
            approval_start(approval), "", partial(self.dispatcher.start_template_approval, approval)
        )

    def _start_soon(self, pending: PendingStart, tenant_id: str, start: Start) -> None:
        key = (pending.kind, pending.ref)
        self._in_flight.add(key)
        task = asyncio.create_task(
            self._start_and_clear([(pending, tenant_id, start)]), context=outside_request_budget()
        )
        # Held until done, so it is not garbage-collected mid-flight.
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)
        task.add_done_callback(lambda _: self._in_flight.discard(key))

    async def sweep(self, *, older_than: timedelta, recheck_after: timedelta | None = None) -> int:
        """Starts the workflows still pending after `older_than` (their API
        server stopped, or Temporal was unreachable), and with `recheck_after`
        first requeues single sends and bulks unconfirmed for that long, in
        case Temporal lost them. Rows are leased and committed before any
        Temporal call, so no lock or connection is held meanwhile. Returns
        how many it started."""
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            if recheck_after is not None:
                await store.requeue_unconfirmed(
                    session, checked_before=now - recheck_after, now=now, limit=self._batch
                )
            leased = await store.lease(
                session, older_than=now - older_than, now=now, until=now + self._lease,
                limit=self._batch,
            )  # fmt: skip
            # Leased all the same: the running start clears or releases them.
            leased = [p for p in leased if (p.kind, p.ref) not in self._in_flight]
            starts = await self._resolve(session, leased)
        return await self._start_and_clear(starts)

    async def _resolve(self, session: AsyncSession, leased: list[PendingStart]) -> list[Planned]:
        """Each leased row with the call that starts its workflow; None when
        what it would start is gone (an upload that was discarded)."""
        notifications = await store.notification_starts(
            session, notification_ids=[p.ref for p in leased if p.kind == OutboxKind.NOTIFICATION]
        )
        bulks = await store.bulk_starts(
            session, bulk_ids=[p.ref for p in leased if p.kind == OutboxKind.BULK]
        )
        d = self.dispatcher
        starts: list[Planned] = []
        for p in leased:
            start: Start | None = None
            tenant_id = ""
            if p.kind == OutboxKind.NOTIFICATION and (n := notifications.get(p.ref)):
                tenant_id = n.tenant_id
                refs = [DeliveryRef(delivery_id, channel) for delivery_id, channel in n.deliveries]
                start = tracing.within(
                    (p.payload or {}).get("trace"),
                    partial(
                        d.start_notification, notification_id=p.ref, tenant_id=n.tenant_id,
                        deliveries=refs, routing=routing_plan(n.routing),
                        urgent=bool(p.payload and p.payload.get("urgent")),
                    ),
                )  # fmt: skip
            elif p.kind == OutboxKind.BULK and (b := bulks.get(p.ref)):
                tenant_id = b[0]
                start = partial(d.start_bulk, bulk_id=p.ref, tenant_id=b[0], rows=b[1])
            elif p.kind == OutboxKind.TEMPLATE_APPROVAL and p.payload:
                start = partial(d.start_template_approval, TemplateApprovalInput(**p.payload))
            elif p.kind == OutboxKind.ALERT_RULE and p.payload:
                tenant_id = str(p.payload["tenant_id"])
                start = partial(d.start_alert_rule, AlertRuleInput(**p.payload))
            starts.append((p, tenant_id, start))
        return starts

    async def _start_and_clear(self, starts: list[Planned]) -> int:
        """Starts each workflow, then deletes the rows of those started (or
        already started) and gives the others back for a later sweep. Once
        one start fails, Temporal is taken for unreachable and the rest wait."""
        unreachable = asyncio.Event()

        async def run(tenant_id: str, start: Start | None) -> bool:
            if start is None:
                return True
            async with self._gate.turn(tenant_id):
                if unreachable.is_set():
                    return False
                try:
                    await start()
                except Exception as error:
                    if not unreachable.is_set():
                        log.warning("workflow start failed, will retry: %r", error)
                    unreachable.set()
                    return False
                return True

        done = await asyncio.gather(*(run(tenant_id, start) for _, tenant_id, start in starts))
        started = [p for (p, _, _), ok in zip(starts, done, strict=True) if ok]
        left = [p for (p, _, _), ok in zip(starts, done, strict=True) if not ok]
        try:
            # Each row stands alone: removing one and releasing another need
            # no transaction around them.
            async with self._db.transaction(one_statement=True) as session:
                await store.remove(session, started)
                await store.release(session, left)
        except Exception:
            # The rows stay; a start already made is refused harmlessly later.
            log.warning("could not clear %d started workflows from the outbox", len(started))
        return sum(ok and start is not None for (_, _, start), ok in zip(starts, done, strict=True))


def notification_start(notification_id: str, *, urgent: bool) -> PendingStart:
    """The outbox row of a single send; an urgent one keeps its priority
    through a restart by the sweeper."""
    payload: dict[str, Any] = {"urgent": True} if urgent else {}
    # A sweeper's start then continues the request's trace.
    if trace := tracing.carrier():
        payload["trace"] = trace
    return PendingStart(OutboxKind.NOTIFICATION, notification_id, payload or None)


def approval_start(approval: TemplateApprovalInput) -> PendingStart:
    return PendingStart(OutboxKind.TEMPLATE_APPROVAL, approval.whatsapp_name, asdict(approval))


def alert_rule_start(rule: AlertRuleInput) -> PendingStart:
    return PendingStart(OutboxKind.ALERT_RULE, rule.rule_id, asdict(rule))
