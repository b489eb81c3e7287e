"""Heartbeat calls with grpcio's sync API.

Pass the user's stub multicallable (``stub.Sleep``) and get the reply with the
heartbeats hidden, or iterate a stream of messages; heartbeats go to
``on_progress`` (it gets the ``steadfast.v1.Heartbeat``). Every call sends the
``steadfast-framing: v1`` metadata and honours ``timeout`` (grpcio's own deadline,
``DEADLINE_EXCEEDED``). The liveness window (``liveness`` seconds, else 3 ×
``heartbeat_ms``): when the server sends no frame for that long while the caller
waits, the call is cancelled and fails with ``UNAVAILABLE``. The window is watched
by one thread per call, stopped when the call ends (or its iterator is closed or
garbage collected).

>>> reply = steadfast.call(stub.Sleep, SleepRequest(millis=1500), heartbeat_ms=500,
...                        timeout=10, on_progress=lambda hb: print(hb.seq))  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Callable, Iterator, Optional, Tuple

import grpc

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
from .blob import BlobLimits, BlobReader


class _Watchdog:
    """Cancels a call when no frame came for ``window`` seconds while its reader
    waited. One thread, which :meth:`stop` ends (and a garbage-collected stream)."""

    def __init__(self, window: float, cancel: Callable[[], Any]) -> None:
        self.window = window
        self._cancel = cancel
        self._cond = threading.Condition()
        self._waiting_since: Optional[float] = None
        self._last = time.monotonic()
        self._stopped = False
        #: Seconds of silence when it fired, else ``None``.
        self.fired: Optional[float] = None
        self._thread = threading.Thread(target=self._run, name="steadfast-liveness", daemon=True)
        self._thread.start()

    def begin_wait(self) -> None:
        with self._cond:
            self._waiting_since = time.monotonic()
            self._cond.notify()

    def end_wait(self, frame: bool) -> None:
        with self._cond:
            self._waiting_since = None
            if frame:
                self._last = time.monotonic()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if self._waiting_since is None:
                    self._cond.wait()
                    continue
                # A reader that paused between frames does not count as silence.
                since = max(self._last, self._waiting_since)
                left = since + self.window - time.monotonic()
                if left <= 0:
                    self.fired = time.monotonic() - since
                    break
                self._cond.wait(left)
        if self.fired is not None:
            self._cancel()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def stop_nowait(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()


class _FrameCall:
    """A call's frames: heartbeats to the callback, the other parts out."""

    def __init__(
        self, call: Any, window: Optional[float], on_progress: Optional[ProgressCallback]
    ) -> None:
        self.call = call
        self._on_progress = on_progress
        self._done = False
        self._watchdog = _Watchdog(window, call.cancel) if window else None
        if self._watchdog is not None:
            self._finalizer = weakref.finalize(self, _abandon, self._watchdog, call)

    def next_part(self) -> Optional[Part]:
        """The next part that is not a heartbeat, or ``None`` at the (OK) end."""
        if self._done:
            return None
        watchdog = self._watchdog
        try:
            while True:
                if watchdog is not None:
                    watchdog.begin_wait()
                try:
                    frame = next(self.call)
                except StopIteration:
                    if watchdog is not None:
                        watchdog.end_wait(False)
                    self.finish()
                    return None
                if watchdog is not None:
                    watchdog.end_wait(True)
                part = part_of(frame, self._on_progress)
                if part is not None:
                    return part
        except grpc.RpcError as error:
            fired = watchdog.fired if watchdog is not None else None
            self.cancel()
            if fired is not None and error.code() == grpc.StatusCode.CANCELLED:
                assert watchdog is not None
                raise errors.silent("frame", fired, watchdog.window) from None
            raise
        except BaseException:
            self.cancel()
            raise

    def finish(self) -> None:
        self._done = True
        if self._watchdog is not None:
            self._watchdog.stop()
            self._finalizer.detach()

    def cancel(self) -> None:
        """Cancels the call (a no-op once it ended) and stops the watchdog."""
        if not self._done:
            self.call.cancel()
        self.finish()


def _abandon(watchdog: _Watchdog, call: Any) -> None:
    watchdog.stop_nowait()
    call.cancel()


def _open(
    multicallable: Any,
    request: Any,
    heartbeat_ms: Optional[int],
    liveness: Optional[float],
    timeout: Optional[float],
    metadata: MetadataArg,
    on_progress: Optional[ProgressCallback],
    extra: Tuple[Tuple[str, str], ...] = (),
    **kwargs: Any,
) -> _FrameCall:
    window = window_seconds(heartbeat_ms, liveness)
    call = multicallable(request, timeout=timeout, metadata=with_framing(metadata, *extra), **kwargs)
    return _FrameCall(call, window, on_progress)


def call(
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
    """Calls a unary or client-streaming heartbeat method and returns its reply.

    ``multicallable`` is the stub's method of the wire protos (``stub.Sleep``);
    ``request`` its request (an iterator of requests for a client-streaming
    method, e.g. :meth:`BlobSource.upload <steadfast.BlobSource.upload>` for a
    ``request_blob`` one). ``heartbeat_ms`` sets the default liveness window
    (3 intervals), ``liveness`` the window itself in seconds; neither: no window.
    ``kwargs`` go to grpcio (``wait_for_ready``, ``compression``, ``credentials``).
    Raises ``grpc.RpcError``.
    """
    frames = _open(multicallable, request, heartbeat_ms, liveness, timeout, metadata, on_progress, **kwargs)
    return _read_unary(frames)


def _read_unary(frames: _FrameCall) -> Any:
    unary = Unary()
    try:
        while True:
            part = frames.next_part()
            if part is None:
                break
            unary.take(part)
    finally:
        frames.cancel()
    return unary.reply()


class HeartbeatStream(Messages):
    """The messages of a server-streaming (or bidi) heartbeat call, heartbeats hidden.

    Iterate it; :meth:`cancel` (or leaving a ``with`` block) cancels the call.
    """

    def __iter__(self) -> "HeartbeatStream":
        return self

    def __next__(self) -> Any:
        part = self._frames.next_part()
        if part is None:
            raise StopIteration
        return self._message(part)

    def __enter__(self) -> "HeartbeatStream":
        return self

    def __exit__(self, *exc: Any) -> None:
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
    """Calls a server-streaming or bidi heartbeat method; returns its messages.

    Arguments as in :func:`call`.

    >>> for tick in steadfast.stream(stub.Ticks, TicksRequest(count=3), heartbeat_ms=500):
    ...     print(tick.n)  # doctest: +SKIP
    """
    return HeartbeatStream(
        _open(multicallable, request, heartbeat_ms, liveness, timeout, metadata, on_progress, **kwargs)
    )


def download(
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
) -> Tuple[Any, BlobReader]:
    """Calls a ``response_blob`` method: returns its reply and a :class:`~steadfast.BlobReader`
    for the blob that follows (read it before the next call's deadline).

    Arguments as in :func:`call`; ``limits`` bounds the blob.
    """
    frames = _open(multicallable, request, heartbeat_ms, liveness, timeout, metadata, on_progress, **kwargs)
    return read_download(frames, limits)


def read_download(
    frames: _FrameCall, limits: Optional[BlobLimits], required: bool = True
) -> Tuple[Any, BlobReader]:
    """The message then the blob of a download's frames."""
    try:
        message = expect(frames.next_part(), "message", DOWNLOAD_FIRST, DOWNLOAD_NO_MESSAGE)
        header = expect(frames.next_part(), "blob", DOWNLOAD_HEADER, DOWNLOAD_NO_BLOB)
        reader = BlobReader(header, _chunks(frames), limits, frames.cancel)
    except BaseException:
        frames.cancel()
        raise
    return message, reader


def _chunks(frames: _FrameCall) -> Iterator[Any]:
    while True:
        part = frames.next_part()
        if part is None:
            return
        yield value_of(part, "chunk", DOWNLOAD_CHUNKS, frames.cancel)
