from steadfast.v1 import frame_pb2 as _frame_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallHead(_message.Message):
    __slots__ = ("params",)
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    params: bytes
    def __init__(self, params: _Optional[bytes] = ...) -> None: ...

class CallResult(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: bytes
    def __init__(self, result: _Optional[bytes] = ...) -> None: ...

class DispatchUpload(_message.Message):
    __slots__ = ("head", "blob", "chunk")
    HEAD_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    head: CallHead
    blob: _frame_pb2.BlobHeader
    chunk: _frame_pb2.Chunk
    def __init__(self, head: _Optional[_Union[CallHead, _Mapping]] = ..., blob: _Optional[_Union[_frame_pb2.BlobHeader, _Mapping]] = ..., chunk: _Optional[_Union[_frame_pb2.Chunk, _Mapping]] = ...) -> None: ...

class DispatchFrame(_message.Message):
    __slots__ = ("heartbeat", "message", "blob", "chunk")
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    heartbeat: _frame_pb2.Heartbeat
    message: CallResult
    blob: _frame_pb2.BlobHeader
    chunk: _frame_pb2.Chunk
    def __init__(self, heartbeat: _Optional[_Union[_frame_pb2.Heartbeat, _Mapping]] = ..., message: _Optional[_Union[CallResult, _Mapping]] = ..., blob: _Optional[_Union[_frame_pb2.BlobHeader, _Mapping]] = ..., chunk: _Optional[_Union[_frame_pb2.Chunk, _Mapping]] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeReply(_message.Message):
    __slots__ = ("functions",)
    FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    functions: _containers.RepeatedCompositeFieldContainer[FunctionInfo]
    def __init__(self, functions: _Optional[_Iterable[_Union[FunctionInfo, _Mapping]]] = ...) -> None: ...

class FunctionInfo(_message.Message):
    __slots__ = ("name", "doc", "heartbeat_ms", "takes_blob", "returns_blob", "params_schema", "result_schema", "is_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    TAKES_BLOB_FIELD_NUMBER: _ClassVar[int]
    RETURNS_BLOB_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    RESULT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    doc: str
    heartbeat_ms: int
    takes_blob: bool
    returns_blob: bool
    params_schema: str
    result_schema: str
    is_default: bool
    def __init__(self, name: _Optional[str] = ..., doc: _Optional[str] = ..., heartbeat_ms: _Optional[int] = ..., takes_blob: bool = ..., returns_blob: bool = ..., params_schema: _Optional[str] = ..., result_schema: _Optional[str] = ..., is_default: bool = ...) -> None: ...
