"""Channel fallback routing: the tenant's default policy, and moving a
routed notification from one step to the next for its workflow."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.policies import RolloutPolicy
from server.domain.errors import not_found
from server.domain.ids import new_id
from server.domain.routing import RoutingPolicy, RoutingRequest, StepOutcome, check_routing
from server.domain.status import DeliveryStatus
from server.services.deliveries import move_delivery
from server.store import notifications as notification_store
from server.store import routing as store
from server.store.db import Database
from server.store.routing import RoutingStepRecord


@dataclass(frozen=True)
class DefaultRouting:
    policy: RoutingPolicy
    updated_at: datetime


class RoutingDefaults:
    """The default routing of each tenant, for high-priority sends."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, *, tenant_id: str) -> DefaultRouting:
        async with self._db.transaction() as session:
            record = await store.get_default(session, tenant_id=tenant_id)
        if record is None:
            raise not_found("default routing")
        return DefaultRouting(RoutingPolicy.from_json(record.policy), record.updated_at)

    async def put(self, *, tenant_id: str, routing: RoutingRequest) -> DefaultRouting:
        policy = check_routing(routing, "routing")
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            await store.set_default(session, tenant_id=tenant_id, policy=policy.as_json(), now=now)
        return DefaultRouting(policy, now)

    @staticmethod
    async def load(session: AsyncSession, *, tenant_id: str) -> RoutingPolicy | None:
        record = await store.get_default(session, tenant_id=tenant_id)
        return RoutingPolicy.from_json(record.policy) if record else None


@dataclass(frozen=True)
class NextStep:
    delivery_id: str
    channel: str


async def advance_routing(
    session: AsyncSession,
    *,
    notification_id: str,
    position: int,
    outcome: StepOutcome,
    reason: str,
    start_next: bool,
    rollout: RolloutPolicy,
) -> NextStep | None:
    """Records step `position`'s outcome and, with `start_next`, creates the
    next step's delivery, in one transaction so the notification never
    looks failed in between. Safe to repeat: a recorded step stays as it is."""
    now = datetime.now(UTC)
    steps = await _locked_steps(session, notification_id)
    step = steps[position]
    if step.outcome is StepOutcome.TRYING and step.delivery_id:
        reason = await _record_outcome(session, step, outcome, reason, now, rollout)
        await store.finish_step(
            session, notification_id=notification_id, position=position, outcome=outcome,
            reason=reason, now=now,
        )  # fmt: skip
        if outcome.is_success:
            await store.skip_pending(
                session,
                notification_id=notification_id,
                reason=f"step {position + 1} ({step.channel}) succeeded",
                now=now,
            )
    following: NextStep | None = None
    if start_next and position + 1 < len(steps):
        upcoming = steps[position + 1]
        if upcoming.delivery_id is None:
            upcoming.delivery_id = new_id("dlv")
            await store.insert_step_delivery(
                session,
                step=upcoming,
                delivery_id=upcoming.delivery_id,
                position=sum(1 for s in steps if s.delivery_id) - 1,
                now=now,
            )
        following = NextStep(upcoming.delivery_id, upcoming.channel)
    await notification_store.roll_up_notifications(
        session, notification_ids={notification_id}, now=now
    )
    return following


async def _locked_steps(session: AsyncSession, notification_id: str) -> list[RoutingStepRecord]:
    # The notification's lock first, in the order every status writer takes it.
    steps = (await store.steps_of(session, notification_ids=[notification_id]))[notification_id]
    first = next(s.delivery_id for s in steps if s.delivery_id)
    await notification_store.lock_notifications(session, delivery_ids=[first])
    return (await store.steps_of(session, notification_ids=[notification_id], for_update=True))[
        notification_id
    ]


async def _record_outcome(
    session: AsyncSession,
    step: RoutingStepRecord,
    outcome: StepOutcome,
    reason: str,
    now: datetime,
    rollout: RolloutPolicy,
) -> str:
    """Puts the step's outcome on its delivery; returns the step's reason."""
    assert step.delivery_id is not None
    delivery = await notification_store.get_delivery(session, delivery_id=step.delivery_id)
    assert delivery is not None
    if outcome is StepOutcome.FAILED:
        reason = (
            reason
            or (delivery.reason if delivery.status is DeliveryStatus.FAILED else "")
            or f"provider unavailable after {delivery.attempts} attempts"
        )
        if not delivery.status.is_final:
            await move_delivery(
                session, delivery_id=delivery.delivery_id, status=DeliveryStatus.FAILED,
                reason=reason, now=now, rollout=rollout,
            )  # fmt: skip
    elif outcome is StepOutcome.TIMED_OUT:
        await notification_store.add_delivery_note(
            session, delivery_id=delivery.delivery_id, reason=reason, now=now
        )
    elif outcome is StepOutcome.SENT:
        reason = "accepted by the provider (success_on sent)"
    return reason
