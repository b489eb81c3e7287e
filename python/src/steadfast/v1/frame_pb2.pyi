from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Codec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CODEC_UNSPECIFIED: _ClassVar[Codec]
    CODEC_NONE: _ClassVar[Codec]
    CODEC_ZSTD: _ClassVar[Codec]
CODEC_UNSPECIFIED: Codec
CODEC_NONE: Codec
CODEC_ZSTD: Codec

class Heartbeat(_message.Message):
    __slots__ = ("seq", "elapsed_ms", "progress", "note")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    elapsed_ms: int
    progress: float
    note: str
    def __init__(self, seq: _Optional[int] = ..., elapsed_ms: _Optional[int] = ..., progress: _Optional[float] = ..., note: _Optional[str] = ...) -> None: ...

class BlobHeader(_message.Message):
    __slots__ = ("size", "codec")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    size: int
    codec: Codec
    def __init__(self, size: _Optional[int] = ..., codec: _Optional[_Union[Codec, str]] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("data", "offset", "last", "checksum")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    last: bool
    checksum: int
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ..., last: bool = ..., checksum: _Optional[int] = ...) -> None: ...
