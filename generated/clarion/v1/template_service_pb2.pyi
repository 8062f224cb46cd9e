import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EmailContent(_message.Message):
    __slots__ = ("subject", "body", "html_body")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    HTML_BODY_FIELD_NUMBER: _ClassVar[int]
    subject: str
    body: str
    html_body: str
    def __init__(self, subject: _Optional[str] = ..., body: _Optional[str] = ..., html_body: _Optional[str] = ...) -> None: ...

class TextContent(_message.Message):
    __slots__ = ("body",)
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: str
    def __init__(self, body: _Optional[str] = ...) -> None: ...

class WhatsAppContent(_message.Message):
    __slots__ = ("body", "language")
    BODY_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    body: str
    language: str
    def __init__(self, body: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class TemplateChannels(_message.Message):
    __slots__ = ("email", "sms", "slack", "voice", "whatsapp")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    SMS_FIELD_NUMBER: _ClassVar[int]
    SLACK_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_FIELD_NUMBER: _ClassVar[int]
    email: EmailContent
    sms: TextContent
    slack: TextContent
    voice: TextContent
    whatsapp: WhatsAppContent
    def __init__(self, email: _Optional[_Union[EmailContent, _Mapping]] = ..., sms: _Optional[_Union[TextContent, _Mapping]] = ..., slack: _Optional[_Union[TextContent, _Mapping]] = ..., voice: _Optional[_Union[TextContent, _Mapping]] = ..., whatsapp: _Optional[_Union[WhatsAppContent, _Mapping]] = ...) -> None: ...

class WhatsAppApproval(_message.Message):
    __slots__ = ("status", "reason")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    status: str
    reason: str
    def __init__(self, status: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Rollout(_message.Message):
    __slots__ = ("version", "percent", "state", "stopped_reason", "started_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STOPPED_REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    percent: int
    state: str
    stopped_reason: str
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., percent: _Optional[int] = ..., state: _Optional[str] = ..., stopped_reason: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TemplateVersion(_message.Message):
    __slots__ = ("template_id", "version", "channels", "variables", "whatsapp_approval", "created_at")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    version: int
    channels: TemplateChannels
    variables: _containers.RepeatedScalarFieldContainer[str]
    whatsapp_approval: WhatsAppApproval
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, template_id: _Optional[str] = ..., version: _Optional[int] = ..., channels: _Optional[_Union[TemplateChannels, _Mapping]] = ..., variables: _Optional[_Iterable[str]] = ..., whatsapp_approval: _Optional[_Union[WhatsAppApproval, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Template(_message.Message):
    __slots__ = ("template_id", "description", "version", "channels", "variables", "latest_version", "rollout", "whatsapp_approval", "created_at", "updated_at")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    description: str
    version: int
    channels: TemplateChannels
    variables: _containers.RepeatedScalarFieldContainer[str]
    latest_version: int
    rollout: Rollout
    whatsapp_approval: WhatsAppApproval
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, template_id: _Optional[str] = ..., description: _Optional[str] = ..., version: _Optional[int] = ..., channels: _Optional[_Union[TemplateChannels, _Mapping]] = ..., variables: _Optional[_Iterable[str]] = ..., latest_version: _Optional[int] = ..., rollout: _Optional[_Union[Rollout, _Mapping]] = ..., whatsapp_approval: _Optional[_Union[WhatsAppApproval, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateTemplateRequest(_message.Message):
    __slots__ = ("template_id", "description", "channels")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    description: str
    channels: TemplateChannels
    def __init__(self, template_id: _Optional[str] = ..., description: _Optional[str] = ..., channels: _Optional[_Union[TemplateChannels, _Mapping]] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ("template_id",)
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    def __init__(self, template_id: _Optional[str] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ("templates", "next_page_token")
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    next_page_token: str
    def __init__(self, templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateTemplateVersionRequest(_message.Message):
    __slots__ = ("template_id", "channels")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    channels: TemplateChannels
    def __init__(self, template_id: _Optional[str] = ..., channels: _Optional[_Union[TemplateChannels, _Mapping]] = ...) -> None: ...

class GetTemplateVersionRequest(_message.Message):
    __slots__ = ("template_id", "version")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    version: int
    def __init__(self, template_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class RolloutTemplateRequest(_message.Message):
    __slots__ = ("template_id", "version", "percent")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    version: int
    percent: int
    def __init__(self, template_id: _Optional[str] = ..., version: _Optional[int] = ..., percent: _Optional[int] = ...) -> None: ...

class DeleteTemplateRequest(_message.Message):
    __slots__ = ("template_id",)
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    def __init__(self, template_id: _Optional[str] = ...) -> None: ...

class PreviewTemplateRequest(_message.Message):
    __slots__ = ("template_id", "data", "channels")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    data: _struct_pb2.Struct
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, template_id: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., channels: _Optional[_Iterable[str]] = ...) -> None: ...

class RenderedChannel(_message.Message):
    __slots__ = ("channel", "subject", "body", "html_body")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    HTML_BODY_FIELD_NUMBER: _ClassVar[int]
    channel: str
    subject: str
    body: str
    html_body: str
    def __init__(self, channel: _Optional[str] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ..., html_body: _Optional[str] = ...) -> None: ...

class PreviewTemplateResponse(_message.Message):
    __slots__ = ("version", "rendered")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RENDERED_FIELD_NUMBER: _ClassVar[int]
    version: int
    rendered: _containers.RepeatedCompositeFieldContainer[RenderedChannel]
    def __init__(self, version: _Optional[int] = ..., rendered: _Optional[_Iterable[_Union[RenderedChannel, _Mapping]]] = ...) -> None: ...
