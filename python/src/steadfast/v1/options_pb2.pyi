from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
METHOD_FIELD_NUMBER: _ClassVar[int]
method: _descriptor.FieldDescriptor
SERVICE_FIELD_NUMBER: _ClassVar[int]
service: _descriptor.FieldDescriptor

class MethodOptions(_message.Message):
    __slots__ = ("heartbeat_ms", "request_blob", "response_blob", "retry", "idempotent")
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_BLOB_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BLOB_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENT_FIELD_NUMBER: _ClassVar[int]
    heartbeat_ms: int
    request_blob: bool
    response_blob: bool
    retry: RetryPolicy
    idempotent: bool
    def __init__(self, heartbeat_ms: _Optional[int] = ..., request_blob: bool = ..., response_blob: bool = ..., retry: _Optional[_Union[RetryPolicy, _Mapping]] = ..., idempotent: bool = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("max_attempts", "initial_backoff_ms", "max_backoff_ms", "backoff_multiplier", "retryable_status_codes", "attempt_limit")
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_BACKOFF_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_BACKOFF_MS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_STATUS_CODES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    max_attempts: int
    initial_backoff_ms: int
    max_backoff_ms: int
    backoff_multiplier: float
    retryable_status_codes: _containers.RepeatedScalarFieldContainer[str]
    attempt_limit: int
    def __init__(self, max_attempts: _Optional[int] = ..., initial_backoff_ms: _Optional[int] = ..., max_backoff_ms: _Optional[int] = ..., backoff_multiplier: _Optional[float] = ..., retryable_status_codes: _Optional[_Iterable[str]] = ..., attempt_limit: _Optional[int] = ...) -> None: ...
