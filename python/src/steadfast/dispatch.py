"""A client of ``steadfast.v1.Dispatch``: code-first functions called by name.

The function is picked with the ``x-func-name`` metadata, its params go as JSON,
its result comes back as JSON; a function may take an input blob and return an
output blob. ``x-upstream`` names a backend group for a proxy that routes by it.

>>> model = steadfast.Dispatch(channel)  # doctest: +SKIP
>>> model.call("hello", {"name": "Ada"})  # doctest: +SKIP
'hello, Ada from model'
>>> model.call("predict", {"delay_ms": 500}, blob=steadfast.BlobSource.from_path(p),
...            on_progress=print)  # doctest: +SKIP
>>> result, blob = model.download("echo_blob", None, blob=steadfast.BlobSource.from_bytes(b"x"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import grpc

from . import errors, heartbeat
from ._frames import MetadataArg, ProgressCallback
from .blob import BlobLimits, BlobReader, BlobSource
from .v1 import dispatch_pb2, dispatch_pb2_grpc

#: The metadata key that picks the function.
FUNC_NAME = "x-func-name"
#: The metadata key a proxy routes by.
UPSTREAM = "x-upstream"


@dataclass(frozen=True)
class FunctionInfo:
    """One function a dispatch server offers (from ``Describe``)."""

    name: str
    doc: str
    #: Heartbeat interval in milliseconds; 0 when it sends none.
    heartbeat_ms: int
    takes_blob: bool
    returns_blob: bool
    #: JSON Schema of the params (parsed), or ``None`` when the server has none.
    params_schema: Optional[Dict[str, Any]]
    #: JSON Schema of the result (parsed), or ``None``.
    result_schema: Optional[Dict[str, Any]]
    is_default: bool

    @classmethod
    def from_proto(cls, info: dispatch_pb2.FunctionInfo) -> "FunctionInfo":
        return cls(
            name=info.name,
            doc=info.doc,
            heartbeat_ms=info.heartbeat_ms,
            takes_blob=info.takes_blob,
            returns_blob=info.returns_blob,
            params_schema=json.loads(info.params_schema) if info.params_schema else None,
            result_schema=json.loads(info.result_schema) if info.result_schema else None,
            is_default=info.is_default,
        )


def encode_params(params: Any) -> bytes:
    """Params as the JSON a ``CallHead`` carries."""
    return json.dumps(params, separators=(",", ":")).encode()


def upload_head(params: Any) -> dispatch_pb2.DispatchUpload:
    """The first request of a call: its head, with ``params``."""
    return dispatch_pb2.DispatchUpload(head=dispatch_pb2.CallHead(params=encode_params(params)))


def requests(params: Any, blob: Optional[BlobSource]) -> Iterator[dispatch_pb2.DispatchUpload]:
    """The request stream of a call: the head, then the blob's header and chunks."""
    if blob is None:
        return iter([upload_head(params)])
    return blob.upload(dispatch_pb2.DispatchUpload, upload_head(params).head)


def call_metadata(
    name: Optional[str], upstream: Optional[str], metadata: MetadataArg
) -> List[Tuple[str, Any]]:
    out = list(metadata or ())
    if name is not None:
        out.append((FUNC_NAME, name))
    if upstream is not None:
        out.append((UPSTREAM, upstream))
    return out


def decode_result(result: dispatch_pb2.CallResult) -> Any:
    try:
        return json.loads(result.result) if result.result else None
    except ValueError as error:
        raise errors.internal(f"the function's result is not JSON: {error}") from None


class _DispatchCalls:
    """The base of :class:`steadfast.Dispatch` and :class:`steadfast.aio.Dispatch`
    (which add the I/O): their defaults, the functions ``Describe`` told, a call's
    arguments resolved."""

    def __init__(
        self,
        stub: dispatch_pb2_grpc.DispatchStub,
        *,
        upstream: Optional[str],
        metadata: MetadataArg,
        liveness: Optional[float],
        limits: Optional[BlobLimits],
    ) -> None:
        self.stub = stub
        self._upstream = upstream
        self._metadata = list(metadata or ())
        self._liveness = liveness
        self._limits = limits
        self._functions: Optional[Dict[str, FunctionInfo]] = None

    def _describe_metadata(self) -> List[Tuple[str, Any]]:
        return call_metadata(None, self._upstream, self._metadata)

    def _keep(self, reply: dispatch_pb2.DescribeReply) -> List[FunctionInfo]:
        """The functions of a ``Describe`` reply, kept for the calls' intervals."""
        functions = [FunctionInfo.from_proto(f) for f in reply.functions]
        self._functions = {f.name: f for f in functions}
        return functions

    def _must_describe(self, heartbeat_ms: Optional[int]) -> bool:
        """Whether a call needs ``Describe`` (asked once) for its interval; a
        failed one leaves ``_functions`` empty."""
        return heartbeat_ms is None and self._liveness is None and self._functions is None

    def _framed(
        self,
        name: Optional[str],
        upstream: Optional[str],
        heartbeat_ms: Optional[int],
        metadata: MetadataArg,
    ) -> Dict[str, Any]:
        """A call's ``heartbeat_ms``, ``liveness`` and ``metadata`` (``x-func-name``,
        ``x-upstream``) arguments."""
        if heartbeat_ms is None and self._liveness is None:
            for function in (self._functions or {}).values():
                if function.name == name or (name is None and function.is_default):
                    heartbeat_ms = function.heartbeat_ms
                    break
        return {
            "heartbeat_ms": heartbeat_ms,
            "liveness": self._liveness,
            "metadata": call_metadata(
                name, upstream or self._upstream, self._metadata + list(metadata or ())
            ),
        }


class Dispatch(_DispatchCalls):
    """A dispatch client over a grpcio channel.

    ``upstream`` and ``metadata`` are defaults for every call. A call's liveness
    window is ``liveness`` seconds, else 3 × the function's ``heartbeat_ms`` (from
    the argument, else from ``Describe``, asked once and kept; a server that does
    not answer it leaves calls without a window, only their deadline).
    """

    def __init__(
        self,
        channel: grpc.Channel,
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

    def describe(self, *, timeout: Optional[float] = 10.0) -> List[FunctionInfo]:
        """The functions the server offers, sorted by name."""
        reply = self.stub.Describe(
            dispatch_pb2.DescribeRequest(), timeout=timeout, metadata=self._describe_metadata()
        )
        return self._keep(reply)

    def _open(
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
    ) -> Any:
        if self._must_describe(heartbeat_ms):
            try:
                self.describe()
            except grpc.RpcError:
                self._functions = {}
        return heartbeat._open(
            self.stub.Call, requests(params, blob), timeout=timeout, on_progress=on_progress,
            **self._framed(name, upstream, heartbeat_ms, metadata), **kwargs,
        )

    def call(
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
        """Calls function ``name`` (``None``: the server's default) with ``params``
        (anything ``json.dumps`` takes) and returns its result, decoded.

        ``blob`` is the function's input; a function that returns a blob is
        called with :meth:`download`. Raises ``grpc.RpcError``: unknown name →
        ``UNIMPLEMENTED``, bad params → ``INVALID_ARGUMENT``, ...
        """
        frames = self._open(
            name, params, blob, upstream, timeout, on_progress, heartbeat_ms, metadata, kwargs
        )
        return decode_result(heartbeat._read_unary(frames))

    def download(
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
    ) -> Tuple[Any, BlobReader]:
        """Calls a function that returns a blob: its result and a :class:`BlobReader`."""
        frames = self._open(
            name, params, blob, upstream, timeout, on_progress, heartbeat_ms, metadata, kwargs
        )
        message, reader = heartbeat.read_download(frames, limits or self._limits)
        return decode_result(message), reader
