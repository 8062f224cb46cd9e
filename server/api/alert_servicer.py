"""AlertService: proto ⇄ domain mapping only."""

from typing import TypeAlias

import grpc
from clarion.v1 import alert_service_pb2, alert_service_pb2_grpc

from server.api.auth import current_caller
from server.api.servicers import timestamp_message
from server.domain.alerts import AlertEvent, Rule, RuleRequest
from server.services.alerts import AlertRules
from server.services.audit import AuditLog

Context: TypeAlias = grpc.aio.ServicerContext


def rule_message(rule: Rule) -> alert_service_pb2.AlertRule:
    spec = rule.spec
    return alert_service_pb2.AlertRule(
        rule_id=rule.rule_id,
        name=spec.name,
        kind=spec.kind.value,
        channel=spec.channel,
        template_id=spec.template_id,
        threshold_percent=spec.threshold_percent,
        max_failures=spec.max_failures,
        window=spec.window,
        min_sends=spec.min_sends,
        notify=alert_service_pb2.AlertTarget(channel=spec.notify_channel.value, to=spec.notify_to),
        state=rule.state.value,
        state_changed_at=timestamp_message(rule.state_changed_at),
        last_evaluated_at=timestamp_message(rule.last_evaluated_at),
        created_at=timestamp_message(rule.created_at),
        enabled=rule.enabled,
    )


def event_message(event: AlertEvent) -> alert_service_pb2.AlertEvent:
    m = event.measured
    return alert_service_pb2.AlertEvent(
        kind=event.kind.value,
        occurred_at=timestamp_message(event.occurred_at),
        value=float(m["value"]),
        failed=int(m["failed"]),
        finished=int(m["finished"]),
        handed_over=int(m["handed_over"]),
        receipts=int(m["receipts"]),
        summary=event.summary,
        notification_id=event.notification_id,
    )


class AlertServicer(alert_service_pb2_grpc.AlertServiceServicer):
    def __init__(self, rules: AlertRules, audit: AuditLog) -> None:
        self._rules = rules
        self._audit = audit

    async def _audited(self, action: str, rule: Rule) -> alert_service_pb2.AlertRule:
        await self._audit.record(
            current_caller().actor, action, rule.rule_id, rule.spec.name or rule.spec.kind.value
        )
        return rule_message(rule)

    async def CreateAlertRule(
        self, request: alert_service_pb2.CreateAlertRuleRequest, context: Context
    ) -> alert_service_pb2.AlertRule:
        rule = await self._rules.create(
            tenant_id=current_caller().tenant_id,
            request=RuleRequest(
                kind=request.kind,
                window=request.window,
                notify_channel=request.notify.channel,
                notify_to=request.notify.to,
                name=request.name,
                channel=request.channel,
                template_id=request.template_id,
                threshold_percent=request.threshold_percent,
                max_failures=request.max_failures,
                min_sends=request.min_sends,
            ),
        )
        await self._audit.record(
            current_caller().actor,
            "alert_rule.created",
            rule.rule_id,
            f"{rule.spec.name or rule.spec.kind.value}, notifying {rule.spec.notify_to}",
        )
        return rule_message(rule)

    async def ListAlertRules(
        self, request: alert_service_pb2.ListAlertRulesRequest, context: Context
    ) -> alert_service_pb2.ListAlertRulesResponse:
        page = await self._rules.list_rules(
            tenant_id=current_caller().tenant_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return alert_service_pb2.ListAlertRulesResponse(
            rules=[rule_message(r) for r in page.rules], next_page_token=page.next_page_token
        )

    async def GetAlertRule(
        self, request: alert_service_pb2.GetAlertRuleRequest, context: Context
    ) -> alert_service_pb2.AlertRule:
        rule = await self._rules.get(tenant_id=current_caller().tenant_id, rule_id=request.rule_id)
        return rule_message(rule)

    async def DeleteAlertRule(
        self, request: alert_service_pb2.DeleteAlertRuleRequest, context: Context
    ) -> alert_service_pb2.AlertRule:
        rule = await self._rules.delete(
            tenant_id=current_caller().tenant_id, rule_id=request.rule_id
        )
        return await self._audited("alert_rule.deleted", rule)

    async def DisableAlertRule(
        self, request: alert_service_pb2.DisableAlertRuleRequest, context: Context
    ) -> alert_service_pb2.AlertRule:
        rule = await self._rules.set_enabled(
            tenant_id=current_caller().tenant_id, rule_id=request.rule_id, enabled=False
        )
        return await self._audited("alert_rule.disabled", rule)

    async def EnableAlertRule(
        self, request: alert_service_pb2.EnableAlertRuleRequest, context: Context
    ) -> alert_service_pb2.AlertRule:
        rule = await self._rules.set_enabled(
            tenant_id=current_caller().tenant_id, rule_id=request.rule_id, enabled=True
        )
        return await self._audited("alert_rule.enabled", rule)

    async def ListAlertEvents(
        self, request: alert_service_pb2.ListAlertEventsRequest, context: Context
    ) -> alert_service_pb2.ListAlertEventsResponse:
        page = await self._rules.history(
            tenant_id=current_caller().tenant_id,
            rule_id=request.rule_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return alert_service_pb2.ListAlertEventsResponse(
            events=[event_message(e) for e in page.events], next_page_token=page.next_page_token
        )
