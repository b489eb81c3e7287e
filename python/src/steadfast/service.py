"""A stub made steadfast: calls by method name, the manifest saying which are framed.

>>> manifest = steadfast.Manifest.load("wire/steadfast.json")  # doctest: +SKIP
>>> lab = steadfast.Service(lab_pb2_grpc.LabStub(channel), "lab.v1.Lab", manifest)  # doctest: +SKIP
>>> lab.call("Sleep", lab_pb2.SleepRequest(millis=1500), timeout=10)  # doctest: +SKIP
>>> for tick in lab.stream("Ticks", lab_pb2.TicksRequest(count=3)): ...  # doctest: +SKIP
>>> lab.call("Digest", lab_pb2.DigestRequest(), blob=steadfast.BlobSource.from_path(p))  # doctest: +SKIP
>>> reply, blob = lab.download("Fetch", lab_pb2.FetchRequest(size=1 << 20))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple, Type

from . import heartbeat
from ._frames import MetadataArg, ProgressCallback
from ._resolve import lookup, method_path, upload_type
from .blob import BlobLimits, BlobReader, BlobSource
from .manifest import Manifest, MethodInfo


class Service:
    """The methods of a stub generated from the wire protos, by name.

    ``stub`` is the generated stub (``LabStub(channel)``), ``service`` the
    service's full name (``"lab.v1.Lab"``), ``manifest`` the codegen's
    ``steadfast.json``: a method it lists is called framed (``steadfast-framing:
    v1``, heartbeats hidden, its liveness window 3 × its interval), one it does not
    list as the plain method it is. ``liveness``, ``metadata`` and ``limits`` are
    defaults for every call.
    """

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

    def _md(self, metadata: MetadataArg) -> List[Tuple[str, Any]]:
        return self._metadata + list(metadata or ())

    def call(
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
        """Calls a unary or client-streaming ``method``; returns its reply.

        ``blob`` is the input of a ``request_blob`` method (its upload message
        is found by the naming rule, or given as ``upload``).
        """
        multicallable, info, request = self._prepare(method, request, blob, upload)
        if info is None:
            return multicallable(request, timeout=timeout, metadata=self._md(metadata), **kwargs)
        return heartbeat.call(
            multicallable,
            request,
            heartbeat_ms=info.heartbeat_ms,
            liveness=liveness if liveness is not None else self._liveness,
            timeout=timeout,
            metadata=self._md(metadata),
            on_progress=on_progress,
            **kwargs,
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
        """Calls a server-streaming or bidi ``method``; returns an iterator of its messages."""
        multicallable, info, request = self._prepare(method, request, None, None)
        if info is None:
            return multicallable(request, timeout=timeout, metadata=self._md(metadata), **kwargs)
        return heartbeat.stream(
            multicallable,
            request,
            heartbeat_ms=info.heartbeat_ms,
            liveness=liveness if liveness is not None else self._liveness,
            timeout=timeout,
            metadata=self._md(metadata),
            on_progress=on_progress,
            **kwargs,
        )

    def download(
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
    ) -> Tuple[Any, BlobReader]:
        """Calls a ``response_blob`` ``method``; returns its reply and a :class:`BlobReader`."""
        multicallable, info, request = self._prepare(method, request, blob, upload)
        return heartbeat.download(
            multicallable,
            request,
            heartbeat_ms=info.heartbeat_ms if info else None,
            liveness=liveness if liveness is not None else self._liveness,
            timeout=timeout,
            metadata=self._md(metadata),
            on_progress=on_progress,
            limits=limits or self._limits,
            **kwargs,
        )
