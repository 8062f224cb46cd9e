"""The worker's telemetry: each activity's wait on the task queue, and the
Temporal SDK's own metrics (workflow task schedule-to-start, slots, polls)."""

from typing import Any

from temporalio import activity
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from server import metrics


class ScheduleToStartInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ScheduleToStart(next)


class _ScheduleToStart(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        waited = (info.started_time - info.current_attempt_scheduled_time).total_seconds()
        metrics.SCHEDULE_TO_START_SECONDS.labels(
            info.activity_type, "true" if info.is_local else "false"
        ).observe(max(waited, 0.0))
        return await super().execute_activity(input)


def sdk_runtime(port: int) -> Runtime | None:
    """A Temporal runtime serving the SDK's metrics (`temporal_*`, in
    seconds) on 127.0.0.1:port; None (the default runtime, no metrics) for 0."""
    if not port:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"127.0.0.1:{port}",
                counters_total_suffix=True,
                durations_as_seconds=True,
            )
        )
    )
