"""The ``grpc.aio`` surface: the sync API's mirror, with coroutines and async iterators.

Each read of a frame waits at most the liveness window (``asyncio.wait_for``):
a silent server's call is cancelled and fails with ``UNAVAILABLE``; no thread.

>>> reply = await steadfast.aio.call(stub.Sleep, SleepRequest(millis=1500), heartbeat_ms=500)  # doctest: +SKIP
>>> lab = steadfast.aio.Service(lab_pb2_grpc.LabStub(aio_channel), "lab.v1.Lab", manifest)  # doctest: +SKIP
>>> async for tick in lab.stream("Ticks", TicksRequest(count=3)): ...  # doctest: +SKIP
>>> model = steadfast.aio.Dispatch(aio_channel)  # doctest: +SKIP
>>> await model.call("hello", {"name": "Ada"})  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple, Type

import grpc
import grpc.aio

from . import errors
from ._frames import (
    BLOB_WITHOUT,
    DOWNLOAD_CHUNKS,
    DOWNLOAD_FIRST,
    DOWNLOAD_HEADER,
    DOWNLOAD_NO_BLOB,
    DOWNLOAD_NO_MESSAGE,
    NO_MESSAGE,
    SECOND_MESSAGE,
    MetadataArg,
    ProgressCallback,
    part_of,
    window_seconds,
    with_framing,
)
from ._resolve import lookup, method_path, upload_type
from .blob import BlobDecoder, BlobLimits, BlobSource, PathLike, _FileSink
from .dispatch import FunctionInfo, call_metadata, decode_result, requests
from .manifest import Manifest, MethodInfo
from .v1 import dispatch_pb2, dispatch_pb2_grpc

__all__ = [
    "AsyncBlobReader",
    "Dispatch",
    "HeartbeatStream",
    "Service",
    "call",
    "download",
    "stream",
]


class _FrameCall:
    """An aio call's frames: heartbeats to the callback, the other parts out."""

    def __init__(
        self, call: Any, window: Optional[float], on_progress: Optional[ProgressCallback]
    ) -> None:
        self.call = call
        self._window = window
        self._on_progress = on_progress
        self._done = False

    async def next_part(self) -> Optional[Tuple[str, Any]]:
        """The next part that is not a heartbeat, or ``None`` at the (OK) end."""
        if self._done:
            return None
        try:
            while True:
                started = time.monotonic()
                try:
                    if self._window is None:
                        frame = await self.call.read()
                    else:
                        frame = await asyncio.wait_for(self.call.read(), self._window)
                except asyncio.TimeoutError:
                    assert self._window is not None
                    self.cancel()
                    raise errors.silent(
                        "frame", time.monotonic() - started, self._window
                    ) from None
                if frame is grpc.aio.EOF:
                    self._done = True
                    return None
                part = part_of(frame, self._on_progress)
                if part is not None:
                    return part
        except BaseException:
            self.cancel()
            raise

    def cancel(self) -> None:
        """Cancels the call unless it ended."""
        if not self._done:
            self._done = True
            self.call.cancel()


def _open(
    multicallable: Any,
    request: Any,
    heartbeat_ms: Optional[int],
    liveness: Optional[float],
    timeout: Optional[float],
    metadata: MetadataArg,
    on_progress: Optional[ProgressCallback],
    **kwargs: Any,
) -> _FrameCall:
    window = window_seconds(heartbeat_ms, liveness)
    call = multicallable(request, timeout=timeout, metadata=with_framing(metadata), **kwargs)
    return _FrameCall(call, window, on_progress)


async def _read_unary(frames: _FrameCall) -> Any:
    message: Any = None
    seen = False
    try:
        while True:
            part = await frames.next_part()
            if part is None:
                break
            kind, value = part
            if kind != "message":
                raise errors.internal(BLOB_WITHOUT)
            if seen:
                raise errors.internal(SECOND_MESSAGE)
            message, seen = value, True
    finally:
        frames.cancel()
    if not seen:
        raise errors.internal(NO_MESSAGE)
    return message


async def call(
    multicallable: Any,
    request: Any,
    *,
    heartbeat_ms: Optional[int] = None,
    liveness: Optional[float] = None,
    timeout: Optional[float] = None,
    metadata: MetadataArg = None,
    on_progress: Optional[ProgressCallback] = None,
    **kwargs: Any,
) -> Any:
    """:func:`steadfast.call` for a ``grpc.aio`` stub: the reply of a unary or
    client-streaming heartbeat method (``request`` may be an iterator or async iterator)."""
    frames = _open(multicallable, request, heartbeat_ms, liveness, timeout, metadata, on_progress, **kwargs)
    return await _read_unary(frames)


class HeartbeatStream:
    """The messages of a streaming heartbeat call: ``async for``; :meth:`cancel` ends it."""

    def __init__(self, frames: _FrameCall) -> None:
        self._frames = frames

    def __aiter__(self) -> "HeartbeatStream":
        return self

    async def __anext__(self) -> Any:
        part = await self._frames.next_part()
        if part is None:
            raise StopAsyncIteration
        kind, value = part
        if kind != "message":
            self._frames.cancel()
            raise errors.internal(BLOB_WITHOUT)
        return value

    @property
    def call(self) -> Any:
        """grpc.aio's call object."""
        return self._frames.call

    def cancel(self) -> None:
        """Cancels the call if it is still running."""
        self._frames.cancel()

    async def __aenter__(self) -> "HeartbeatStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.cancel()


def stream(
    multicallable: Any,
    request: Any,
    *,
    heartbeat_ms: Optional[int] = None,
    liveness: Optional[float] = None,
    timeout: Optional[float] = None,
    metadata: MetadataArg = None,
    on_progress: Optional[ProgressCallback] = None,
    **kwargs: Any,
) -> HeartbeatStream:
    """:func:`steadfast.stream` for a ``grpc.aio`` stub."""
    return HeartbeatStream(
        _open(multicallable, request, heartbeat_ms, liveness, timeout, metadata, on_progress, **kwargs)
    )


class AsyncBlobReader:
    """:class:`steadfast.BlobReader` for aio: ``async for`` its bytes, or
    :meth:`to_bytes` / :meth:`to_file`. File writes block the loop briefly (one
    piece of at most a decode step at a time)."""

    def __init__(
        self,
        header: Any,
        frames: _FrameCall,
        limits: Optional[BlobLimits] = None,
    ) -> None:
        self._decoder = BlobDecoder(header, limits)
        self._frames = frames
        self._started = False
        self._finished = False

    @property
    def declared_size(self) -> Optional[int]:
        """The size the sender declared, or ``None``."""
        return self._decoder.declared

    @property
    def codec(self) -> int:
        """``frame_pb2.CODEC_ZSTD`` or ``frame_pb2.CODEC_NONE``."""
        return self._decoder.codec

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError("a BlobReader is read once")
        self._started = True
        try:
            while True:
                part = await self._frames.next_part()
                if part is None:
                    break
                kind, chunk = part
                if kind != "chunk":
                    raise errors.internal(DOWNLOAD_CHUNKS)
                for data in self._decoder.feed(chunk):
                    yield data
            self._decoder.end()
            self._finished = True
        finally:
            if not self._finished:
                self.close()

    async def to_bytes(self) -> bytes:
        """The whole blob, verified, in memory."""
        return b"".join([data async for data in self])

    async def to_file(self, path: PathLike) -> int:
        """As :meth:`steadfast.BlobReader.to_file`."""
        sink = _FileSink(path)
        try:
            async for data in self:
                sink.write(data)
        except BaseException:
            sink.abort()
            raise
        return sink.commit()

    def close(self) -> None:
        """Cancels the call unless the blob was read to its end."""
        if not self._finished:
            self._frames.cancel()

    async def __aenter__(self) -> "AsyncBlobReader":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


async def _read_download(
    frames: _FrameCall, limits: Optional[BlobLimits]
) -> Tuple[Any, AsyncBlobReader]:
    try:
        part = await frames.next_part()
        if part is None:
            raise errors.internal(DOWNLOAD_NO_MESSAGE)
        kind, message = part
        if kind != "message":
            raise errors.internal(DOWNLOAD_FIRST)
        part = await frames.next_part()
        if part is None:
            raise errors.internal(DOWNLOAD_NO_BLOB)
        kind, header = part
        if kind != "blob":
            raise errors.internal(DOWNLOAD_HEADER)
        return message, AsyncBlobReader(header, frames, limits)
    except BaseException:
        frames.cancel()
        raise


async def download(
    multicallable: Any,
    request: Any,
    *,
    heartbeat_ms: Optional[int] = None,
    liveness: Optional[float] = None,
    timeout: Optional[float] = None,
    metadata: MetadataArg = None,
    on_progress: Optional[ProgressCallback] = None,
    limits: Optional[BlobLimits] = None,
    **kwargs: Any,
) -> Tuple[Any, AsyncBlobReader]:
    """:func:`steadfast.download` for a ``grpc.aio`` stub."""
    frames = _open(multicallable, request, heartbeat_ms, liveness, timeout, metadata, on_progress, **kwargs)
    return await _read_download(frames, limits)


class Service:
    """:class:`steadfast.Service` over a ``grpc.aio`` stub."""

    def __init__(
        self,
        stub: Any,
        service: str,
        manifest: Optional[Manifest] = None,
        *,
        liveness: Optional[float] = None,
        metadata: MetadataArg = None,
        limits: Optional[BlobLimits] = None,
    ) -> None:
        self.stub = stub
        self.service = service
        self.manifest = manifest
        self._liveness = liveness
        self._metadata = list(metadata or ())
        self._limits = limits

    def info(self, method: str) -> Optional[MethodInfo]:
        """The manifest's entry of ``method``, or ``None``."""
        return lookup(self.manifest, self.service, method)

    def _prepare(
        self, method: str, request: Any, blob: Optional[BlobSource], upload: Optional[Type[Any]]
    ) -> Tuple[Any, Optional[MethodInfo], Any]:
        info = self.info(method)
        multicallable = getattr(self.stub, method)
        if blob is not None:
            if info is not None and not info.request_blob:
                raise ValueError(f"{method_path(self.service, method)} takes no blob")
            request = blob.upload(upload or upload_type(self.service, method, request), request)
        elif info is not None and info.request_blob:
            raise ValueError(f"{method_path(self.service, method)} needs a blob: pass blob=")
        return multicallable, info, request

    def _kw(self, info: Optional[MethodInfo], liveness: Optional[float], metadata: MetadataArg) -> Dict[str, Any]:
        return {
            "heartbeat_ms": info.heartbeat_ms if info else None,
            "liveness": liveness if liveness is not None else self._liveness,
            "metadata": self._metadata + list(metadata or ()),
        }

    async def call(
        self,
        method: str,
        request: Any,
        *,
        blob: Optional[BlobSource] = None,
        upload: Optional[Type[Any]] = None,
        timeout: Optional[float] = None,
        metadata: MetadataArg = None,
        on_progress: Optional[ProgressCallback] = None,
        liveness: Optional[float] = None,
        **kwargs: Any,
    ) -> Any:
        """As :meth:`steadfast.Service.call`."""
        multicallable, info, request = self._prepare(method, request, blob, upload)
        if info is None:
            return await multicallable(
                request, timeout=timeout, metadata=self._metadata + list(metadata or ()), **kwargs
            )
        return await call(
            multicallable, request, timeout=timeout, on_progress=on_progress,
            **self._kw(info, liveness, metadata), **kwargs,
        )

    def stream(
        self,
        method: str,
        request: Any,
        *,
        timeout: Optional[float] = None,
        metadata: MetadataArg = None,
        on_progress: Optional[ProgressCallback] = None,
        liveness: Optional[float] = None,
        **kwargs: Any,
    ) -> Any:
        """As :meth:`steadfast.Service.stream`: an async iterator of messages."""
        multicallable, info, request = self._prepare(method, request, None, None)
        if info is None:
            return multicallable(
                request, timeout=timeout, metadata=self._metadata + list(metadata or ()), **kwargs
            )
        return stream(
            multicallable, request, timeout=timeout, on_progress=on_progress,
            **self._kw(info, liveness, metadata), **kwargs,
        )

    async def download(
        self,
        method: str,
        request: Any,
        *,
        blob: Optional[BlobSource] = None,
        upload: Optional[Type[Any]] = None,
        timeout: Optional[float] = None,
        metadata: MetadataArg = None,
        on_progress: Optional[ProgressCallback] = None,
        liveness: Optional[float] = None,
        limits: Optional[BlobLimits] = None,
        **kwargs: Any,
    ) -> Tuple[Any, AsyncBlobReader]:
        """As :meth:`steadfast.Service.download`."""
        multicallable, info, request = self._prepare(method, request, blob, upload)
        return await download(
            multicallable, request, timeout=timeout, on_progress=on_progress,
            limits=limits or self._limits, **self._kw(info, liveness, metadata), **kwargs,
        )


class Dispatch:
    """:class:`steadfast.Dispatch` over a ``grpc.aio`` channel."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        upstream: Optional[str] = None,
        metadata: MetadataArg = None,
        liveness: Optional[float] = None,
        limits: Optional[BlobLimits] = None,
    ) -> None:
        self.stub = dispatch_pb2_grpc.DispatchStub(channel)
        # A call without a blob sends one message: as a unary-request call, it is
        # sent in the batch that starts the call. grpc.aio's stream writes report
        # INTERNAL "Internal error from Core" instead of the server's status when
        # the server ends the call (an unknown x-func-name) while a write is in
        # flight (grpc/grpc#36066); a unary request has no such write.
        self._call_one = channel.unary_stream(
            "/steadfast.v1.Dispatch/Call",
            request_serializer=dispatch_pb2.DispatchUpload.SerializeToString,
            response_deserializer=dispatch_pb2.DispatchFrame.FromString,
        )
        self._upstream = upstream
        self._metadata = list(metadata or ())
        self._liveness = liveness
        self._limits = limits
        self._functions: Optional[Dict[str, FunctionInfo]] = None

    async def describe(self, *, timeout: Optional[float] = 10.0) -> List[FunctionInfo]:
        """The functions the server offers, sorted by name."""
        reply = await self.stub.Describe(
            dispatch_pb2.DescribeRequest(),
            timeout=timeout,
            metadata=call_metadata(None, self._upstream, self._metadata),
        )
        functions = [FunctionInfo.from_proto(f) for f in reply.functions]
        self._functions = {f.name: f for f in functions}
        return functions

    async def _interval(self, name: Optional[str], heartbeat_ms: Optional[int]) -> Optional[int]:
        if heartbeat_ms is not None or self._liveness is not None:
            return heartbeat_ms
        if self._functions is None:
            try:
                await self.describe()
            except grpc.RpcError:
                self._functions = {}
        for function in (self._functions or {}).values():
            if function.name == name or (name is None and function.is_default):
                return function.heartbeat_ms
        return None

    async def _open(
        self,
        name: Optional[str],
        params: Any,
        blob: Optional[BlobSource],
        upstream: Optional[str],
        timeout: Optional[float],
        on_progress: Optional[ProgressCallback],
        heartbeat_ms: Optional[int],
        metadata: MetadataArg,
        kwargs: Dict[str, Any],
    ) -> _FrameCall:
        request: Any
        if blob is None:
            multicallable, request = self._call_one, next(requests(params, None))
        else:
            multicallable, request = self.stub.Call, requests(params, blob)
        return _open(
            multicallable,
            request,
            await self._interval(name, heartbeat_ms),
            self._liveness,
            timeout,
            call_metadata(name, upstream or self._upstream, self._metadata + list(metadata or ())),
            on_progress,
            **kwargs,
        )

    async def call(
        self,
        name: Optional[str],
        params: Any = None,
        *,
        blob: Optional[BlobSource] = None,
        upstream: Optional[str] = None,
        timeout: Optional[float] = None,
        on_progress: Optional[ProgressCallback] = None,
        heartbeat_ms: Optional[int] = None,
        metadata: MetadataArg = None,
        **kwargs: Any,
    ) -> Any:
        """As :meth:`steadfast.Dispatch.call`."""
        frames = await self._open(
            name, params, blob, upstream, timeout, on_progress, heartbeat_ms, metadata, kwargs
        )
        return decode_result(await _read_unary(frames))

    async def download(
        self,
        name: Optional[str],
        params: Any = None,
        *,
        blob: Optional[BlobSource] = None,
        upstream: Optional[str] = None,
        timeout: Optional[float] = None,
        on_progress: Optional[ProgressCallback] = None,
        heartbeat_ms: Optional[int] = None,
        metadata: MetadataArg = None,
        limits: Optional[BlobLimits] = None,
        **kwargs: Any,
    ) -> Tuple[Any, AsyncBlobReader]:
        """As :meth:`steadfast.Dispatch.download`."""
        frames = await self._open(
            name, params, blob, upstream, timeout, on_progress, heartbeat_ms, metadata, kwargs
        )
        message, reader = await _read_download(frames, limits or self._limits)
        return decode_result(message), reader
