"""Wires settings → database → services → servicers → grpc.aio server, and
the callbacks process: the same services behind a plain HTTP receiver.

    python -m server              # the gRPC API
    python -m server callbacks    # provider webhooks over HTTP
    python -m server webhooks     # tenants' status webhooks: the sender
    python -m server admin …      # operators: a tenant's limits, quota, suspension"""

import argparse
import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import grpc
from aiohttp import web
from clarion.v1 import (
    alert_service_pb2,
    alert_service_pb2_grpc,
    channel_service_pb2,
    channel_service_pb2_grpc,
    notification_service_pb2,
    notification_service_pb2_grpc,
    portal_service_pb2,
    portal_service_pb2_grpc,
    team_service_pb2,
    team_service_pb2_grpc,
    template_service_pb2,
    template_service_pb2_grpc,
    tenant_service_pb2,
    tenant_service_pb2_grpc,
    webhook_service_pb2,
    webhook_service_pb2_grpc,
)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

from providers.registry import webhook_handlers
from server import metrics, tracing
from server.api.alert_servicer import AlertServicer
from server.api.auth import ApiInterceptor, ApiKeyAuthenticator, Identifier
from server.api.callbacks import callback_app
from server.api.portal_servicer import PortalServicer
from server.api.servicers import ChannelServicer, NotificationServicer, TenantServicer
from server.api.team_servicer import TeamServicer
from server.api.template_servicer import TemplateServicer
from server.api.webhook_servicer import WebhookServicer
from server.domain.body_limits import MAX_GRPC_MESSAGE_BYTES
from server.domain.credentials import PasswordWork
from server.domain.errors import ClarionError
from server.log_redaction import configure_logging
from server.process_exit import run_then_exit
from server.services.accounts import Accounts
from server.services.alerts import AlertRules, forget_old_counts
from server.services.audit import AuditLog
from server.services.bulk import BulkSends
from server.services.deliveries import note_missing_receipts
from server.services.dispatch import Dispatcher, Outbox
from server.services.idempotency import Idempotency
from server.services.limits import Limiter
from server.services.notifications import Notifications
from server.services.portal import Portal, forget_ended
from server.services.receipts import Receipts
from server.services.sandbox_inbox import SandboxInbox
from server.services.stats import DeliveryStats
from server.services.team import Team
from server.services.templates import Templates
from server.services.webhook_sender import serve_webhooks
from server.services.webhooks import Webhooks
from server.settings import Settings
from server.store.db import Database, create_engine
from server.store.outbox import pending_by_kind

log = logging.getLogger("clarion.server")

SERVICE_NAMES = [
    notification_service_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name,
    channel_service_pb2.DESCRIPTOR.services_by_name["ChannelService"].full_name,
    tenant_service_pb2.DESCRIPTOR.services_by_name["TenantService"].full_name,
    template_service_pb2.DESCRIPTOR.services_by_name["TemplateService"].full_name,
    portal_service_pb2.DESCRIPTOR.services_by_name["PortalService"].full_name,
    webhook_service_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name,
    alert_service_pb2.DESCRIPTOR.services_by_name["AlertService"].full_name,
    team_service_pb2.DESCRIPTOR.services_by_name["TeamService"].full_name,
]


async def create_server(
    settings: Settings, db: Database, temporal: Client, address: str
) -> tuple[grpc.aio.Server, int]:
    """Builds the server and binds it; returns it with the bound port (address
    may end in :0)."""
    outbox = Outbox(db, dispatcher_for(settings, temporal))
    limiter = Limiter(db, settings.default_limits())
    passwords = PasswordWork()
    accounts = Accounts(db, passwords)
    portal = Portal(db, passwords, limiter.defaults)
    authenticator = ApiKeyAuthenticator(accounts, settings.api_key_cache_seconds, limiter.defaults)
    identifier = Identifier(authenticator, portal)
    server = grpc.aio.server(
        interceptors=[
            # Outermost, so its span covers authentication and limits too.
            *([tracing.GrpcTracingInterceptor()] if tracing.enabled() else []),
            ApiInterceptor(identifier, limiter, settings.database_limits().request_seconds),
        ],
        options=[
            ("grpc.so_reuseport", 1),
            # Above what Envoy lets through, so that Envoy's 413 is the answer.
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
        ],
    )
    templates = Templates(db, outbox, settings.rollout_policy())
    idempotency = Idempotency(db, settings.idempotency_policy())
    notifications = Notifications(db, outbox, templates, idempotency)
    audit = AuditLog(db)
    notification_service_pb2_grpc.add_NotificationServiceServicer_to_server(
        NotificationServicer(
            notifications,
            BulkSends(db, outbox, templates, idempotency),
            audit,
            DeliveryStats(db),
        ),
        server,
    )
    template_service_pb2_grpc.add_TemplateServiceServicer_to_server(
        TemplateServicer(templates, audit), server
    )
    channel_service_pb2_grpc.add_ChannelServiceServicer_to_server(ChannelServicer(), server)
    alert_service_pb2_grpc.add_AlertServiceServicer_to_server(
        AlertServicer(AlertRules(db, outbox, settings.alert_check_seconds), audit), server
    )
    tenant_service_pb2_grpc.add_TenantServiceServicer_to_server(
        TenantServicer(accounts, limiter), server
    )
    inbox = SandboxInbox(db, settings.sandbox_api_url())
    portal_service_pb2_grpc.add_PortalServiceServicer_to_server(
        PortalServicer(portal, inbox), server
    )
    team_service_pb2_grpc.add_TeamServiceServicer_to_server(
        TeamServicer(Team(db, notifications, settings.portal_url()), audit), server
    )
    webhook_service_pb2_grpc.add_WebhookServiceServicer_to_server(
        WebhookServicer(Webhooks(db, allow_private=settings.allow_private_webhooks), audit), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in [*SERVICE_NAMES, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [
            *SERVICE_NAMES,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    port = server.add_insecure_port(address)
    return server, port


async def repeat(what: str, job: Callable[[], Awaitable[int]], every_seconds: float = 3600) -> None:
    """Runs `job` (which returns how many rows it handled) now and then every
    `every_seconds`. Every API server runs each; the jobs are idempotent or
    skip locked rows, so several at once are harmless."""
    while True:
        try:
            handled = await job()
            if handled:
                log.info("%s: %d", what, handled)
        except Exception:
            log.exception("%s failed; retrying in %g s", what, every_seconds)
        await asyncio.sleep(every_seconds)


def dispatcher_for(settings: Settings, temporal: Client) -> Dispatcher:
    return Dispatcher(
        temporal,
        settings.task_queue,
        settings.delivery_policy(),
        rpc_timeout=timedelta(seconds=settings.temporal_rpc_timeout_seconds),
    )


async def start_pending_workflows(outbox: Outbox, every: float, recheck: float) -> None:
    """Starts workflows that were stored but not started (outbox sweeper),
    and those Temporal may have lost. Every API server runs one; leases and
    SKIP LOCKED keep them off each other's rows."""
    while True:
        await asyncio.sleep(every)
        try:
            started = await outbox.sweep(
                older_than=timedelta(seconds=every), recheck_after=timedelta(seconds=recheck)
            )
            if started:
                log.warning("started %d workflows left pending", started)
        except ClarionError as error:
            log.warning("outbox sweep skipped: %s", error.reason)
        except Exception:
            log.exception("starting pending workflows failed; retrying")


async def outbox_depth(db: Database) -> list[tuple[str, int, float]]:
    async with db.transaction() as session:
        return await pending_by_kind(session, now=datetime.now(UTC))


def create_callback_app(settings: Settings, db: Database, temporal: Client) -> web.Application:
    return callback_app(
        Receipts(
            db,
            dispatcher_for(settings, temporal),
            webhook_handlers(settings),
            settings.rollout_policy(),
        )
    )


async def serve(settings: Settings, role: str) -> None:
    settings.require_real_provider_secrets()
    if not settings.database_url:
        raise SystemExit("DATABASE_URL is not set; `make run` sets it for the embedded server")
    metrics.configure_tenant_labels(settings.metrics_tenant_labels)
    tracing.configure_tracing(f"clarion-{role}", settings.otlp_endpoint)
    limits = settings.database_limits()
    db = Database(create_engine(settings.database_url, limits=limits), limits)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if role == "webhooks":
            # Needs no Temporal: its work is all in PostgreSQL.
            await serve_webhooks(settings, db, stop)
            return
        temporal = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            # Carries the trace into each workflow's headers when tracing is on.
            interceptors=[TracingInterceptor()] if tracing.enabled() else [],
        )
        if role == "callbacks":
            await _serve_callbacks(settings, db, temporal, stop)
        else:
            await _serve_api(settings, db, temporal, stop)
    finally:
        await db.close()


def _freeze_startup_objects() -> None:
    # Everything allocated so far (modules, descriptors, the engine) lives as
    # long as the process. Frozen, it is no longer walked by full collections,
    # which took 75-130 ms each, about once a second, during a bulk upload
    # (gc.callbacks probe), stalling every request in flight.
    gc.freeze()


async def _serve_api(
    settings: Settings, db: Database, temporal: Client, stop: asyncio.Event
) -> None:
    server, port = await create_server(settings, db, temporal, settings.grpc_address)
    await server.start()
    metrics.serve_metrics(
        settings.api_metrics_port,
        [
            metrics.QueueCollector(
                metrics.OUTBOX, asyncio.get_running_loop(), partial(outbox_depth, db)
            )
        ],
    )
    _freeze_startup_objects()
    log.info("gRPC API listening on %s:%d", settings.grpc_host, port)
    idempotency = Idempotency(db, settings.idempotency_policy())
    purges = [
        asyncio.create_task(repeat("purged expired idempotency keys", idempotency.forget_expired)),
        asyncio.create_task(
            repeat("purged alert counters past every window", partial(forget_old_counts, db))
        ),
        asyncio.create_task(
            repeat("purged ended portal sessions and login buckets", partial(forget_ended, db))
        ),
        asyncio.create_task(
            repeat(
                "noted sent deliveries without a receipt",
                partial(note_missing_receipts, db, waited_seconds=settings.receipt_timeout_seconds),
                settings.receipt_sweep_seconds,
            )
        ),
    ]
    sweeper = asyncio.create_task(
        start_pending_workflows(
            Outbox(db, dispatcher_for(settings, temporal)),
            settings.dispatch_sweep_seconds,
            settings.workflow_recheck_seconds,
        )
    )
    await stop.wait()
    for purge in purges:
        purge.cancel()
    sweeper.cancel()
    # Let in-flight requests finish.
    await server.stop(grace=5)


async def _serve_callbacks(
    settings: Settings, db: Database, temporal: Client, stop: asyncio.Event
) -> None:
    runner = web.AppRunner(
        create_callback_app(settings, db, temporal), access_log=None, shutdown_timeout=5
    )
    await runner.setup()
    await web.TCPSite(runner, settings.grpc_host, settings.callbacks_port).start()
    metrics.serve_metrics(settings.callbacks_metrics_port)
    _freeze_startup_objects()
    log.info(
        "provider callbacks listening on http://%s:%d", settings.grpc_host, settings.callbacks_port
    )
    await stop.wait()
    # Stops accepting, then lets in-flight callbacks finish.
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m server")
    parser.add_argument(
        "role",
        nargs="?",
        default="api",
        choices=["api", "callbacks", "webhooks"],
        help="api: the gRPC API (default); callbacks: provider webhooks over HTTP; "
        "webhooks: sends tenants' status webhooks "
        "(operator commands: python -m server admin --help)",
    )
    role = parser.parse_args().role
    configure_logging()
    run_then_exit(serve(Settings(), role))


if __name__ == "__main__":
    main()
