"""Finding a method's manifest entry and its generated upload message."""

from __future__ import annotations

from typing import Any, Optional, Type

from google.protobuf import message_factory

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
