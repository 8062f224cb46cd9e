"""Moving a delivery's status, for the worker and for provider receipts alike,
with the template rollout guard that final outcomes feed."""

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.rollout import RolloutPolicy, stop_reason
from server.domain.status import DeliveryStatus
from server.store import notifications as store
from server.store import templates as template_store

log = logging.getLogger(__name__)


async def move_delivery(
    session: AsyncSession,
    *,
    delivery_id: str,
    status: DeliveryStatus,
    reason: str,
    now: datetime,
    rollout: RolloutPolicy,
) -> bool:
    """Moves the delivery forward (see store.advance_delivery). A final status
    of a templated notification also checks its template's rollout."""
    moved = await store.advance_delivery(
        session, delivery_id=delivery_id, status=status, reason=reason, now=now
    )
    if moved and status.is_final:
        await _guard_rollout(session, delivery_id=delivery_id, now=now, policy=rollout)
    return moved


async def _guard_rollout(
    session: AsyncSession, *, delivery_id: str, now: datetime, policy: RolloutPolicy
) -> None:
    origin = await store.template_of_delivery(session, delivery_id=delivery_id)
    if origin is None:
        return
    tenant_id, template_id = origin
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
