"""WebhookService: proto ⇄ domain mapping only."""

from typing import TypeAlias

import grpc
from clarion.v1 import webhook_service_pb2, webhook_service_pb2_grpc

from server.api.auth import current_caller
from server.api.servicers import timestamp_message
from server.services.audit import AuditLog
from server.services.webhooks import AttemptView, Webhooks, WebhookView

Context: TypeAlias = grpc.aio.ServicerContext


def webhook_message(view: WebhookView) -> webhook_service_pb2.Webhook:
    return webhook_service_pb2.Webhook(
        webhook_id=view.webhook_id,
        url=view.url,
        description=view.description,
        event_types=view.event_types,
        created_at=timestamp_message(view.created_at),
        enabled=view.disabled_at is None,
        disabled_at=timestamp_message(view.disabled_at),
        disabled_reason=view.disabled_reason,
        previous_secret_expires_at=timestamp_message(view.previous_secret_expires_at),
    )


def _attempt_message(view: AttemptView) -> webhook_service_pb2.WebhookAttempt:
    return webhook_service_pb2.WebhookAttempt(
        event_id=view.event_id,
        event_type=view.event_type,
        attempt=view.attempt,
        attempted_at=timestamp_message(view.attempted_at),
        http_status=view.http_status or 0,
        error=view.error,
        duration_ms=view.duration_ms,
        next_retry_at=timestamp_message(view.next_retry_at),
    )


class WebhookServicer(webhook_service_pb2_grpc.WebhookServiceServicer):
    def __init__(self, webhooks: Webhooks, audit: AuditLog) -> None:
        self._webhooks = webhooks
        self._audit = audit

    async def CreateWebhook(
        self, request: webhook_service_pb2.CreateWebhookRequest, context: Context
    ) -> webhook_service_pb2.CreateWebhookResponse:
        created = await self._webhooks.create(
            tenant_id=current_caller().tenant_id,
            url=request.url,
            event_types=list(request.event_types),
            description=request.description,
        )
        await self._audit.record(
            current_caller().actor,
            "webhook.created",
            created.webhook.webhook_id,
            f"{created.webhook.url} for {', '.join(created.webhook.event_types)}",
        )
        return webhook_service_pb2.CreateWebhookResponse(
            webhook=webhook_message(created.webhook), secret=created.secret
        )

    async def ListWebhooks(
        self, request: webhook_service_pb2.ListWebhooksRequest, context: Context
    ) -> webhook_service_pb2.ListWebhooksResponse:
        views, token = await self._webhooks.list_webhooks(
            tenant_id=current_caller().tenant_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return webhook_service_pb2.ListWebhooksResponse(
            webhooks=[webhook_message(v) for v in views], next_page_token=token
        )

    async def GetWebhook(
        self, request: webhook_service_pb2.GetWebhookRequest, context: Context
    ) -> webhook_service_pb2.Webhook:
        view = await self._webhooks.get(
            tenant_id=current_caller().tenant_id, webhook_id=request.webhook_id
        )
        return webhook_message(view)

    async def DeleteWebhook(
        self, request: webhook_service_pb2.DeleteWebhookRequest, context: Context
    ) -> webhook_service_pb2.Webhook:
        view = await self._webhooks.delete(
            tenant_id=current_caller().tenant_id, webhook_id=request.webhook_id
        )
        await self._audit.record(
            current_caller().actor, "webhook.deleted", view.webhook_id, view.url
        )
        return webhook_message(view)

    async def RotateWebhookSecret(
        self, request: webhook_service_pb2.RotateWebhookSecretRequest, context: Context
    ) -> webhook_service_pb2.RotateWebhookSecretResponse:
        rotated = await self._webhooks.rotate_secret(
            tenant_id=current_caller().tenant_id, webhook_id=request.webhook_id
        )
        await self._audit.record(
            current_caller().actor,
            "webhook.secret_rotated",
            request.webhook_id,
            rotated.webhook.url,
        )
        return webhook_service_pb2.RotateWebhookSecretResponse(
            webhook=webhook_message(rotated.webhook), secret=rotated.secret
        )

    async def EnableWebhook(
        self, request: webhook_service_pb2.EnableWebhookRequest, context: Context
    ) -> webhook_service_pb2.Webhook:
        view = await self._webhooks.enable(
            tenant_id=current_caller().tenant_id, webhook_id=request.webhook_id
        )
        await self._audit.record(
            current_caller().actor, "webhook.enabled", view.webhook_id, view.url
        )
        return webhook_message(view)

    async def ListWebhookAttempts(
        self, request: webhook_service_pb2.ListWebhookAttemptsRequest, context: Context
    ) -> webhook_service_pb2.ListWebhookAttemptsResponse:
        views, token = await self._webhooks.attempts(
            tenant_id=current_caller().tenant_id,
            webhook_id=request.webhook_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return webhook_service_pb2.ListWebhookAttemptsResponse(
            attempts=[_attempt_message(v) for v in views], next_page_token=token
        )

    async def ReplayWebhookEvent(
        self, request: webhook_service_pb2.ReplayWebhookEventRequest, context: Context
    ) -> webhook_service_pb2.ReplayWebhookEventResponse:
        await self._webhooks.replay(
            tenant_id=current_caller().tenant_id,
            webhook_id=request.webhook_id,
            event_id=request.event_id,
        )
        return webhook_service_pb2.ReplayWebhookEventResponse(event_id=request.event_id)
