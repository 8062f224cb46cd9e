"""Bulk delivery activities: a page of recipients per call, provider calls
concurrent within the page, outcomes written in batches. Idempotent: only
deliveries still queued without a provider message id are sent."""

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio import activity

from contracts.policies import RolloutPolicy
from providers.base import OutboundMessage, ProviderAccepted, ProviderError
from server import metrics
from server.domain.routing import RoutingPolicy, StepOutcome, SuccessOn
from server.domain.status import DeliveryStatus
from server.services.deliveries import guard_rollout
from server.services.routing import advance_routing
from server.store import bulks as store
from server.store import notifications as store_notifications
from server.store.db import Database
from server.store.notifications import DeliveryRecord
from workflows.activities import outbound_message
from workflows.failover import Carrier, Failover, NoProviderAllowed
from workflows.reconcile import (
    OUTCOME_UNKNOWN,
    Reconciled,
    call_provider,
    reconcile,
    unknown_outcome_note,
)

log = logging.getLogger(__name__)


# Provider calls in flight per page. Four pages in flight x 16 = 64 requests.
# By Little's law that carries 330 sends/s at up to ~190 ms per provider call,
# which is what Twilio-like APIs answer in (and what the sandbox does under load).
PAGE_CONCURRENCY = 16
# Routed rows moved to their next step per transaction, and transactions at
# once (disjoint rows, each locked in id order). advance_routing is about
# nine statements a row: one at a time, 2,000 rows took 45 s.
SETTLE_BATCH = 100
SETTLE_CONCURRENCY = 4
# A batch's transaction, well past its ~0.5-2 s so a loaded database is not a failure.
SETTLE_SECONDS = 30.0


@dataclass
class BulkPageInput:
    bulk_id: str
    first_row: int
    last_row: int
    attempt: int
    # Last attempt: a transient failure now fails the delivery.
    final: bool


@dataclass
class BulkRetryInput:
    bulk_id: str
    delivery_ids: list[str]
    attempt: int
    final: bool


@dataclass
class BulkPageResult:
    handed_over: int = 0
    failed: int = 0
    # Deliveries to try again, and the longest Retry-After a provider asked for.
    retry_ids: list[str] = field(default_factory=list)
    retry_after: float = 0.0


@dataclass
class FinishBulkInput:
    bulk_id: str


@dataclass
class BulkStepInput:
    bulk_id: str
    # The routing step (0-based) whose rows are settled.
    position: int
    page_size: int
    # Settle nothing while a row of the step is short of success_on: the
    # workflow then waits step_timeout and settles regardless.
    unless_open: bool


@dataclass
class BulkStepResult:
    routed: bool = False
    step_timeout_seconds: float = 0.0
    # Rows of the step short of success_on (with unless_open: nothing settled).
    open: int = 0
    # First rows of the pages holding the next step's deliveries to send.
    next_pages: list[int] = field(default_factory=list)


class BulkActivities:
    def __init__(
        self,
        db: Database,
        failover: Failover,
        rollout: RolloutPolicy,
        settle_after: timedelta,
        concurrency: int = PAGE_CONCURRENCY,
    ) -> None:
        self._db = db
        self._failover = failover
        self._concurrency = concurrency
        self._rollout = rollout
        self._settle_after = settle_after

    @activity.defn(name="send_bulk_page")
    async def send_bulk_page(self, task: BulkPageInput) -> BulkPageResult:
        async with self._db.transaction() as session:
            pending = await store.queued_deliveries(
                session, bulk_id=task.bulk_id, first_row=task.first_row, last_row=task.last_row
            )
        return await self._send(task.bulk_id, pending, task.attempt, task.final)

    @activity.defn(name="send_bulk_retries")
    async def send_bulk_retries(self, task: BulkRetryInput) -> BulkPageResult:
        async with self._db.transaction() as session:
            pending = await store.queued_deliveries(
                session, bulk_id=task.bulk_id, delivery_ids=task.delivery_ids
            )
        return await self._send(task.bulk_id, pending, task.attempt, task.final)

    @activity.defn(name="finish_bulk")
    async def finish_bulk(self, task: FinishBulkInput) -> None:
        async with self._db.transaction() as session:
            await store.mark_finished(session, bulk_id=task.bulk_id, now=datetime.now(UTC))

    @activity.defn(name="settle_bulk_step")
    async def settle_bulk_step(self, task: BulkStepInput) -> BulkStepResult:
        """Records the outcome of routing step `position` for every row still
        trying it and moves the rows that failed or did not reach success_on
        to their next step (advance_routing, as single sends do), in batches.
        Safe to repeat: a settled step is left as it is, and the next step's
        pages are found from the deliveries still to hand over."""
        async with self._db.transaction() as session:
            stored = await store.bulk_routing(session, bulk_id=task.bulk_id)
            if stored is None:
                return BulkStepResult()
            policy = RoutingPolicy.from_json(stored)
            rows = await store.trying_at_step(session, bulk_id=task.bulk_id, position=task.position)
        result = BulkStepResult(routed=True, step_timeout_seconds=policy.step_timeout_seconds)
        result.open = sum(1 for r in rows if _step_outcome(r.status, policy) is None)
        if task.unless_open and result.open:
            return result
        last = task.position + 1 >= len(policy.channels)
        gate = asyncio.Semaphore(SETTLE_CONCURRENCY)
        settled = 0

        async def settle(batch: list[store.StepRow]) -> None:
            nonlocal settled
            async with gate, self._db.transaction(seconds=SETTLE_SECONDS) as session:
                # Locked, then read again: a receipt may have landed meanwhile.
                await store_notifications.lock_notifications(
                    session, delivery_ids=[r.delivery_id for r in batch]
                )
                for row in await store.trying_at_step(
                    session,
                    bulk_id=task.bulk_id,
                    position=task.position,
                    notification_ids=[r.notification_id for r in batch],
                ):
                    outcome = _step_outcome(row.status, policy) or StepOutcome.TIMED_OUT
                    reason = ""
                    if outcome is StepOutcome.TIMED_OUT:
                        reason = (
                            f"not {policy.success_on.value} within step_timeout "
                            f"{policy.step_timeout_seconds:g}s"
                            f"{' (no receipt)' if row.status is DeliveryStatus.SENT else ''}"
                            "; moved on"
                        )
                    await advance_routing(
                        session, notification_id=row.notification_id, position=task.position,
                        outcome=outcome, reason=reason,
                        start_next=not outcome.is_success and not last, rollout=self._rollout,
                    )  # fmt: skip
            settled += len(batch)
            activity.heartbeat(settled)

        await asyncio.gather(
            *(settle(rows[i : i + SETTLE_BATCH]) for i in range(0, len(rows), SETTLE_BATCH))
        )
        if not last:
            async with self._db.transaction() as session:
                result.next_pages = await store.pages_to_send(
                    session,
                    bulk_id=task.bulk_id,
                    position=task.position + 1,
                    page_size=task.page_size,
                )
        return result

    async def _send(
        self, bulk_id: str, pending: list[DeliveryRecord], attempt: int, final: bool
    ) -> BulkPageResult:
        """Calls the provider for each delivery, `concurrency` at a time.

        At most one provider call per delivery, through crashes: each group
        of deliveries is marked in progress (one commit) just before its
        calls, and outcomes are committed in small batches as they come back.
        A retried activity finds the rows still marked and reconciles them
        instead of sending again (workflows/reconcile.py)."""
        started = time.monotonic()
        page = _PageOutcomes(self, bulk_id, final)
        gate = asyncio.Semaphore(self._concurrency)
        calls = []
        for first in range(0, len(pending), self._concurrency):
            group = pending[first : first + self._concurrency]
            # Each fresh attempt's provider, chosen (and marked) before its call.
            carriers: dict[str, Carrier | NoProviderAllowed] = {}
            fresh: dict[str, list[str]] = {}
            for d in group:
                if d.attempt_started_at is None:
                    chosen = await self._choose(d)
                    carriers[d.delivery_id] = chosen
                    if isinstance(chosen, Carrier):
                        fresh.setdefault(chosen.name, []).append(d.delivery_id)
            if fresh:
                async with self._db.transaction() as session:
                    for name, ids in fresh.items():
                        await store_notifications.begin_attempts(
                            session, delivery_ids=ids, now=datetime.now(UTC), provider=name
                        )
            for delivery in group:
                # Marks run at most one group ahead of the calls in flight.
                await gate.acquire()
                calls.append(
                    asyncio.create_task(
                        self._call(delivery, carriers.get(delivery.delivery_id), gate, page)
                    )
                )
        await asyncio.gather(*calls)
        await page.flush()
        log.info(
            "bulk batch of %d (attempt %d) in %.1f s",
            len(pending), attempt, time.monotonic() - started,
        )  # fmt: skip
        return page.result

    async def _choose(self, delivery: DeliveryRecord) -> Carrier | NoProviderAllowed:
        try:
            return await self._failover.choose(delivery.channel, delivery.attempt_provider)
        except NoProviderAllowed as skipped:
            return skipped

    async def _call(
        self,
        delivery: DeliveryRecord,
        chosen: Carrier | NoProviderAllowed | None,
        gate: asyncio.Semaphore,
        page: "_PageOutcomes",
    ) -> None:
        message = outbound_message(delivery)
        result: ProviderAccepted | ProviderError | Reconciled
        via = chosen.name if isinstance(chosen, Carrier) else ""
        try:
            if isinstance(chosen, NoProviderAllowed):
                result = ProviderError(str(chosen), permanent=False)
            elif chosen is None:
                # No answer last time: reconcile, and resend, where it went.
                carrier = self._failover.carrier(delivery.channel, delivery.attempt_provider)
                via = carrier.name
                result = await reconcile(
                    self._db, carrier.provider, delivery, message, settle_after=self._settle_after
                )
                if result == Reconciled():
                    async with self._db.transaction() as session:
                        await store_notifications.begin_attempts(
                            session,
                            delivery_ids=[delivery.delivery_id],
                            now=datetime.now(UTC),
                            provider=carrier.name,
                        )
                    result = await self._provider_call(delivery.channel, carrier, message)
            else:
                result = await self._provider_call(delivery.channel, chosen, message)
        finally:
            gate.release()
        await page.add(delivery, result, via)

    async def _provider_call(
        self, channel: str, carrier: Carrier, message: OutboundMessage
    ) -> ProviderAccepted | ProviderError:
        try:
            accepted = await call_provider(carrier.provider, message, via=carrier.name)
        except ProviderError as error:
            await self._failover.report(channel, carrier, error)
            return error
        await self._failover.report(channel, carrier, None)
        return accepted

    async def record(
        self, bulk_id: str, tenant_id: str, outcomes: list[store.DeliveryOutcome]
    ) -> None:
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            reached = await store.record_outcomes(session, outcomes, now=now)
            tenant = metrics.tenant_label(tenant_id)
            for r in reached:
                counter = metrics.DELIVERIES.labels(
                    r.channel, metrics.provider_label(r.provider), r.status.value, tenant
                )
                metrics.count_on_commit(session, counter)
            # Final outcomes feed the template's rollout guard, as for single
            # sends: a bad new version must stop itself in a bulk too.
            final = any(o.status and DeliveryStatus(o.status).is_final for o in outcomes)
            origin = await store.bulk_template(session, bulk_id=bulk_id) if final else None
            if origin:
                await guard_rollout(
                    session, tenant_id=origin[0], template_id=origin[1], now=now,
                    policy=self._rollout,
                )  # fmt: skip


def _step_outcome(status: DeliveryStatus, policy: RoutingPolicy) -> StepOutcome | None:
    """Where a step's delivery leaves the step; None while short of success_on."""
    if status is DeliveryStatus.DELIVERED:
        return StepOutcome.DELIVERED
    if status is DeliveryStatus.FAILED:
        return StepOutcome.FAILED
    if status is DeliveryStatus.SENT and policy.success_on is SuccessOn.SENT:
        return StepOutcome.SENT
    return None


class _PageOutcomes:
    """A page's outcomes as they come back: committed in batches of up to
    FLUSH_ROWS, or every FLUSH_SECONDS, with a heartbeat per outcome, so that
    a crash loses little and a dead worker is noticed by heartbeat timeout."""

    FLUSH_ROWS = 50
    FLUSH_SECONDS = 1.0

    def __init__(self, activities: BulkActivities, bulk_id: str, final: bool) -> None:
        self._activities = activities
        self._bulk_id = bulk_id
        self._final = final
        self._buffer: list[store.DeliveryOutcome] = []
        # A bulk's rows are all its tenant's.
        self._tenant_id = ""
        self._flushed_at = time.monotonic()
        self._lock = asyncio.Lock()
        self.result = BulkPageResult()
        self._done = 0

    async def add(
        self,
        delivery: DeliveryRecord,
        result: ProviderAccepted | ProviderError | Reconciled,
        via: str = "",
    ) -> None:
        self._tenant_id = delivery.tenant_id
        outcome = self._outcome(delivery, result)
        if via and outcome.detail:
            outcome = dataclasses.replace(outcome, detail=f"{outcome.detail} (via {via})")
        self._buffer.append(outcome)
        self._done += 1
        activity.heartbeat(self._done)
        if (
            len(self._buffer) >= self.FLUSH_ROWS
            or time.monotonic() - self._flushed_at >= self.FLUSH_SECONDS
        ):
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            batch, self._buffer = self._buffer, []
            self._flushed_at = time.monotonic()
            if batch:
                await self._activities.record(self._bulk_id, self._tenant_id, batch)

    def _outcome(
        self, delivery: DeliveryRecord, result: ProviderAccepted | ProviderError | Reconciled
    ) -> store.DeliveryOutcome:
        ids = (delivery.delivery_id, delivery.notification_id)
        if isinstance(result, Reconciled) and result.adopted:
            result = result.adopted
        if isinstance(result, ProviderAccepted):
            self.result.handed_over += 1
            status = "delivered" if result.delivered else "sent"
            return store.DeliveryOutcome(*ids, "accepted", status, "", result.provider_message_id)
        settling = isinstance(result, Reconciled) and result.wait_seconds > 0
        if isinstance(result, Reconciled):
            detail, unknown, permanent = result.retry_reason, True, bool(result.fail_reason)
            reason, retrying = result.fail_reason, f"{OUTCOME_UNKNOWN}; retrying"
            self.result.retry_after = max(self.result.retry_after, result.wait_seconds)
        else:
            detail = (
                unknown_outcome_note(result.reason) if result.outcome_unknown else result.reason
            )
            unknown, permanent = result.outcome_unknown, result.permanent
            reason, retrying = result.reason, f"{result.reason}; retrying"
            self.result.retry_after = max(self.result.retry_after, result.retry_after or 0.0)
        # An attempt possibly still in flight is waited for, even on the
        # last round: failing it now could contradict what the call does.
        if permanent or (self._final and not settling):
            self.result.failed += 1
            if not permanent:
                reason = f"provider unavailable after {delivery.attempts + 1} attempts"
                if unknown:
                    reason = f"{reason}; {OUTCOME_UNKNOWN} of the last"
            return store.DeliveryOutcome(*ids, detail or reason, "failed", reason, None, unknown)
        self.result.retry_ids.append(delivery.delivery_id)
        return store.DeliveryOutcome(*ids, detail, "", retrying, None, unknown=unknown)
