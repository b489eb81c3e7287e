"""steadfast for Python: call steadfast gRPC services with grpcio and grpc.aio.

- heartbeat calls (:func:`call`, :func:`stream`, :func:`download`, :class:`Service`):
  replies with heartbeats hidden, progress callbacks, a liveness window, deadlines;
- blobs (:class:`BlobSource`, :class:`BlobReader`): chunked zstd or raw, verified;
- dispatch (:class:`Dispatch`): code-first functions by ``x-func-name``;
- the codegen's manifest (:class:`Manifest`); errors (:class:`StatusError`);
- streams across restarts (:mod:`steadfast.session`): reconnecting bidi and
  client-streaming sessions, resuming server streams;
- retry policies (:mod:`steadfast.retry`): the codegen's ``service_config.json``
  as channel options;
- :mod:`steadfast.aio`: the same over ``grpc.aio``.
"""

from . import aio, errors, retry, session
from ._frames import FRAMING
from .blob import BlobDecoder, BlobLimits, BlobReader, BlobSource
from .dispatch import Dispatch, FunctionInfo
from .errors import StatusError
from .heartbeat import HeartbeatStream, call, download, stream
from .manifest import Manifest, MethodInfo, channel_options
from .retry import RetryPolicy, ServiceConfig, insecure_channel
from .service import Service
from .session import Ack, ClientStreamingSession, ResumingStream, Session, SessionError

__version__ = "0.1.0"

__all__ = [
    "FRAMING",
    "Ack",
    "ClientStreamingSession",
    "ResumingStream",
    "RetryPolicy",
    "ServiceConfig",
    "Session",
    "SessionError",
    "insecure_channel",
    "retry",
    "session",
    "BlobDecoder",
    "BlobLimits",
    "BlobReader",
    "BlobSource",
    "Dispatch",
    "FunctionInfo",
    "HeartbeatStream",
    "Manifest",
    "MethodInfo",
    "Service",
    "StatusError",
    "aio",
    "call",
    "channel_options",
    "download",
    "errors",
    "stream",
]
