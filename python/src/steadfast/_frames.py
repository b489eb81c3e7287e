"""What the sync and the aio surfaces share: metadata, windows, frame parts."""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

from . import errors

#: The request metadata that asks a steadfast server for the wire shape (frames).
FRAMING: Tuple[str, str] = ("steadfast-framing", "v1")

#: The liveness window is this many heartbeat intervals by default.
WINDOW_INTERVALS = 3

MetadataArg = Optional[Sequence[Tuple[str, Any]]]
ProgressCallback = Callable[[Any], None]
#: A frame that is not a heartbeat: ``(kind, value)``, kind ``message``, ``blob`` or ``chunk``.
Part = Tuple[str, Any]

SECOND_MESSAGE = "protocol violation: the server sent a second message on a unary heartbeat call"
NO_MESSAGE = "protocol violation: the server ended a unary heartbeat call without a message"
NO_KIND = "protocol violation: the server sent a frame with no kind set"
BLOB_WITHOUT = "protocol violation: the server sent a blob on a method without one"
DOWNLOAD_NO_MESSAGE = "protocol violation: the server ended a blob download without a message"
DOWNLOAD_FIRST = "protocol violation: a blob download must start with its message"
DOWNLOAD_HEADER = (
    "protocol violation: a blob download must send the blob's header after its message"
)
DOWNLOAD_NO_BLOB = "protocol violation: the server ended a blob download without its blob"
DOWNLOAD_CHUNKS = (
    "protocol violation: a blob download sent something other than chunks after its blob header"
)


def with_framing(metadata: MetadataArg, *extra: Tuple[str, str]) -> List[Tuple[str, Any]]:
    """``metadata`` plus ``steadfast-framing: v1`` (once) and ``extra``."""
    out = [(k, v) for k, v in (metadata or ()) if k.lower() != FRAMING[0]]
    out.append(FRAMING)
    out.extend(extra)
    return out


def window_seconds(heartbeat_ms: Optional[int], liveness: Optional[float]) -> Optional[float]:
    """The liveness window: ``liveness`` seconds, else 3 intervals, else none."""
    if liveness is not None:
        if liveness <= 0:
            raise ValueError(f"liveness must be positive seconds, not {liveness}")
        return float(liveness)
    if heartbeat_ms:
        return WINDOW_INTERVALS * heartbeat_ms / 1000.0
    return None


def part_of(frame: Any, on_progress: Optional[ProgressCallback]) -> Optional[Part]:
    """``None`` for a heartbeat (given to ``on_progress``), else ``(kind, value)``
    with kind ``message``, ``blob`` or ``chunk``."""
    kind = frame.WhichOneof("kind")
    if kind == "heartbeat":
        if on_progress is not None:
            on_progress(frame.heartbeat)
        return None
    if kind is None:
        raise errors.internal(NO_KIND)
    return kind, getattr(frame, kind)


def value_of(part: Part, kind: str, wrong: str, cancel: Optional[Callable[[], Any]] = None) -> Any:
    """The value of ``part`` if it is a ``kind``; else ``cancel()`` (when given) and
    the protocol violation ``wrong`` (``INTERNAL``)."""
    got, value = part
    if got != kind:
        if cancel is not None:
            cancel()
        raise errors.internal(wrong)
    return value


def expect(part: Optional[Part], kind: str, wrong: str, ended: str) -> Any:
    """:func:`value_of` for a part the call must send: its end (``None``) is the
    protocol violation ``ended``."""
    if part is None:
        raise errors.internal(ended)
    return value_of(part, kind, wrong)


class Unary:
    """The reply of a unary heartbeat call, collected from its parts: one message."""

    def __init__(self) -> None:
        self._message: Any = None
        self._seen = False

    def take(self, part: Part) -> None:
        """Takes the next part: a message, the first and only one."""
        message = value_of(part, "message", BLOB_WITHOUT)
        if self._seen:
            raise errors.internal(SECOND_MESSAGE)
        self._message, self._seen = message, True

    def reply(self) -> Any:
        """The message, once the call ended; none is a protocol violation."""
        if not self._seen:
            raise errors.internal(NO_MESSAGE)
        return self._message


class Messages:
    """What the sync and aio ``HeartbeatStream`` share: their call, :meth:`cancel`,
    and a part's check (a message; anything else cancels the call)."""

    def __init__(self, frames: Any) -> None:
        self._frames = frames

    def _message(self, part: Part) -> Any:
        return value_of(part, "message", BLOB_WITHOUT, self._frames.cancel)

    @property
    def call(self) -> Any:
        """grpcio's (or grpc.aio's) call: ``initial_metadata()``, ``trailing_metadata()``, ..."""
        return self._frames.call

    def cancel(self) -> None:
        """Cancels the call if it is still running."""
        self._frames.cancel()
