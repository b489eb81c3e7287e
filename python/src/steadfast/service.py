"""A stub made steadfast: calls by method name, the manifest saying which are framed.

>>> manifest = steadfast.Manifest.load("wire/steadfast.json")  # doctest: +SKIP
>>> lab = steadfast.Service(lab_pb2_grpc.LabStub(channel), "lab.v1.Lab", manifest)  # doctest: +SKIP
>>> lab.call("Sleep", lab_pb2.SleepRequest(millis=1500), timeout=10)  # doctest: +SKIP
>>> for tick in lab.stream("Ticks", lab_pb2.TicksRequest(count=3)): ...  # doctest: +SKIP
>>> lab.call("Digest", lab_pb2.DigestRequest(), blob=steadfast.BlobSource.from_path(p))  # doctest: +SKIP
>>> reply, blob = lab.download("Fetch", lab_pb2.FetchRequest(size=1 << 20))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Optional, Tuple, Type

from . import heartbeat
from ._frames import MetadataArg, ProgressCallback
from ._resolve import ServiceCalls
from .blob import BlobLimits, BlobReader, BlobSource


class Service(ServiceCalls):
    """The methods of a stub generated from the wire protos, by name.

    ``stub`` is the generated stub (``LabStub(channel)``), ``service`` the
    service's full name (``"lab.v1.Lab"``), ``manifest`` the codegen's
    ``steadfast.json``: a method it lists is called framed (``steadfast-framing:
    v1``, heartbeats hidden, its liveness window 3 × its interval), one it does not
    list as the plain method it is. ``liveness``, ``metadata`` and ``limits`` are
    defaults for every call.
    """

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
        """Calls a server-streaming or bidi ``method``; returns an iterator of its messages."""
        multicallable, info, request = self._prepare(method, request, None, None)
        if info is None:
            return multicallable(request, timeout=timeout, metadata=self._md(metadata), **kwargs)
        return heartbeat.stream(
            multicallable, request, timeout=timeout, on_progress=on_progress,
            **self._framed(info, liveness, metadata), **kwargs,
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
            multicallable, request, timeout=timeout, on_progress=on_progress,
            limits=limits or self._limits, **self._framed(info, liveness, metadata), **kwargs,
        )
