"""Errors the package raises itself, as ``grpc.RpcError`` with a gRPC status code.

grpcio's own errors (a status the server sent, ``DEADLINE_EXCEEDED`` of the call's
deadline) pass through unchanged; :class:`StatusError` is for the statuses this
package decides on the client: a silent server (``UNAVAILABLE``), a corrupt blob
(``DATA_LOSS``), a blob over a limit (``RESOURCE_EXHAUSTED``), a protocol violation
(``INTERNAL``). Their messages are the Rust client's.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import grpc

Metadata = Tuple[Tuple[str, "str | bytes"], ...]


class StatusError(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A failed call, as grpcio's errors: ``code()``, ``details()``, ``trailing_metadata()``
    (and the rest of :class:`grpc.Call`, for a call that is over).

    >>> err = StatusError(grpc.StatusCode.DATA_LOSS, "a chunk came after the blob's last chunk")
    >>> err.code().name, err.details()
    ('DATA_LOSS', "a chunk came after the blob's last chunk")
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        trailing_metadata: Optional[Sequence[Tuple[str, "str | bytes"]]] = None,
    ) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details
        self._trailing: Metadata = tuple(trailing_metadata or ())

    def code(self) -> grpc.StatusCode:
        """The gRPC status code."""
        return self._code

    def details(self) -> str:
        """The status message."""
        return self._details

    def trailing_metadata(self) -> Metadata:
        """Trailing metadata (empty for a status decided on the client)."""
        return self._trailing

    def initial_metadata(self) -> Metadata:
        """Initial metadata (empty for a status decided on the client)."""
        return ()

    def is_active(self) -> bool:
        """``False``: the call is over."""
        return False

    def time_remaining(self) -> Optional[float]:
        """``None``: the call is over."""
        return None

    def cancel(self) -> bool:
        """``False``: the call is over."""
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """``False``: the call is over."""
        return False

    def debug_error_string(self) -> str:
        """``CODE: details``, like grpcio's."""
        return str(self)

    def __repr__(self) -> str:
        return f"StatusError({self._code}, {self._details!r})"


def data_loss(details: str) -> StatusError:
    """A ``DATA_LOSS`` error (a corrupt or incomplete blob)."""
    return StatusError(grpc.StatusCode.DATA_LOSS, details)


def resource_exhausted(details: str) -> StatusError:
    """A ``RESOURCE_EXHAUSTED`` error (a blob over a limit)."""
    return StatusError(grpc.StatusCode.RESOURCE_EXHAUSTED, details)


def invalid_argument(details: str) -> StatusError:
    """An ``INVALID_ARGUMENT`` error."""
    return StatusError(grpc.StatusCode.INVALID_ARGUMENT, details)


def internal(details: str) -> StatusError:
    """An ``INTERNAL`` error (the server broke the frame protocol)."""
    return StatusError(grpc.StatusCode.INTERNAL, details)


def format_duration(seconds: float) -> str:
    """A duration as Rust's ``Debug`` prints it, whole milliseconds: ``1.5s``, ``500ms``."""
    millis = max(0, int(seconds * 1000))
    if millis >= 1000:
        whole, frac = divmod(millis, 1000)
        return f"{whole}.{frac:03d}".rstrip("0").rstrip(".") + "s"
    return f"{millis}ms"


def silent(what: str, silence: float, window: float) -> StatusError:
    """The ``UNAVAILABLE`` error of a call whose server stayed silent too long."""
    return StatusError(
        grpc.StatusCode.UNAVAILABLE,
        f"no {what} from the server for {format_duration(silence)} "
        f"(liveness window {format_duration(window)}); call abandoned",
    )
