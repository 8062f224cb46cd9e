"""gRPC servicers: proto ⇄ domain mapping only. Authentication and error
mapping happen in server.api.auth.ApiInterceptor."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc
from clarion.v1 import (
    channel_service_pb2,
    channel_service_pb2_grpc,
    notification_service_pb2,
    notification_service_pb2_grpc,
    tenant_service_pb2,
    tenant_service_pb2_grpc,
)
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from server.api.auth import current_caller
from server.api.cookies import set_session_cookie
from server.domain.channels import DELIVERABLE_CHANNELS, POLICIES
from server.domain.errors import invalid
from server.domain.roles import Role, allows
from server.domain.routing import RoutingPolicy, RoutingRequest
from server.domain.sending import BulkRow, SendRequest, check_data_wire_size
from server.domain.sessions import carries_invitation
from server.services.accounts import Accounts, ApiKeyView
from server.services.audit import AuditLog
from server.services.bulk import BulkSends, BulkSpec, BulkView, RowRefusal
from server.services.limits import Limiter
from server.services.notifications import Notifications, NotificationView, RoutingStepView
from server.services.routing import DefaultRouting
from server.services.stats import DeliveryStats

# grpc ships no type information, so this alias is Any to mypy.
Context: TypeAlias = grpc.aio.ServicerContext


def timestamp_message(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _time_or_none(message: Any, field: str) -> datetime | None:
    """An optional Timestamp field, as an aware UTC datetime."""
    if not message.HasField(field):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def routing_request(
    message: notification_service_pb2.Routing, given: bool
) -> RoutingRequest | None:
    if not given:
        return None
    return RoutingRequest(
        strategy=message.strategy,
        channels=tuple(message.channels),
        success_on=message.success_on,
        step_timeout=message.step_timeout,
    )


def routing_message(policy: RoutingPolicy) -> notification_service_pb2.Routing:
    return notification_service_pb2.Routing(
        strategy=policy.strategy.value,
        channels=[c.value for c in policy.channels],
        success_on=policy.success_on.value,
        step_timeout=policy.step_timeout,
    )


def _notification_routing(
    stored: dict[str, Any] | None, steps: list[RoutingStepView]
) -> notification_service_pb2.NotificationRouting | None:
    if stored is None:
        return None
    policy = RoutingPolicy.from_json(stored)
    return notification_service_pb2.NotificationRouting(
        strategy=policy.strategy.value,
        channels=[c.value for c in policy.channels],
        success_on=policy.success_on.value,
        step_timeout=policy.step_timeout,
        source=str(stored.get("source", "request")),
        steps=[
            notification_service_pb2.RoutingStep(
                channel=s.channel,
                outcome=s.outcome.value,
                reason=s.reason,
                started_at=timestamp_message(s.started_at),
                finished_at=timestamp_message(s.finished_at),
            )
            for s in steps
        ],
    )


def _default_routing_message(default: DefaultRouting) -> notification_service_pb2.DefaultRouting:
    return notification_service_pb2.DefaultRouting(
        routing=routing_message(default.policy), updated_at=timestamp_message(default.updated_at)
    )


def notification_message(
    record: NotificationView, *, content: bool = False
) -> notification_service_pb2.Notification:
    """With `content`, each delivery's rendered subject and body too."""
    return notification_service_pb2.Notification(
        notification_id=record.notification_id,
        status=record.status.value,
        channels=record.channels,
        deliveries=[
            notification_service_pb2.Delivery(
                channel=d.channel,
                status=d.status.value,
                attempts=d.attempts,
                reason=d.reason,
                updated_at=timestamp_message(d.updated_at),
                history=[
                    notification_service_pb2.DeliveryEvent(
                        kind=e.kind,
                        status=e.status,
                        detail=e.detail,
                        occurred_at=timestamp_message(e.occurred_at),
                    )
                    for e in d.history
                ],
                subject=str(d.content.get("subject", "")) if content else "",
                body=str(d.content.get("body", "")) if content else "",
            )
            for d in record.deliveries
        ],
        recipient=notification_service_pb2.Recipient(**record.recipient),
        template_id=record.template_id,
        template_version=record.template_version or 0,
        bulk_id=record.bulk_id or "",
        idempotency_key=record.idempotency_key or "",
        created_at=timestamp_message(record.created_at),
        updated_at=timestamp_message(record.updated_at),
        routing=_notification_routing(record.routing, record.steps),
    )


def _data(data: struct_pb2.Struct, path: str) -> dict[str, Any]:
    check_data_wire_size(data.ByteSize(), path)
    return json_format.MessageToDict(data)


class NotificationServicer(notification_service_pb2_grpc.NotificationServiceServicer):
    def __init__(
        self, notifications: Notifications, bulk: BulkSends, audit: AuditLog, stats: DeliveryStats
    ) -> None:
        self._notifications = notifications
        self._bulk = bulk
        self._audit = audit
        self._stats = stats

    async def SendNotification(
        self, request: notification_service_pb2.SendNotificationRequest, context: Context
    ) -> notification_service_pb2.SendNotificationResponse:
        content = request.notification
        metadata = dict(context.invocation_metadata() or ())
        accepted = await self._notifications.send(
            tenant_id=current_caller().tenant_id,
            request=SendRequest(
                channels=list(content.channels),
                email=request.recipient.email,
                phone=request.recipient.phone,
                slack_user_id=request.recipient.slack_user_id,
                subject=content.subject,
                body=content.body,
                template_id=content.template_id,
                data=_data(content.data, "notification.data"),
                idempotency_key=request.idempotency_key or metadata.get("idempotency-key", ""),
                routing=routing_request(content.routing, content.HasField("routing")),
                priority=content.priority,
            ),
        )
        return notification_service_pb2.SendNotificationResponse(
            notification_id=accepted.notification_id, status=accepted.status.value
        )

    async def GetNotification(
        self, request: notification_service_pb2.GetNotificationRequest, context: Context
    ) -> notification_service_pb2.Notification:
        caller = current_caller()
        view = await self._notifications.get(
            tenant_id=caller.tenant_id, notification_id=request.notification_id
        )
        shown = allows(caller.role, Role.OWNER) or not carries_invitation(view.idempotency_key)
        return notification_message(view, content=shown)

    async def GetDefaultRouting(
        self, request: notification_service_pb2.GetDefaultRoutingRequest, context: Context
    ) -> notification_service_pb2.DefaultRouting:
        default = await self._notifications.routing_defaults.get(
            tenant_id=current_caller().tenant_id
        )
        return _default_routing_message(default)

    async def UpdateDefaultRouting(
        self, request: notification_service_pb2.UpdateDefaultRoutingRequest, context: Context
    ) -> notification_service_pb2.DefaultRouting:
        default = await self._notifications.routing_defaults.put(
            tenant_id=current_caller().tenant_id,
            routing=routing_request(request.routing, True) or RoutingRequest(),
        )
        policy = default.policy
        await self._audit.record(
            current_caller().actor,
            "routing_default.updated",
            "routing/default",
            f"{policy.strategy.value} over {', '.join(c.value for c in policy.channels)}",
        )
        return _default_routing_message(default)

    async def ListNotifications(
        self, request: notification_service_pb2.ListNotificationsRequest, context: Context
    ) -> notification_service_pb2.ListNotificationsResponse:
        page = await self._notifications.list_notifications(
            tenant_id=current_caller().tenant_id,
            channel=request.channel,
            status=request.status,
            recipient=request.recipient,
            page_size=request.page_size,
            page_token=request.page_token,
            created_after=_time_or_none(request, "created_after"),
            created_before=_time_or_none(request, "created_before"),
        )
        return notification_service_pb2.ListNotificationsResponse(
            notifications=[notification_message(r) for r in page.notifications],
            next_page_token=page.next_page_token,
        )

    async def SendBulk(
        self, request: notification_service_pb2.SendBulkRequest, context: Context
    ) -> notification_service_pb2.SendBulkResponse:
        metadata = dict(context.invocation_metadata() or ())
        accepted = await self._bulk.send(
            tenant_id=current_caller().tenant_id,
            spec=BulkSpec(
                channels=list(request.channels),
                template_id=request.template_id,
                subject=request.subject,
                body=request.body,
                data=_data(request.data, "data"),
                idempotency_key=request.idempotency_key or metadata.get("idempotency-key", ""),
                routing=routing_request(request.routing, request.HasField("routing")),
            ),
            rows=[
                BulkRow(
                    index=i,
                    email=r.email,
                    phone=r.phone,
                    slack_user_id=r.slack_user_id,
                    data=json_format.MessageToDict(r.data),
                )
                for i, r in enumerate(request.recipients)
            ],
        )
        return notification_service_pb2.SendBulkResponse(
            bulk_id=accepted.bulk_id,
            accepted=len(accepted.rows),
            notifications=[
                notification_service_pb2.BulkRow(index=i, notification_id=n)
                for i, n in accepted.rows
            ],
            errors=_row_errors(accepted.errors),
        )

    async def UploadBulk(
        self,
        request_iterator: AsyncIterator[notification_service_pb2.UploadBulkRequest],
        context: Context,
    ) -> notification_service_pb2.UploadBulkResponse:
        messages = aiter(request_iterator)
        first = await anext(messages, None)
        if first is None:
            raise invalid("INVALID_ARGUMENT", "body", "the upload is empty; send a CSV body")
        if not first.body.content_type.startswith("text/csv"):
            raise invalid("INVALID_ARGUMENT", "body", "send the upload with Content-Type: text/csv")

        async def chunks() -> AsyncIterator[bytes]:
            yield first.body.data
            async for message in messages:
                yield message.body.data

        metadata = dict(context.invocation_metadata() or ())
        uploaded = await self._bulk.upload(
            tenant_id=current_caller().tenant_id,
            spec=BulkSpec(
                channels=[first.channel] if first.channel else [],
                template_id=first.template_id,
                subject=first.subject,
                body=first.text,
                idempotency_key=first.idempotency_key or metadata.get("idempotency-key", ""),
                routing=routing_request(first.routing, first.HasField("routing")),
            ),
            body=chunks(),
        )
        return notification_service_pb2.UploadBulkResponse(
            bulk_id=uploaded.bulk_id,
            total=uploaded.total,
            accepted=uploaded.accepted,
            rejected=uploaded.rejected,
        )

    async def GetBulk(
        self, request: notification_service_pb2.GetBulkRequest, context: Context
    ) -> notification_service_pb2.Bulk:
        record = await self._bulk.get(tenant_id=current_caller().tenant_id, bulk_id=request.bulk_id)
        return _bulk_message(record)

    async def GetStats(
        self, request: notification_service_pb2.GetStatsRequest, context: Context
    ) -> notification_service_pb2.GetStatsResponse:
        found = await self._stats.window(
            tenant_id=current_caller().tenant_id, window=request.window
        )
        return notification_service_pb2.GetStatsResponse(
            start_time=timestamp_message(found.start),
            end_time=timestamp_message(found.end),
            bucket_seconds=found.bucket_seconds,
            channels=[
                notification_service_pb2.ChannelStats(
                    channel=c.channel,
                    delivered=c.total.delivered,
                    failed=c.total.failed,
                    sent=c.total.sent,
                    failure_rate=c.total.failure_rate,
                    buckets=[
                        notification_service_pb2.StatsBucket(
                            start_time=timestamp_message(start),
                            delivered=counts.delivered,
                            failed=counts.failed,
                            sent=counts.sent,
                        )
                        for start, counts in c.buckets
                    ],
                )
                for c in found.channels
            ],
        )

    async def ListBulks(
        self, request: notification_service_pb2.ListBulksRequest, context: Context
    ) -> notification_service_pb2.ListBulksResponse:
        found, token = await self._bulk.page(
            tenant_id=current_caller().tenant_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return notification_service_pb2.ListBulksResponse(
            bulks=[_bulk_message(r) for r in found], next_page_token=token
        )

    async def ListBulkErrors(
        self, request: notification_service_pb2.ListBulkErrorsRequest, context: Context
    ) -> notification_service_pb2.ListBulkErrorsResponse:
        errors, token = await self._bulk.errors(
            tenant_id=current_caller().tenant_id,
            bulk_id=request.bulk_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return notification_service_pb2.ListBulkErrorsResponse(
            errors=_row_errors(errors), next_page_token=token
        )


def _bulk_message(record: BulkView) -> notification_service_pb2.Bulk:
    return notification_service_pb2.Bulk(
        bulk_id=record.bulk_id,
        total=record.accepted,
        counts=notification_service_pb2.BulkCounts(**record.counts),
        rejected=record.total - record.accepted,
        channels=record.channels,
        template_id=record.template_id,
        created_at=timestamp_message(record.created_at),
        finished_at=timestamp_message(record.finished_at),
    )


def _row_errors(errors: list[RowRefusal]) -> list[notification_service_pb2.BulkRowError]:
    return [
        notification_service_pb2.BulkRowError(index=e.index, reason=e.reason, message=e.message)
        for e in errors
    ]


class ChannelServicer(channel_service_pb2_grpc.ChannelServiceServicer):
    async def GetChannelCapabilities(
        self, request: channel_service_pb2.GetChannelCapabilitiesRequest, context: Context
    ) -> channel_service_pb2.GetChannelCapabilitiesResponse:
        return channel_service_pb2.GetChannelCapabilitiesResponse(
            channels=[
                channel_service_pb2.ChannelCapability(
                    channel=p.channel.value,
                    template_required=p.template_required,
                    raw_allowed=p.raw_allowed,
                    recipient_fields=[p.recipient_field],
                    max_body_length=p.max_body_length,
                    supports_subject=p.supports_subject,
                    available=p.channel in DELIVERABLE_CHANNELS,
                    gives_receipts=p.gives_receipts,
                )
                for p in POLICIES.values()
            ]
        )


def _api_key_message(record: ApiKeyView) -> tenant_service_pb2.ApiKey:
    return tenant_service_pb2.ApiKey(
        key_id=record.key_id,
        name=record.name,
        prefix=record.prefix,
        created_at=timestamp_message(record.created_at),
        last_used_at=timestamp_message(record.last_used_at),
        revoked_at=timestamp_message(record.revoked_at),
    )


class TenantServicer(tenant_service_pb2_grpc.TenantServiceServicer):
    def __init__(self, accounts: Accounts, limiter: Limiter) -> None:
        self._accounts = accounts
        self._limiter = limiter

    async def Signup(
        self, request: tenant_service_pb2.SignupRequest, context: Context
    ) -> tenant_service_pb2.SignupResponse:
        result = await self._accounts.signup(
            name=request.name, email=request.email, password=request.password
        )
        await set_session_cookie(context, result.session)
        return tenant_service_pb2.SignupResponse(
            tenant_id=result.tenant_id,
            api_key=result.api_key,
            csrf_token=result.session.csrf_token,
        )

    async def CreateApiKey(
        self, request: tenant_service_pb2.CreateApiKeyRequest, context: Context
    ) -> tenant_service_pb2.CreateApiKeyResponse:
        created = await self._accounts.create_api_key(
            actor=current_caller().actor, name=request.name
        )
        return tenant_service_pb2.CreateApiKeyResponse(
            key_id=created.key_id, api_key=created.api_key
        )

    async def ListApiKeys(
        self, request: tenant_service_pb2.ListApiKeysRequest, context: Context
    ) -> tenant_service_pb2.ListApiKeysResponse:
        records, token = await self._accounts.list_api_keys(
            tenant_id=current_caller().tenant_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return tenant_service_pb2.ListApiKeysResponse(
            api_keys=[_api_key_message(r) for r in records], next_page_token=token
        )

    async def RevokeApiKey(
        self, request: tenant_service_pb2.RevokeApiKeyRequest, context: Context
    ) -> tenant_service_pb2.ApiKey:
        record = await self._accounts.revoke_api_key(
            actor=current_caller().actor, key_id=request.key_id
        )
        return _api_key_message(record)

    async def GetUsage(
        self, request: tenant_service_pb2.GetUsageRequest, context: Context
    ) -> tenant_service_pb2.GetUsageResponse:
        caller = current_caller()
        usage = await self._limiter.usage(caller.tenant_id, caller.limits)
        return tenant_service_pb2.GetUsageResponse(
            day=usage.day.isoformat(),
            sent_today=usage.sent,
            sent_today_by_channel=usage.sent_by_channel,
            daily_quota=usage.limits.daily_quota,
            quota_remaining=usage.quota_remaining,
            quota_resets_at=timestamp_message(usage.resets_at),
            rate_limits=[
                tenant_service_pb2.RateLimit(
                    name=name.value, per_second=rate.per_second, burst=rate.burst
                )
                for name, rate in usage.limits.rates.items()
            ],
        )
