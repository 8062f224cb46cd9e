"""The activity that checks one alert rule (services.alerts.AlertChecks)."""

from temporalio import activity

from contracts.workflows import AlertCheckResult, AlertRuleInput
from server.services.alerts import AlertChecks


class AlertActivities:
    def __init__(self, checks: AlertChecks) -> None:
        self._checks = checks

    @activity.defn(name="check_alert_rule")
    async def check_alert_rule(self, rule: AlertRuleInput) -> AlertCheckResult:
        return await self._checks.check(rule.rule_id)
