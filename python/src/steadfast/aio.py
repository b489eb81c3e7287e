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
    DOWNLOAD_CHUNKS,
    DOWNLOAD_FIRST,
    DOWNLOAD_HEADER,
    DOWNLOAD_NO_BLOB,
    DOWNLOAD_NO_MESSAGE,
    Messages,
    MetadataArg,
    Part,
    ProgressCallback,
    Unary,
    expect,
    part_of,
    value_of,
    window_seconds,
    with_framing,
)
from ._resolve import ServiceCalls
from .blob import BlobLimits, BlobSource, PathLike, _FileSink, _Reading
from .dispatch import FunctionInfo, _DispatchCalls, decode_result, requests, upload_head
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

    async def next_part(self) -> Optional[Part]:
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
    unary = Unary()
    try:
        while True:
            part = await frames.next_part()
            if part is None:
                break
            unary.take(part)
    finally:
        frames.cancel()
    return unary.reply()


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


class HeartbeatStream(Messages):
    """The messages of a streaming heartbeat call: ``async for``; :meth:`cancel` ends it."""

    def __aiter__(self) -> "HeartbeatStream":
        return self

    async def __anext__(self) -> Any:
        part = await self._frames.next_part()
        if part is None:
            raise StopAsyncIteration
        return self._message(part)

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


class AsyncBlobReader(_Reading):
    """:class:`steadfast.BlobReader` for aio: ``async for`` its bytes, or
    :meth:`to_bytes` / :meth:`to_file`. File writes block the loop briefly (one
    piece of at most a decode step at a time)."""

    def __init__(
        self,
        header: Any,
        frames: _FrameCall,
        limits: Optional[BlobLimits] = None,
    ) -> None:
        super().__init__(header, limits, frames.cancel)
        self._frames = frames

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self._start()
        try:
            while True:
                part = await self._frames.next_part()
                if part is None:
                    break
                for data in self._decoder.feed(value_of(part, "chunk", DOWNLOAD_CHUNKS)):
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

    async def __aenter__(self) -> "AsyncBlobReader":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


async def _read_download(
    frames: _FrameCall, limits: Optional[BlobLimits]
) -> Tuple[Any, AsyncBlobReader]:
    try:
        message = expect(await frames.next_part(), "message", DOWNLOAD_FIRST, DOWNLOAD_NO_MESSAGE)
        header = expect(await frames.next_part(), "blob", DOWNLOAD_HEADER, DOWNLOAD_NO_BLOB)
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


class Service(ServiceCalls):
    """:class:`steadfast.Service` over a ``grpc.aio`` stub."""

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
            return await multicallable(request, timeout=timeout, metadata=self._md(metadata), **kwargs)
        return await call(
            multicallable, request, timeout=timeout, on_progress=on_progress,
            **self._framed(info, liveness, metadata), **kwargs,
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
            return multicallable(request, timeout=timeout, metadata=self._md(metadata), **kwargs)
        return stream(
            multicallable, request, timeout=timeout, on_progress=on_progress,
            **self._framed(info, liveness, metadata), **kwargs,
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
            limits=limits or self._limits, **self._framed(info, liveness, metadata), **kwargs,
        )


class Dispatch(_DispatchCalls):
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
        super().__init__(
            dispatch_pb2_grpc.DispatchStub(channel),
            upstream=upstream, metadata=metadata, liveness=liveness, limits=limits,
        )
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

    async def describe(self, *, timeout: Optional[float] = 10.0) -> List[FunctionInfo]:
        """The functions the server offers, sorted by name."""
        reply = await self.stub.Describe(
            dispatch_pb2.DescribeRequest(), timeout=timeout, metadata=self._describe_metadata()
        )
        return self._keep(reply)

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
        if self._must_describe(heartbeat_ms):
            try:
                await self.describe()
            except grpc.RpcError:
                self._functions = {}
        multicallable, request = (
            (self._call_one, upload_head(params)) if blob is None
            else (self.stub.Call, requests(params, blob))
        )
        return _open(
            multicallable, request, timeout=timeout, on_progress=on_progress,
            **self._framed(name, upstream, heartbeat_ms, metadata), **kwargs,
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
