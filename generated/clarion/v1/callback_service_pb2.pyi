from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReceiveProviderCallbackRequest(_message.Message):
    __slots__ = ("provider", "body")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    provider: str
    body: _httpbody_pb2.HttpBody
    def __init__(self, provider: _Optional[str] = ..., body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class ReceiveProviderCallbackResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyProviderWebhookRequest(_message.Message):
    __slots__ = ("provider", "hub")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    HUB_FIELD_NUMBER: _ClassVar[int]
    provider: str
    hub: WebhookChallenge
    def __init__(self, provider: _Optional[str] = ..., hub: _Optional[_Union[WebhookChallenge, _Mapping]] = ...) -> None: ...

class WebhookChallenge(_message.Message):
    __slots__ = ("mode", "verify_token", "challenge")
    MODE_FIELD_NUMBER: _ClassVar[int]
    VERIFY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    mode: str
    verify_token: str
    challenge: str
    def __init__(self, mode: _Optional[str] = ..., verify_token: _Optional[str] = ..., challenge: _Optional[str] = ...) -> None: ...
