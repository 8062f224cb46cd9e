from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetChannelCapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChannelCapability(_message.Message):
    __slots__ = ("channel", "template_required", "raw_allowed", "recipient_fields", "max_body_length", "supports_subject", "available", "gives_receipts")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    RAW_ALLOWED_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELDS_FIELD_NUMBER: _ClassVar[int]
    MAX_BODY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    GIVES_RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    channel: str
    template_required: bool
    raw_allowed: bool
    recipient_fields: _containers.RepeatedScalarFieldContainer[str]
    max_body_length: int
    supports_subject: bool
    available: bool
    gives_receipts: bool
    def __init__(self, channel: _Optional[str] = ..., template_required: _Optional[bool] = ..., raw_allowed: _Optional[bool] = ..., recipient_fields: _Optional[_Iterable[str]] = ..., max_body_length: _Optional[int] = ..., supports_subject: _Optional[bool] = ..., available: _Optional[bool] = ..., gives_receipts: _Optional[bool] = ...) -> None: ...

class GetChannelCapabilitiesResponse(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[ChannelCapability]
    def __init__(self, channels: _Optional[_Iterable[_Union[ChannelCapability, _Mapping]]] = ...) -> None: ...
