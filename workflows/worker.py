"""The Temporal worker: runs NotificationWorkflow and the delivery activities."""

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from providers.registry import build_providers
from server import metrics, tracing
from server.log_redaction import configure_logging
from server.main import dispatcher_for
from server.process_exit import run_then_exit
from server.services.alerts import AlertChecks
from server.services.dispatch import Outbox
from server.settings import Settings
from server.store.db import Database, create_engine
from workflows.activities import DeliveryActivities, TemplateActivities
from workflows.alert_activities import AlertActivities
from workflows.alert_rule import AlertRuleWorkflow
from workflows.breaker import BreakerPolicy, Breakers
from workflows.bulk import BulkSendWorkflow
from workflows.bulk_activities import BulkActivities
from workflows.drain import MAX_DRAIN_SECONDS
from workflows.failover import Carrier, Failover
from workflows.notification import NotificationWorkflow
from workflows.telemetry import ScheduleToStartInterceptor, sdk_runtime
from workflows.template_approval import TemplateApprovalWorkflow

log = logging.getLogger("clarion.worker")
WORKFLOW_TASK_SLOTS = 16


def drain_timeout(settings: Settings) -> timedelta:
    """Long enough for one provider call (the send's start-to-close timeout),
    so a drain never cuts a call the provider may already have accepted.
    Bulk pages that run longer are cancelled, and resume from their progress."""
    return timedelta(seconds=min(settings.provider_timeout_seconds + 5, MAX_DRAIN_SECONDS))


def create_worker(
    settings: Settings, client: Client, db: Database, cleanup: AsyncExitStack
) -> Worker:
    providers = build_providers(
        settings, timeout=settings.provider_timeout_seconds, cleanup=cleanup
    )
    breakers = Breakers(
        db,
        BreakerPolicy(
            threshold=settings.breaker_threshold,
            cooldown=timedelta(seconds=settings.breaker_cooldown_seconds),
            # A probe is lost once its call could no longer be running.
            probe_timeout=timedelta(seconds=settings.provider_timeout_seconds + 5),
        ),
    )
    chains = {
        channel: [Carrier(name, provider) for name, provider in named.items()]
        for channel, named in providers.by_channel.items()
    }
    failover = Failover(chains, breakers)
    # A provider call ends within its timeout; a bulk row may also wait one
    # wave for a free slot after its mark. Younger marks may still be running.
    settle_after = timedelta(seconds=2 * settings.provider_timeout_seconds + 5)
    activities = DeliveryActivities(db, failover, settings.rollout_policy(), settle_after)
    templates = TemplateActivities(db, providers.whatsapp)
    bulk = BulkActivities(db, failover, settings.rollout_policy(), settle_after)
    alerts = AlertActivities(AlertChecks(db, Outbox(db, dispatcher_for(settings, client))))
    return Worker(
        client,
        task_queue=settings.task_queue,
        interceptors=[ScheduleToStartInterceptor()],
        workflows=[
            NotificationWorkflow,
            TemplateApprovalWorkflow,
            BulkSendWorkflow,
            AlertRuleWorkflow,
        ],
        # Re-importing modules into every workflow's sandbox cost a third of the
        # worker's CPU (py-spy); the sandbox's call restrictions still apply.
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
        ),
        activities=[
            activities.send_delivery,
            activities.record_failure,
            activities.record_missing_receipt,
            activities.advance_routing,
            templates.submit_whatsapp_template,
            bulk.send_bulk_page,
            bulk.send_bulk_retries,
            bulk.finish_bulk,
            bulk.settle_bulk_step,
            alerts.check_alert_rule,
        ],
        max_concurrent_activities=200,
        # Tasks a worker has taken wait for its CPU in arrival order, past
        # Temporal's fair, prioritised matching. Few slots keep that wait
        # short (Little's law); a provider call takes milliseconds, so 16
        # still outrun the CPU. See docs/architecture.md, "Fairness".
        max_concurrent_workflow_tasks=WORKFLOW_TASK_SLOTS,
        max_concurrent_local_activities=WORKFLOW_TASK_SLOTS,
        # An eager activity skips matching, and so priority and fairness.
        disable_eager_activity_execution=True,
        # On SIGTERM: stop polling, let running activities (local ones
        # inside workflow tasks too) finish, then cancel what is left.
        graceful_shutdown_timeout=drain_timeout(settings),
    )


async def run(settings: Settings) -> None:
    settings.require_real_provider_secrets()
    if not settings.database_url:
        raise SystemExit("DATABASE_URL is not set; `make run` sets it for the embedded server")
    metrics.configure_tenant_labels(settings.metrics_tenant_labels)
    db = Database(create_engine(settings.database_url))
    tracing.configure_tracing("clarion-worker", settings.otlp_endpoint)
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        runtime=sdk_runtime(settings.worker_sdk_metrics_port),
        # Continues each workflow's trace (its headers) into the workflow and
        # its activities; the worker takes client interceptors as its own.
        interceptors=[TracingInterceptor()] if tracing.enabled() else [],
    )
    metrics.serve_metrics(settings.worker_metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as cleanup:
        async with create_worker(settings, client, db, cleanup):
            log.info("worker polling task queue %s", settings.task_queue)
            await stop.wait()
            log.info(
                "worker draining: no new tasks; waiting up to %g s for running activities",
                drain_timeout(settings).total_seconds(),
            )
    log.info("worker drained; exiting")
    await db.close()


def main() -> None:
    configure_logging()
    run_then_exit(run(Settings()))


if __name__ == "__main__":
    main()
