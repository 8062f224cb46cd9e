"""Moving a delivery's status, for the worker and for provider receipts alike,
with the template rollout guard that final outcomes feed."""

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.policies import RolloutPolicy
from server import metrics
from server.domain.rollout import stop_reason
from server.domain.status import DeliveryStatus
from server.store import notifications as store
from server.store import templates as template_store
from server.store.db import Database
from server.store.notifications import MoveResult, StatusMove
from server.store.tenant_webhooks import DeliveryChange, DeliveryDetails, emit_delivery_changes

log = logging.getLogger(__name__)


async def move_deliveries(
    session: AsyncSession,
    moves: list[StatusMove],
    *,
    now: datetime,
    rollout: RolloutPolicy,
    receipts: bool = False,
    locked: bool = False,
) -> list[MoveResult]:
    """Moves deliveries forward (see store.advance_deliveries; `locked`: the
    caller holds the notifications' locks already). Final
    statuses of templated notifications then check their template's rollout,
    once per template. Every move is counted for alert rules (by the write
    itself), as a provider receipt when `receipts`."""
    results = await store.advance_deliveries(
        session, moves, now=now, locked=locked, receipts=receipts
    )
    await emit_delivery_changes(
        session,
        [
            DeliveryChange(
                r.tenant_id,
                r.move.delivery_id,
                r.move.status,
                r.move.reason,
                DeliveryDetails(r.notification_id, r.channel, r.provider, r.bulk_id, r.row_index),
            )
            for r in results
            if r.moved and r.listened
        ],
        now=now,
    )
    for r in results:
        if r.moved:
            reached = metrics.DELIVERIES.labels(
                r.channel,
                metrics.provider_label(r.provider),
                r.move.status.value,
                metrics.tenant_label(r.tenant_id),
            )
            metrics.count_on_commit(session, reached)
    templates = {
        (r.tenant_id, r.template_id)
        for r in results
        if r.moved and r.move.status.is_final and r.template_id
    }
    for tenant_id, template_id in sorted(templates):
        await guard_rollout(
            session, tenant_id=tenant_id, template_id=template_id, now=now, policy=rollout
        )
    return results


async def move_delivery(
    session: AsyncSession,
    *,
    delivery_id: str,
    status: DeliveryStatus,
    reason: str,
    now: datetime,
    rollout: RolloutPolicy,
    locked: bool = False,
) -> bool:
    """One delivery's move; True if it was a step forward."""
    results = await move_deliveries(
        session, [StatusMove(delivery_id, status, reason)], now=now, rollout=rollout, locked=locked
    )
    return any(r.moved for r in results)


async def guard_rollout(
    session: AsyncSession, *, tenant_id: str, template_id: str, now: datetime, policy: RolloutPolicy
) -> None:
    """Stops the template's running rollout if its new version fails more
    often than the active one (see domain.rollout.stop_reason)."""
    template = await template_store.get_template(
        session, tenant_id=tenant_id, template_id=template_id, for_update=True
    )
    if (
        template is None
        or template.rollout_state != "running"
        or template.rollout_version is None
        or template.rollout_started_at is None
    ):
        return
    outcomes = await template_store.rollout_outcomes(
        session, tenant_id=tenant_id, template_id=template_id, since=template.rollout_started_at
    )
    empty = template_store.VersionOutcomes(0, 0)
    candidate = outcomes.get(template.rollout_version, empty)
    active = outcomes.get(template.active_version, empty)
    reason = stop_reason(
        policy,
        candidate_version=template.rollout_version,
        candidate_final=candidate.final,
        candidate_failed=candidate.failed,
        active_version=template.active_version,
        active_final=active.final,
        active_failed=active.failed,
    )
    if reason:
        log.warning("stopping rollout of %s for %s: %s", template_id, tenant_id, reason)
        await template_store.update_template(
            session,
            tenant_id=tenant_id,
            template_id=template_id,
            now=now,
            rollout_state="stopped",
            rollout_stopped_reason=reason,
        )


async def note_missing_receipts(db: Database, *, waited_seconds: float, batch: int = 500) -> int:
    """Notes every sent delivery whose provider receipt is `waited_seconds`
    late, a batch per statement; returns how many. The workflows do not wait
    for receipts (see NotificationWorkflow), so this sweep is what notes them."""
    total = 0
    while True:
        async with db.transaction(one_statement=True) as session:
            noted = await store.note_missing_receipts(
                session, waited_seconds=waited_seconds, now=datetime.now(UTC), batch=batch
            )
        total += noted
        if noted < batch:
            return total
