"""The manifest ``steadfast-codegen wire`` writes beside the wire protos.

``steadfast.json`` says, for each method steadfast rewrote, its heartbeat
interval and whether it carries a blob each way::

    {"version": 1,
     "methods": {"/lab.v1.Lab/Sleep": {"heartbeat_ms": 500,
                                       "request_blob": false,
                                       "response_blob": false}}}

grpcio's multicallables do not tell their method's name, so calls look a method
up by its full path (``/package.Service/Method``); :class:`steadfast.Service` does
that for you. ``service_config.json`` (the gRPC service config written beside it)
goes to a channel with :func:`channel_options`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from . import retry

PathLike = Union[str, "os.PathLike[str]"]

#: The manifest's file name in a wire directory.
MANIFEST_FILE = "steadfast.json"
#: The service config's file name in a wire directory.
SERVICE_CONFIG_FILE = "service_config.json"


@dataclass(frozen=True)
class MethodInfo:
    """What the manifest says of one method."""

    #: Full path, ``/package.Service/Method``.
    path: str
    #: Heartbeat interval in milliseconds; 0 when the method sends none.
    heartbeat_ms: int = 0
    #: The request carries a blob (``<Service><Method>Upload``).
    request_blob: bool = False
    #: The response carries a blob after the message.
    response_blob: bool = False


class Manifest:
    """Methods by full path, from ``steadfast.json``.

    >>> m = Manifest.from_dict({"version": 1, "methods": {"/lab.v1.Lab/Sleep": {"heartbeat_ms": 500}}})
    >>> m.heartbeat_ms("/lab.v1.Lab/Sleep")
    500
    """

    def __init__(self, methods: Mapping[str, MethodInfo]) -> None:
        self._methods: Dict[str, MethodInfo] = dict(methods)

    @classmethod
    def load(cls, path: PathLike) -> "Manifest":
        """Reads ``steadfast.json`` (``path`` may also be the directory holding it)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, MANIFEST_FILE)
        with open(path, encoding="utf-8") as file:
            return cls.from_dict(json.load(file))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Manifest":
        """A manifest from its parsed JSON; raises ``ValueError`` on another version."""
        version = data.get("version")
        if version != 1:
            raise ValueError(f"steadfast manifest version {version!r} is not supported (1 is)")
        methods: Dict[str, MethodInfo] = {}
        for path, entry in dict(data.get("methods", {})).items():
            methods[path] = MethodInfo(
                path=path,
                heartbeat_ms=int(entry.get("heartbeat_ms", 0)),
                request_blob=bool(entry.get("request_blob", False)),
                response_blob=bool(entry.get("response_blob", False)),
            )
        return cls(methods)

    def get(self, path: str) -> Optional[MethodInfo]:
        """The method at ``path`` (``/package.Service/Method``), or ``None``."""
        return self._methods.get(path)

    def heartbeat_ms(self, path: str) -> int:
        """The heartbeat interval of ``path``; 0 when it has none or is not listed."""
        info = self._methods.get(path)
        return info.heartbeat_ms if info else 0

    def methods(self) -> List[MethodInfo]:
        """Every method, sorted by path."""
        return [self._methods[p] for p in sorted(self._methods)]

    def __contains__(self, path: object) -> bool:
        return path in self._methods

    def __repr__(self) -> str:
        return f"Manifest({len(self._methods)} methods)"


def channel_options(path: PathLike) -> List[Tuple[str, Any]]:
    """Channel options that apply a gRPC service config file (``service_config.json``,
    or the directory holding it), with retries on:
    ``grpc.insecure_channel(addr, options=channel_options(p))``. See
    :func:`steadfast.retry.channel_options` for configs given as text or a dict.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, SERVICE_CONFIG_FILE)
    return retry.channel_options(path)
