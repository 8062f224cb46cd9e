"""Bulk delivery activities: a page of recipients per call, provider calls
concurrent within the page, outcomes written in batches. Idempotent: only
deliveries still queued without a provider message id are sent."""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import activity

from server.domain.rollout import RolloutPolicy
from server.domain.status import DeliveryStatus
from server.services.deliveries import guard_rollout
from server.store import bulks as store
from server.store.db import Database
from server.store.notifications import DeliveryRecord
from workflows.activities import outbound_message
from workflows.providers.base import Provider, ProviderAccepted, ProviderError

log = logging.getLogger(__name__)


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


class BulkActivities:
    def __init__(
        self,
        db: Database,
        providers: dict[str, Provider],
        webhook_base_url: str,
        rollout: RolloutPolicy,
        # Four pages in flight x 16 = 64 requests. By Little's law that
        # carries 330 sends/s at up to ~190 ms per provider call, which is
        # what Twilio-like APIs answer in (and what the sandbox does under load).
        concurrency: int = 16,
    ) -> None:
        self._db = db
        self._providers = providers
        self._callback_base = webhook_base_url.rstrip("/")
        self._concurrency = concurrency
        self._rollout = rollout

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

    async def _send(
        self, bulk_id: str, pending: list[DeliveryRecord], attempt: int, final: bool
    ) -> BulkPageResult:
        gate = asyncio.Semaphore(self._concurrency)

        async def call(delivery: DeliveryRecord) -> ProviderAccepted | ProviderError:
            async with gate:
                try:
                    return await self._providers[delivery.channel].send(
                        outbound_message(delivery, self._callback_base)
                    )
                except ProviderError as error:
                    return error

        started = time.monotonic()
        results = await asyncio.gather(*(call(d) for d in pending))
        sent_at = time.monotonic()
        activity.heartbeat()
        outcome = BulkPageResult()
        outcomes = []
        for delivery, result in zip(pending, results, strict=True):
            if isinstance(result, ProviderAccepted):
                outcome.handed_over += 1
                status = "delivered" if result.delivered else "sent"
                outcomes.append(
                    store.DeliveryOutcome(
                        delivery.delivery_id, delivery.notification_id, "accepted", status, "",
                        result.provider_message_id,
                    )
                )  # fmt: skip
            elif result.permanent or final:
                outcome.failed += 1
                reason = (
                    result.reason
                    if result.permanent
                    else f"provider unavailable after {delivery.attempts + 1} attempts"
                )
                outcomes.append(
                    store.DeliveryOutcome(
                        delivery.delivery_id, delivery.notification_id, result.reason,
                        "failed", reason, None,
                    )
                )  # fmt: skip
            else:
                outcome.retry_ids.append(delivery.delivery_id)
                outcome.retry_after = max(outcome.retry_after, result.retry_after or 0.0)
                outcomes.append(
                    store.DeliveryOutcome(
                        delivery.delivery_id, delivery.notification_id, result.reason, "",
                        f"{result.reason}; retrying", None,
                    )
                )  # fmt: skip
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            await store.record_outcomes(session, outcomes, now=now)
            # Final outcomes feed the template's rollout guard, as for single
            # sends: a bad new version must stop itself in a bulk too.
            final = any(o.status and DeliveryStatus(o.status).is_final for o in outcomes)
            origin = await store.bulk_template(session, bulk_id=bulk_id) if final else None
            if origin:
                await guard_rollout(
                    session, tenant_id=origin[0], template_id=origin[1], now=now,
                    policy=self._rollout,
                )  # fmt: skip
        log.info(
            "bulk batch of %d: provider calls %.1f s, recording %.1f s",
            len(pending), sent_at - started, time.monotonic() - sent_at,
        )  # fmt: skip
        return outcome
