"""Resolving a call's arguments: a method's manifest entry, its generated upload
message, its framed call's heartbeat interval, liveness and metadata; and
:class:`ServiceCalls`, what the sync and aio ``Service`` share (all but the I/O)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Type

from google.protobuf import message_factory

from ._frames import MetadataArg
from .blob import BlobLimits, BlobSource
from .manifest import Manifest, MethodInfo


def method_path(service: str, method: str) -> str:
    """``/package.Service/Method``."""
    return f"/{service}/{method}"


def lookup(manifest: Optional[Manifest], service: str, method: str) -> Optional[MethodInfo]:
    if manifest is None:
        return None
    return manifest.get(method_path(service, method))


def upload_type(service: str, method: str, head: Any) -> Type[Any]:
    """The generated ``<Service><Method>Upload`` class of a ``request_blob`` method,
    found by the wire naming rule in ``head``'s descriptor pool."""
    package, _, name = service.rpartition(".")
    full = f"{package}.{name}{method}Upload" if package else f"{name}{method}Upload"
    pool = head.DESCRIPTOR.file.pool
    try:
        descriptor = pool.FindMessageTypeByName(full)
    except KeyError:
        raise LookupError(
            f"no message {full} (the upload of {service}/{method}) is loaded: import the "
            "module generated from the wire protos, or pass upload_type="
        ) from None
    return message_factory.GetMessageClass(descriptor)


class ServiceCalls:
    """The base of :class:`steadfast.Service` and :class:`steadfast.aio.Service`
    (which add the calls): the arguments of a call resolved, no I/O. The
    constructor's arguments are documented on :class:`steadfast.Service`."""

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
        """The stub's method, its manifest entry and the request: ``blob``'s upload
        messages (headed by ``request``) for a ``request_blob`` method."""
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
        """The service's metadata, then the call's."""
        return self._metadata + list(metadata or ())

    def _framed(
        self, info: Optional[MethodInfo], liveness: Optional[float], metadata: MetadataArg
    ) -> Dict[str, Any]:
        """A framed call's ``heartbeat_ms``, ``liveness`` and ``metadata`` arguments."""
        return {
            "heartbeat_ms": info.heartbeat_ms if info else None,
            "liveness": liveness if liveness is not None else self._liveness,
            "metadata": self._md(metadata),
        }
