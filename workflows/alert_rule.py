"""AlertRuleWorkflow: one per alert rule, for as long as the rule exists.
Checks the rule on a durable timer, so checks survive worker and server
restarts, and continues as new to keep its history short."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts.workflows import ALERT_RULE_WORKFLOW, AlertRuleInput
    from workflows.alert_activities import AlertActivities

# A failed check (database blip, worker lost) is retried; the next timer
# tick checks again anyway, so retries stay short.
_CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)


@workflow.defn(name=ALERT_RULE_WORKFLOW)
class AlertRuleWorkflow:
    @workflow.run
    async def run(self, rule: AlertRuleInput) -> None:
        for _ in range(rule.checks_per_run):
            await workflow.sleep(timedelta(seconds=rule.check_seconds))
            result = await workflow.execute_activity_method(
                AlertActivities.check_alert_rule,
                rule,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_CHECK_RETRY,
            )
            if result.gone:
                return
        workflow.continue_as_new(rule)
