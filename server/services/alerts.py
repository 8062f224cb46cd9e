"""Alert rules: the tenant's API (AlertRules) and the check the worker runs
for each rule (AlertChecks), which fires or resolves it and sends the alert
as an ordinary urgent notification of the tenant."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.workflows import AlertCheckResult, AlertRuleInput, DeliveryRef
from server.domain.alerts import (
    MAX_RULES,
    MAX_WINDOW_SECONDS,
    AlertEvent,
    EventKind,
    Measurement,
    Rule,
    RuleRequest,
    RuleSpec,
    RuleState,
    check_rule,
    measure,
    summary,
)
from server.domain.channels import POLICIES
from server.domain.errors import limit_reached, not_found
from server.domain.ids import looks_like_id, new_id
from server.domain.sending import SendRequest, plan_send
from server.domain.webhooks import EventType
from server.services.dispatch import Outbox, alert_rule_start, notification_start
from server.services.notifications import build_notification
from server.services.paging import (
    check_page_size,
    decode_page_token,
    decode_position,
    encode_page_token,
    encode_position,
)
from server.store import alerts as store
from server.store import notifications as notification_store
from server.store import tenants as tenant_store
from server.store.db import Database
from server.store.tenant_webhooks import NewEvent, emit_events

log = logging.getLogger(__name__)
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class RulePage:
    rules: list[Rule]
    next_page_token: str


@dataclass(frozen=True)
class EventPage:
    events: list[AlertEvent]
    next_page_token: str


class AlertRules:
    def __init__(self, db: Database, outbox: Outbox, check_seconds: float) -> None:
        self._db = db
        self._outbox = outbox
        self._check_seconds = check_seconds

    async def create(self, *, tenant_id: str, request: RuleRequest) -> Rule:
        spec = check_rule(request)
        now = datetime.now(UTC)
        rule_id = new_id("alr")
        checks = AlertRuleInput(rule_id, tenant_id, check_seconds=self._check_seconds)
        async with self._db.transaction() as session:
            # The tenant's row is locked, so concurrent creates count one at a time.
            await tenant_store.lock_tenant(session, tenant_id=tenant_id)
            if await store.count_rules(session, tenant_id=tenant_id) >= MAX_RULES:
                raise limit_reached(
                    "ALERT_RULE_LIMIT",
                    f"a tenant may have at most {MAX_RULES} alert rules; delete unused ones "
                    "with DELETE /api/v1/alert-rules/{rule_id}",
                )
            record = await store.insert_rule(
                session, rule_id=rule_id, tenant_id=tenant_id, spec=spec, now=now
            )
            # The checks' workflow start commits with the rule (the outbox).
            await self._outbox.add(session, [alert_rule_start(checks)])
        self._outbox.start_alert_rule_soon(checks)
        return record

    async def get(self, *, tenant_id: str, rule_id: str) -> Rule:
        async with self._db.transaction() as session:
            return await self._rule(session, tenant_id, rule_id)

    async def list_rules(self, *, tenant_id: str, page_size: int, page_token: str) -> RulePage:
        limit = check_page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        after = decode_page_token(page_token) if page_token else None
        async with self._db.transaction() as session:
            rules = await store.list_rules(
                session, tenant_id=tenant_id, after=after, limit=limit + 1
            )
        token = ""
        if len(rules) > limit:
            rules = rules[:limit]
            token = encode_page_token(rules[-1].created_at, rules[-1].rule_id)
        return RulePage(rules, token)

    async def delete(self, *, tenant_id: str, rule_id: str) -> Rule:
        if not looks_like_id("alr", rule_id):
            raise not_found("alert rule")
        async with self._db.transaction() as session:
            record = await store.delete_rule(session, tenant_id=tenant_id, rule_id=rule_id)
        if record is None:
            raise not_found("alert rule")
        await self._outbox.dispatcher.stop_alert_rule(rule_id)
        return record

    async def set_enabled(self, *, tenant_id: str, rule_id: str, enabled: bool) -> Rule:
        record = None
        if looks_like_id("alr", rule_id):
            async with self._db.transaction() as session:
                record = await store.set_enabled(
                    session, tenant_id=tenant_id, rule_id=rule_id, enabled=enabled
                )
        if record is None:
            raise not_found("alert rule")
        return record

    async def history(
        self, *, tenant_id: str, rule_id: str, page_size: int, page_token: str
    ) -> EventPage:
        limit = check_page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        before = None
        if page_token:
            (position,) = decode_position(page_token, _is_event_position)
            before = int(str(position))
        async with self._db.transaction() as session:
            await self._rule(session, tenant_id, rule_id)
            events = await store.list_events(
                session, tenant_id=tenant_id, rule_id=rule_id, before=before, limit=limit + 1
            )
        token = ""
        if len(events) > limit:
            events = events[:limit]
            token = encode_position([events[-1].event_id])
        return EventPage(events, token)

    async def _rule(self, session: AsyncSession, tenant_id: str, rule_id: str) -> Rule:
        record = None
        if looks_like_id("alr", rule_id):
            record = await store.get_rule(session, tenant_id=tenant_id, rule_id=rule_id)
        if record is None:
            raise not_found("alert rule")
        return record


def _is_event_position(position: list[object]) -> bool:
    return len(position) == 1 and isinstance(position[0], int) and position[0] > 0


async def forget_old_counts(db: Database) -> int:
    """Deletes alert counters older than the longest window (and a minute
    to spare); returns how many buckets went."""
    before = datetime.now(UTC) - timedelta(seconds=MAX_WINDOW_SECONDS + 60)
    async with db.transaction() as session:
        return await store.purge_counts(session, before=before)


@dataclass(frozen=True)
class _Notice:
    notification_id: str
    tenant_id: str
    deliveries: list[DeliveryRef]


class AlertChecks:
    """One check of one rule, run by its workflow's activity. The rule's row
    is locked for the check, so a retried or overlapping check sees the state
    the first one left: a rule fires once per breach."""

    def __init__(self, db: Database, outbox: Outbox) -> None:
        self._db = db
        self._outbox = outbox

    async def check(self, rule_id: str) -> AlertCheckResult:
        now = datetime.now(UTC)
        notice: _Notice | None = None
        async with self._db.transaction() as session:
            rule = await store.lock_rule(session, rule_id=rule_id)
            if rule is None:
                return AlertCheckResult(gone=True)
            if not rule.enabled:
                return AlertCheckResult(gone=False)
            counts = await store.window_counts(
                session, tenant_id=rule.tenant_id, spec=rule.spec, now=now
            )
            measured = measure(rule.spec, counts)
            firing = rule.state is RuleState.FIRING
            if measured.breached == firing:
                await store.set_checked(session, rule_id=rule_id, now=now)
            else:
                kind = EventKind.FIRED if measured.breached else EventKind.RESOLVED
                notice = await self._tell(session, rule, kind, measured, now)
                await store.set_checked(
                    session,
                    rule_id=rule_id,
                    now=now,
                    state=RuleState.FIRING if measured.breached else RuleState.OK,
                )
        if notice is not None:
            await self._outbox.start_notification_now(
                notification_id=notice.notification_id,
                tenant_id=notice.tenant_id,
                deliveries=notice.deliveries,
            )
        return AlertCheckResult(gone=False)

    async def _tell(
        self, session: AsyncSession, rule: Rule, kind: EventKind, m: Measurement,
        now: datetime,
    ) -> _Notice:  # fmt: skip
        """Stores the alert (or resolved notice) as the tenant's urgent
        notification, with its outbox row, the history entry and the
        alert.fired / alert.resolved webhook event, in the check's transaction."""
        text = summary(rule.spec, m)
        plan = plan_send(_notice_request(rule.spec, kind, text))
        row = build_notification(
            tenant_id=rule.tenant_id,
            content=plan.content,
            recipient=plan.recipient,
            data={},
            template=None,
        )
        await notification_store.insert_notifications(
            session, [row], now=now, starts=[notification_start(row.notification_id, urgent=True)]
        )
        await store.insert_event(
            session,
            rule_id=rule.rule_id,
            tenant_id=rule.tenant_id,
            kind=kind,
            measured=m.as_json(),
            summary=text,
            notification_id=row.notification_id,
            now=now,
        )
        await emit_events(
            session,
            [
                NewEvent(
                    tenant_id=rule.tenant_id,
                    type=EventType.ALERT_FIRED if m.breached else EventType.ALERT_RESOLVED,
                    data={
                        "rule_id": rule.rule_id, "name": rule.spec.name,
                        "kind": rule.spec.kind.value, "summary": text,
                        "notification_id": row.notification_id,
                        **{k: v for k, v in m.as_json().items() if k != "breached"},
                    },
                    occurred_at=now,
                    ordering_key=rule.rule_id,
                )
            ],
        )  # fmt: skip
        log.info("alert rule %s of %s %s: %s", rule.rule_id, rule.tenant_id, kind.value, text)
        return _Notice(
            row.notification_id,
            rule.tenant_id,
            [DeliveryRef(d.delivery_id, d.channel) for d in row.deliveries],
        )


def _notice_request(spec: RuleSpec, kind: EventKind, text: str) -> SendRequest:
    tag = "Clarion alert" if kind is EventKind.FIRED else "Clarion alert resolved"
    to = {"email": "", "phone": "", "slack_user_id": ""}
    to[POLICIES[spec.notify_channel].recipient_field] = spec.notify_to
    return SendRequest(
        channels=[spec.notify_channel.value],
        email=to["email"],
        phone=to["phone"],
        slack_user_id=to["slack_user_id"],
        subject=f"[{tag}] {spec.name}",
        body=text,
        priority="high",
    )
