import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Routing(_message.Message):
    __slots__ = ("strategy", "channels", "success_on", "step_timeout")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_ON_FIELD_NUMBER: _ClassVar[int]
    STEP_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    success_on: str
    step_timeout: str
    def __init__(self, strategy: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., success_on: _Optional[str] = ..., step_timeout: _Optional[str] = ...) -> None: ...

class RoutingStep(_message.Message):
    __slots__ = ("channel", "outcome", "reason", "started_at", "finished_at")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    channel: str
    outcome: str
    reason: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    def __init__(self, channel: _Optional[str] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class NotificationRouting(_message.Message):
    __slots__ = ("strategy", "channels", "success_on", "step_timeout", "source", "steps")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_ON_FIELD_NUMBER: _ClassVar[int]
    STEP_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    success_on: str
    step_timeout: str
    source: str
    steps: _containers.RepeatedCompositeFieldContainer[RoutingStep]
    def __init__(self, strategy: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., success_on: _Optional[str] = ..., step_timeout: _Optional[str] = ..., source: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[RoutingStep, _Mapping]]] = ...) -> None: ...

class GetDefaultRoutingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateDefaultRoutingRequest(_message.Message):
    __slots__ = ("routing",)
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    routing: Routing
    def __init__(self, routing: _Optional[_Union[Routing, _Mapping]] = ...) -> None: ...

class DefaultRouting(_message.Message):
    __slots__ = ("routing", "updated_at")
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    routing: Routing
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, routing: _Optional[_Union[Routing, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Recipient(_message.Message):
    __slots__ = ("email", "phone", "slack_user_id")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    SLACK_USER_ID_FIELD_NUMBER: _ClassVar[int]
    email: str
    phone: str
    slack_user_id: str
    def __init__(self, email: _Optional[str] = ..., phone: _Optional[str] = ..., slack_user_id: _Optional[str] = ...) -> None: ...

class NotificationContent(_message.Message):
    __slots__ = ("channels", "subject", "body", "template_id", "data", "routing", "priority")
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedScalarFieldContainer[str]
    subject: str
    body: str
    template_id: str
    data: _struct_pb2.Struct
    routing: Routing
    priority: str
    def __init__(self, channels: _Optional[_Iterable[str]] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ..., template_id: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., routing: _Optional[_Union[Routing, _Mapping]] = ..., priority: _Optional[str] = ...) -> None: ...

class SendNotificationRequest(_message.Message):
    __slots__ = ("recipient", "notification", "idempotency_key")
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    recipient: Recipient
    notification: NotificationContent
    idempotency_key: str
    def __init__(self, recipient: _Optional[_Union[Recipient, _Mapping]] = ..., notification: _Optional[_Union[NotificationContent, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SendNotificationResponse(_message.Message):
    __slots__ = ("notification_id", "status")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    status: str
    def __init__(self, notification_id: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class GetNotificationRequest(_message.Message):
    __slots__ = ("notification_id",)
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    def __init__(self, notification_id: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("channel", "status", "attempts", "reason", "updated_at", "history", "subject", "body")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    channel: str
    status: str
    attempts: int
    reason: str
    updated_at: _timestamp_pb2.Timestamp
    history: _containers.RepeatedCompositeFieldContainer[DeliveryEvent]
    subject: str
    body: str
    def __init__(self, channel: _Optional[str] = ..., status: _Optional[str] = ..., attempts: _Optional[int] = ..., reason: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., history: _Optional[_Iterable[_Union[DeliveryEvent, _Mapping]]] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class DeliveryEvent(_message.Message):
    __slots__ = ("kind", "status", "detail", "occurred_at")
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    status: str
    detail: str
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[str] = ..., status: _Optional[str] = ..., detail: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Notification(_message.Message):
    __slots__ = ("notification_id", "status", "channels", "deliveries", "recipient", "template_id", "idempotency_key", "created_at", "updated_at", "template_version", "bulk_id", "routing")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    status: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    recipient: Recipient
    template_id: str
    idempotency_key: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    template_version: int
    bulk_id: str
    routing: NotificationRouting
    def __init__(self, notification_id: _Optional[str] = ..., status: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ..., recipient: _Optional[_Union[Recipient, _Mapping]] = ..., template_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., template_version: _Optional[int] = ..., bulk_id: _Optional[str] = ..., routing: _Optional[_Union[NotificationRouting, _Mapping]] = ...) -> None: ...

class ListNotificationsRequest(_message.Message):
    __slots__ = ("channel", "status", "recipient", "page_size", "page_token", "created_after", "created_before")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    channel: str
    status: str
    recipient: str
    page_size: int
    page_token: str
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    def __init__(self, channel: _Optional[str] = ..., status: _Optional[str] = ..., recipient: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListNotificationsResponse(_message.Message):
    __slots__ = ("notifications", "next_page_token")
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    notifications: _containers.RepeatedCompositeFieldContainer[Notification]
    next_page_token: str
    def __init__(self, notifications: _Optional[_Iterable[_Union[Notification, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BulkRecipient(_message.Message):
    __slots__ = ("email", "phone", "slack_user_id", "data")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    SLACK_USER_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    email: str
    phone: str
    slack_user_id: str
    data: _struct_pb2.Struct
    def __init__(self, email: _Optional[str] = ..., phone: _Optional[str] = ..., slack_user_id: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class SendBulkRequest(_message.Message):
    __slots__ = ("channels", "template_id", "subject", "body", "recipients", "data", "idempotency_key", "routing")
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedScalarFieldContainer[str]
    template_id: str
    subject: str
    body: str
    recipients: _containers.RepeatedCompositeFieldContainer[BulkRecipient]
    data: _struct_pb2.Struct
    idempotency_key: str
    routing: Routing
    def __init__(self, channels: _Optional[_Iterable[str]] = ..., template_id: _Optional[str] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ..., recipients: _Optional[_Iterable[_Union[BulkRecipient, _Mapping]]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., routing: _Optional[_Union[Routing, _Mapping]] = ...) -> None: ...

class BulkRow(_message.Message):
    __slots__ = ("index", "notification_id")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    index: int
    notification_id: str
    def __init__(self, index: _Optional[int] = ..., notification_id: _Optional[str] = ...) -> None: ...

class BulkRowError(_message.Message):
    __slots__ = ("index", "reason", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    reason: str
    message: str
    def __init__(self, index: _Optional[int] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class SendBulkResponse(_message.Message):
    __slots__ = ("bulk_id", "accepted", "notifications", "errors")
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    bulk_id: str
    accepted: int
    notifications: _containers.RepeatedCompositeFieldContainer[BulkRow]
    errors: _containers.RepeatedCompositeFieldContainer[BulkRowError]
    def __init__(self, bulk_id: _Optional[str] = ..., accepted: _Optional[int] = ..., notifications: _Optional[_Iterable[_Union[BulkRow, _Mapping]]] = ..., errors: _Optional[_Iterable[_Union[BulkRowError, _Mapping]]] = ...) -> None: ...

class UploadBulkRequest(_message.Message):
    __slots__ = ("channel", "template_id", "subject", "text", "idempotency_key", "body", "routing")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    channel: str
    template_id: str
    subject: str
    text: str
    idempotency_key: str
    body: _httpbody_pb2.HttpBody
    routing: Routing
    def __init__(self, channel: _Optional[str] = ..., template_id: _Optional[str] = ..., subject: _Optional[str] = ..., text: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ..., routing: _Optional[_Union[Routing, _Mapping]] = ...) -> None: ...

class UploadBulkResponse(_message.Message):
    __slots__ = ("bulk_id", "total", "accepted", "rejected")
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    bulk_id: str
    total: int
    accepted: int
    rejected: int
    def __init__(self, bulk_id: _Optional[str] = ..., total: _Optional[int] = ..., accepted: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class GetBulkRequest(_message.Message):
    __slots__ = ("bulk_id",)
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    bulk_id: str
    def __init__(self, bulk_id: _Optional[str] = ...) -> None: ...

class BulkCounts(_message.Message):
    __slots__ = ("queued", "sent", "delivered", "failed")
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    queued: int
    sent: int
    delivered: int
    failed: int
    def __init__(self, queued: _Optional[int] = ..., sent: _Optional[int] = ..., delivered: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class Bulk(_message.Message):
    __slots__ = ("bulk_id", "total", "counts", "rejected", "channels", "template_id", "created_at", "finished_at")
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    bulk_id: str
    total: int
    counts: BulkCounts
    rejected: int
    channels: _containers.RepeatedScalarFieldContainer[str]
    template_id: str
    created_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    def __init__(self, bulk_id: _Optional[str] = ..., total: _Optional[int] = ..., counts: _Optional[_Union[BulkCounts, _Mapping]] = ..., rejected: _Optional[int] = ..., channels: _Optional[_Iterable[str]] = ..., template_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: str
    def __init__(self, window: _Optional[str] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("start_time", "end_time", "bucket_seconds", "channels")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    BUCKET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    bucket_seconds: int
    channels: _containers.RepeatedCompositeFieldContainer[ChannelStats]
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bucket_seconds: _Optional[int] = ..., channels: _Optional[_Iterable[_Union[ChannelStats, _Mapping]]] = ...) -> None: ...

class ChannelStats(_message.Message):
    __slots__ = ("channel", "delivered", "failed", "sent", "failure_rate", "buckets")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_RATE_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    channel: str
    delivered: int
    failed: int
    sent: int
    failure_rate: float
    buckets: _containers.RepeatedCompositeFieldContainer[StatsBucket]
    def __init__(self, channel: _Optional[str] = ..., delivered: _Optional[int] = ..., failed: _Optional[int] = ..., sent: _Optional[int] = ..., failure_rate: _Optional[float] = ..., buckets: _Optional[_Iterable[_Union[StatsBucket, _Mapping]]] = ...) -> None: ...

class StatsBucket(_message.Message):
    __slots__ = ("start_time", "delivered", "failed", "sent")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    delivered: int
    failed: int
    sent: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivered: _Optional[int] = ..., failed: _Optional[int] = ..., sent: _Optional[int] = ...) -> None: ...

class ListBulksRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBulksResponse(_message.Message):
    __slots__ = ("bulks", "next_page_token")
    BULKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    bulks: _containers.RepeatedCompositeFieldContainer[Bulk]
    next_page_token: str
    def __init__(self, bulks: _Optional[_Iterable[_Union[Bulk, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListBulkErrorsRequest(_message.Message):
    __slots__ = ("bulk_id", "page_size", "page_token")
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    bulk_id: str
    page_size: int
    page_token: str
    def __init__(self, bulk_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBulkErrorsResponse(_message.Message):
    __slots__ = ("errors", "next_page_token")
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.RepeatedCompositeFieldContainer[BulkRowError]
    next_page_token: str
    def __init__(self, errors: _Optional[_Iterable[_Union[BulkRowError, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
