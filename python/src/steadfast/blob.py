"""Blobs: sending one (:class:`BlobSource`) and receiving one (:class:`BlobReader`).

A blob travels as a :class:`~steadfast.v1.frame_pb2.BlobHeader` (declared size,
codec) then :class:`~steadfast.v1.frame_pb2.Chunk` messages: with ``CODEC_ZSTD``
one zstd frame carrying zstd's content checksum, with ``CODEC_NONE`` the bytes as
they are with their XXH3-64 (seed 0) in the last chunk's ``checksum``; offsets
contiguous over the wire bytes, ``last`` set on the final chunk.

Sending reads and compresses a block (256 KiB) at a time: memory does not grow
with the blob. Receiving checks every rule steadfast's Rust reader checks, with
the same status codes and messages: a gap or a chunk out of order, a chunk after
the last, a corrupt stream or a checksum mismatch, a declared size not met, a
truncated blob → ``DATA_LOSS``; a blob or chunk over the limits (:class:`BlobLimits`)
→ ``RESOURCE_EXHAUSTED``; an unknown codec or a zstd frame without its checksum →
``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import io
import os
import queue
import stat
import tempfile
import threading
from dataclasses import dataclass
from typing import (
    Any,
    BinaryIO,
    Callable,
    ContextManager,
    Iterable,
    Iterator,
    List,
    Optional,
    Type,
    TypeVar,
    Union,
)

import xxhash
import zstandard

from . import errors
from .v1 import frame_pb2

PathLike = Union[str, "os.PathLike[str]"]
M = TypeVar("M")
T = TypeVar("T")

#: Default size of a chunk's (compressed) data, like steadfast's Rust sender.
DEFAULT_CHUNK_BYTES = 128 * 1024
#: The largest chunk a steadfast receiver takes by default (1 MiB).
MAX_CHUNK_BYTES = 1 << 20
#: Default zstd level.
DEFAULT_LEVEL = 3
#: Uncompressed bytes read per step (and the block the codec is chosen on).
BLOCK_BYTES = 256 * 1024
#: ``codec="auto"`` sends raw unless level 1 shrinks the first block below this %.
AUTO_RAW_PERCENT = 97
#: Empty chunks (but the last) a receiver takes in a row.
MAX_EMPTY_CHUNKS = 1024
#: Compressed bytes handed to zstd per step when receiving. zstd expands a byte by
#: at most 32768 (an RLE block: 4 bytes for 128 KiB), so one step allocates at most
#: 32 MiB before the declared size and the limit are checked again.
DECODE_SLICE_BYTES = 1024

CODECS = ("auto", "zstd", "none")
#: zstd's match tables at levels 2 and 3 hold 2^14 entries, as the Rust sender's
#: (zstd's own size them for one pass over memory; smaller ones stay in a core's
#: cache and compress about 1.3 times as fast for a few percent more bytes).
TABLE_LOG = 14
#: Chunks the compressing thread may make ahead of the call (bounded memory).
AHEAD_CHUNKS = 4
#: grpcio channel options for downloads in bounded memory: without BDP probing,
#: grpcio's flow-control window grows with a fast server while Python lags it
#: (a 1 GiB download peaked at 65-312 MiB); 4 MiB of lookahead keeps it fast.
#: ``grpc.insecure_channel(addr, options=steadfast.blob.DOWNLOAD_CHANNEL_OPTIONS)``.
DOWNLOAD_CHANNEL_OPTIONS = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 4 << 20)]


@dataclass(frozen=True)
class BlobLimits:
    """What a receiver accepts: Rust's ``BlobLimits`` defaults (16 GiB, window log 23, 1 MiB chunks)."""

    #: Largest blob, in uncompressed bytes.
    max_size: int = 16 << 30
    #: Largest zstd window, as a power of two.
    window_log_max: int = 23
    #: Largest chunk, in wire bytes.
    max_chunk: int = MAX_CHUNK_BYTES


class BlobSource:
    """What a blob is sent from: bytes, a path or a binary file object.

    Nothing is read until the call sends it; a path is opened then and read a
    block at a time. ``codec`` is ``"auto"`` (the default: zstd level 1 on the
    first 256 KiB must shrink it below 97 %, else the blob goes raw; an empty blob
    goes raw), ``"zstd"`` or ``"none"``. ``level`` is the zstd level (3),
    ``chunk_bytes`` the chunk size (128 KiB, at most 1 MiB), ``workers`` zstd's
    own threads (0: none; 2 uses two cores and more memory). zstd compresses on a
    thread of the source's own, a few chunks ahead of the call, and stops with it.

    >>> BlobSource.from_bytes(b"hello").size
    5
    >>> src = BlobSource.from_path("model.bin", level=1)  # doctest: +SKIP
    """

    def __init__(
        self,
        opener: Callable[[], ContextManager[BinaryIO]],
        size: Optional[int],
        *,
        codec: str = "auto",
        level: int = DEFAULT_LEVEL,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        workers: int = 0,
        reusable: bool = True,
        description: str = "a blob",
    ) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {CODECS}, not {codec!r}")
        if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
            raise ValueError(f"chunk_bytes must be in 1..={MAX_CHUNK_BYTES}, not {chunk_bytes}")
        if workers < 0:
            raise ValueError(f"workers must not be negative, not {workers}")
        if size is not None and size < 0:
            raise ValueError(f"size must not be negative, not {size}")
        self._opener = opener
        #: The declared uncompressed size, or ``None`` when unknown.
        self.size = size
        self.codec = codec
        self.level = level
        self.chunk_bytes = chunk_bytes
        self.workers = workers
        self._reusable = reusable
        self._used = False
        self._description = description

    @classmethod
    def from_bytes(cls, data: bytes, **settings: Any) -> "BlobSource":
        """A blob of ``data`` (``codec``, ``level``, ``chunk_bytes`` as in the class)."""
        data = bytes(data)
        return cls(lambda: io.BytesIO(data), len(data), description=f"{len(data)} bytes", **settings)

    @classmethod
    def from_path(cls, path: PathLike, **settings: Any) -> "BlobSource":
        """A blob of the file at ``path``; its size is declared from its metadata."""
        path = os.fspath(path)
        meta = os.stat(path)
        # A FIFO or a device has no size: it is read to its end.
        size = meta.st_size if stat.S_ISREG(meta.st_mode) else None
        return cls(lambda: open(path, "rb"), size, description=f"file {path}", **settings)

    @classmethod
    def from_file(cls, file: BinaryIO, *, size: Optional[int] = None, **settings: Any) -> "BlobSource":
        """A blob read from the binary file object ``file`` to its end (once: it is
        not rewound, nor closed). ``size``, when given, is declared and checked."""
        return cls(
            lambda: _Unclosed(file), size, reusable=False, description="a file object", **settings
        )

    def __repr__(self) -> str:
        return (
            f"BlobSource({self._description}, size={self.size}, codec={self.codec!r}, "
            f"level={self.level}, chunk_bytes={self.chunk_bytes})"
        )

    def parts(self) -> Iterator[Union[frame_pb2.BlobHeader, frame_pb2.Chunk]]:
        """The blob on the wire: its header, then its chunks to the last one."""
        if self._used and not self._reusable:
            raise ValueError("this BlobSource reads a file object and was sent already")
        self._used = True
        with self._opener() as file:
            blocks = _blocks(file, self.size)
            first = next(blocks, b"")
            codec = self.codec
            if codec == "auto":
                codec = _probe(first)
            rest = _chain(first, blocks)
            if codec == "zstd":
                yield frame_pb2.BlobHeader(size=self.size, codec=frame_pb2.CODEC_ZSTD)
                chunks = _zstd_chunks(rest, self.size, self.level, self.chunk_bytes, self.workers)
                yield from _Ahead(chunks, AHEAD_CHUNKS)
            else:
                yield frame_pb2.BlobHeader(size=self.size, codec=frame_pb2.CODEC_NONE)
                yield from _raw_chunks(rest, self.chunk_bytes)

    def upload(self, upload_type: Type[M], head: Any) -> Iterator[M]:
        """The request stream of a ``request_blob`` method: ``upload_type`` (the
        generated ``<Service><Method>Upload``) with ``head``, then the blob's header
        and chunks."""
        yield upload_type(head=head)  # type: ignore[call-arg]
        for part in self.parts():
            if isinstance(part, frame_pb2.BlobHeader):
                yield upload_type(blob=part)  # type: ignore[call-arg]
            else:
                yield upload_type(chunk=part)  # type: ignore[call-arg]


class _Unclosed:
    """A file object a ``with`` does not close (the caller owns it)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def __enter__(self) -> BinaryIO:
        return self._file

    def __exit__(self, *exc: Any) -> None:
        return None


def _blocks(file: BinaryIO, size: Optional[int]) -> Iterator[bytes]:
    """The file a block at a time; raises ``ValueError`` when it is not ``size`` long."""
    read = 0
    while True:
        block = file.read(BLOCK_BYTES)
        if not block:
            break
        read += len(block)
        if size is not None and read > size:
            raise ValueError(f"the blob source gave {read} bytes or more, but declared {size}")
        yield block
    if size is not None and read < size:
        raise ValueError(f"the blob source gave {read} bytes, declared {size} (it ended early)")


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _probe(first: bytes) -> str:
    """``"zstd"`` when level 1 shrinks ``first`` below 97 % of its size, else ``"none"``."""
    if not first:
        return "none"
    compressed = zstandard.ZstdCompressor(level=1).compress(first)
    return "zstd" if len(compressed) <= len(first) * AUTO_RAW_PERCENT // 100 else "none"


def _compressor(level: int, size: Optional[int], workers: int) -> zstandard.ZstdCompressor:
    """One zstd frame with its content checksum, with the Rust sender's tables."""
    params = zstandard.ZstdCompressionParameters.from_level(
        level,
        source_size=size or 0,
        write_checksum=1,
        write_content_size=int(size is not None),
        threads=workers,
        **({"hash_log": TABLE_LOG, "chain_log": TABLE_LOG} if level in (0, 2, 3) else {}),
    )
    return zstandard.ZstdCompressor(compression_params=params)


def _zstd_chunks(
    blocks: Iterable[bytes], size: Optional[int], level: int, chunk_bytes: int, workers: int = 0
) -> Iterator[frame_pb2.Chunk]:
    compressor = _compressor(level, size, workers)
    chunker = compressor.chunker(size=-1 if size is None else size, chunk_size=chunk_bytes)
    offset = 0
    pending: Optional[bytes] = None

    def pieces() -> Iterator[bytes]:
        for block in blocks:
            yield from chunker.compress(block)
        yield from chunker.finish()

    for piece in pieces():
        if pending is not None:
            yield frame_pb2.Chunk(data=pending, offset=offset, last=False)
            offset += len(pending)
        pending = piece
    yield frame_pb2.Chunk(data=pending or b"", offset=offset, last=True)


class _Ahead(Iterator[T]):
    """The items of ``source``, made on a thread of their own up to ``depth``
    ahead of the consumer, so zstd compresses the next chunks while grpcio sends
    this one. The thread ends with ``source``, or at :meth:`close` (which the
    owning generator's close or collection calls) within one item; a source
    blocked in a read (a FIFO with no writer) is left to end with it."""

    def __init__(self, source: Iterator[T], depth: int) -> None:
        self._items: "queue.Queue[tuple[bool, Any]]" = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_produce,
            args=(source, self._items, self._stop),
            name="steadfast-blob-compress",
            daemon=True,
        )
        self._thread.start()

    def __iter__(self) -> "_Ahead[T]":
        return self

    def __next__(self) -> T:
        more, item = self._items.get()
        if more:
            return item  # type: ignore[no-any-return]
        self.close()
        if item is None:
            raise StopIteration
        raise item

    def close(self) -> None:
        """Stops the thread (waits at most a second for it)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


def _produce(source: Iterator[Any], items: "queue.Queue[tuple[bool, Any]]", stop: threading.Event) -> None:
    """``_Ahead``'s thread: ``(True, item)`` for each item, then ``(False, None)``
    at the end or ``(False, error)``; gives up when ``stop`` is set."""

    def put(entry: "tuple[bool, Any]") -> bool:
        while not stop.is_set():
            try:
                items.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    try:
        for item in source:
            if not put((True, item)):
                return
        put((False, None))
    except Exception as error:  # handed to the consumer, raised there
        put((False, error))


def _raw_chunks(blocks: Iterable[bytes], chunk_bytes: int) -> Iterator[frame_pb2.Chunk]:
    hasher = xxhash.xxh3_64()
    offset = 0
    pending: Optional[bytes] = None
    for block in blocks:
        view = memoryview(block)
        for start in range(0, len(block), chunk_bytes):
            piece = bytes(view[start : start + chunk_bytes])
            if pending is not None:
                yield frame_pb2.Chunk(data=pending, offset=offset, last=False)
                offset += len(pending)
            hasher.update(piece)
            pending = piece
    yield frame_pb2.Chunk(
        data=pending or b"", offset=offset, last=True, checksum=hasher.intdigest()
    )


# ---------------------------------------------------------------------------
# Receiving


def _truncated(offset: int, what: str) -> errors.StatusError:
    return errors.data_loss(
        f"the blob ended before its last chunk (truncated after {offset} {what})"
    )


def _over_declared(size: int, carried: int) -> errors.StatusError:
    return errors.data_loss(f"the blob declared {size} bytes but carried {carried} or more")


def _over_limit(size: int, limit: int) -> errors.StatusError:
    return errors.resource_exhausted(
        f"the blob is larger than the limit of {limit} bytes (at least {size} bytes)"
    )


_ZSTD_MAGIC = (0xFD2FB528).to_bytes(4, "little")


class BlobDecoder:
    """Checks and decodes a blob's chunks as they come (no I/O: feed it chunks).

    :meth:`feed` returns the bytes a chunk yields, checked; :meth:`end` says the
    stream ended. Both raise :class:`~steadfast.errors.StatusError`. Every check
    of the Rust reader, with its messages.
    """

    def __init__(self, header: frame_pb2.BlobHeader, limits: Optional[BlobLimits] = None) -> None:
        self.limits = limits or BlobLimits()
        if header.codec not in (frame_pb2.CODEC_ZSTD, frame_pb2.CODEC_NONE):
            raise errors.invalid_argument(
                f"blob codec {header.codec} is not supported: send CODEC_ZSTD (2) or CODEC_NONE (1)"
            )
        #: The declared uncompressed size, or ``None``.
        self.declared: Optional[int] = header.size if header.HasField("size") else None
        #: ``frame_pb2.CODEC_ZSTD`` or ``frame_pb2.CODEC_NONE``.
        self.codec: int = header.codec
        if self.declared is not None and self.declared > self.limits.max_size:
            raise errors.resource_exhausted(
                f"the blob's declared size, {self.declared} bytes, is over this receiver's "
                f"limit of {self.limits.max_size} bytes"
            )
        self.offset = 0
        self.last_seen = False
        #: Uncompressed bytes handed out.
        self.produced = 0
        self._empty_run = 0
        self._hasher = xxhash.xxh3_64()
        self._head = b""
        self._header_checked = False
        self._dobj: Any = None
        self._frame_done = False
        if self.codec == frame_pb2.CODEC_ZSTD:
            self._dobj = zstandard.ZstdDecompressor(
                max_window_size=1 << self.limits.window_log_max
            ).decompressobj()

    @property
    def done(self) -> bool:
        """The last chunk came and was verified."""
        return self.last_seen

    def feed(self, chunk: frame_pb2.Chunk) -> List[bytes]:
        """Takes the next chunk in; returns the verified bytes it yields."""
        data = chunk.data
        if data or chunk.last:
            self._empty_run = 0
        elif self._empty_run == MAX_EMPTY_CHUNKS:
            raise errors.resource_exhausted(
                f"the blob's sender sent more than {MAX_EMPTY_CHUNKS} empty chunks in a row; "
                "this receiver takes at most that many (a chunk must carry data, but the last)"
            )
        else:
            self._empty_run += 1
        if self.last_seen:
            raise errors.data_loss("a chunk came after the blob's last chunk")
        if chunk.offset != self.offset:
            raise errors.data_loss(
                f"blob chunk at offset {chunk.offset} where offset {self.offset} was expected "
                "(a chunk is missing or out of order)"
            )
        if len(data) > self.limits.max_chunk:
            raise errors.resource_exhausted(
                f"a blob chunk of {len(data)} bytes is over this receiver's limit of "
                f"{self.limits.max_chunk} bytes"
            )
        self.offset += len(data)
        self.last_seen = chunk.last
        if self.codec == frame_pb2.CODEC_NONE:
            return self._feed_raw(chunk)
        return self._feed_zstd(chunk)

    def _feed_raw(self, chunk: frame_pb2.Chunk) -> List[bytes]:
        if self.offset > self.limits.max_size:
            raise _over_limit(self.offset, self.limits.max_size)
        if self.declared is not None and self.offset > self.declared:
            raise _over_declared(self.declared, self.offset)
        self._hasher.update(chunk.data)
        if chunk.last:
            if self.declared is not None and self.declared != self.offset:
                raise errors.data_loss(
                    f"the blob declared {self.declared} bytes but carried {self.offset}"
                )
            digest = self._hasher.intdigest()
            if not chunk.HasField("checksum"):
                raise errors.data_loss(
                    "the blob's last chunk has no checksum; CODEC_NONE needs the "
                    "XXH3-64 of the blob's bytes there"
                )
            if chunk.checksum != digest:
                raise errors.data_loss(
                    f"the blob's checksum does not match: its last chunk says "
                    f"{chunk.checksum:#018x}, its bytes hash to {digest:#018x} (XXH3-64)"
                )
        self.produced = self.offset
        return [chunk.data] if chunk.data else []

    def _feed_zstd(self, chunk: frame_pb2.Chunk) -> List[bytes]:
        data = chunk.data
        if not self._header_checked:
            self._head += data
            if len(self._head) < 5 and not chunk.last:
                return []
            head = self._head
            if len(head) < 5 or head[:4] != _ZSTD_MAGIC:
                raise errors.data_loss("the blob is not a zstd frame")
            if head[4] & 0b100 == 0:
                raise errors.invalid_argument(
                    "the blob's zstd frame has no content checksum; steadfast needs one "
                    "(zstd's checksum flag, e.g. `ZstdCompressor(write_checksum=True)` in Python)"
                )
            self._header_checked = True
            data, self._head = head, b""
        out: List[bytes] = []
        limit = self.declared if self.declared is not None else self.limits.max_size
        view = memoryview(data)
        for start in range(0, len(data), DECODE_SLICE_BYTES):
            if self._frame_done:
                raise errors.data_loss("the blob has bytes after the end of its zstd frame")
            piece = view[start : start + DECODE_SLICE_BYTES]
            try:
                output = self._dobj.decompress(piece)
            except zstandard.ZstdError as error:
                text = str(error)
                if "too much memory" in text:
                    raise errors.resource_exhausted(
                        f"the blob's zstd window is larger than this receiver allows: {text}"
                    ) from None
                raise errors.data_loss(f"the blob's zstd stream is corrupt: {text}") from None
            if self._dobj.eof:
                self._frame_done = True
                if self._dobj.unused_data:
                    raise errors.data_loss("the blob has bytes after the end of its zstd frame")
            if output:
                self.produced += len(output)
                if self.declared is not None and self.produced > self.declared:
                    raise _over_declared(self.declared, self.produced)
                if self.produced > self.limits.max_size:
                    raise _over_limit(self.produced, self.limits.max_size)
                if self.produced > limit:  # pragma: no cover - covered by the two above
                    raise _over_limit(self.produced, limit)
                out.append(output)
        if chunk.last:
            if not self._frame_done:
                raise errors.data_loss(
                    "the blob's zstd stream is truncated: its last chunk came before the end "
                    "of its frame"
                )
            if self.declared is not None and self.declared != self.produced:
                raise errors.data_loss(
                    f"the blob declared {self.declared} bytes but carried {self.produced}"
                )
        return out

    def end(self) -> None:
        """The chunk stream ended: raises ``DATA_LOSS`` unless the last chunk came."""
        if not self.last_seen:
            what = "bytes" if self.codec == frame_pb2.CODEC_NONE else "compressed bytes"
            raise _truncated(self.offset, what)


class _FileSink:
    """Where :meth:`BlobReader.to_file` writes: a temporary file beside ``path``,
    renamed over it once the blob is verified; a device or FIFO straight through."""

    def __init__(self, path: PathLike) -> None:
        self.path = os.fspath(path)
        self.temp: Optional[str] = None
        try:
            mode = os.stat(self.path).st_mode
            special = stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISBLK(mode)
        except FileNotFoundError:
            special = False
        if special:
            self.file: BinaryIO = open(self.path, "wb")
        else:
            directory, name = os.path.split(os.path.abspath(self.path))
            fd, self.temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
            self.file = os.fdopen(fd, "wb")
        self.written = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.written += len(data)

    def commit(self) -> int:
        self.file.flush()
        if self.temp is not None:
            os.fsync(self.file.fileno())
        self.file.close()
        if self.temp is not None:
            os.replace(self.temp, self.path)
            self.temp = None
        return self.written

    def abort(self) -> None:
        self.file.close()
        if self.temp is not None:
            try:
                os.unlink(self.temp)
            except FileNotFoundError:
                pass
            self.temp = None


class _Reading:
    """What :class:`BlobReader` and :class:`steadfast.aio.AsyncBlobReader` share: the
    decoder, the header's facts, read-once, and ``close`` cancelling an unfinished read."""

    def __init__(
        self,
        header: frame_pb2.BlobHeader,
        limits: Optional[BlobLimits],
        close: Optional[Callable[[], None]],
    ) -> None:
        self._decoder = BlobDecoder(header, limits)
        self._close = close
        self._started = False
        self._finished = False

    @property
    def declared_size(self) -> Optional[int]:
        """The size the sender declared, or ``None``."""
        return self._decoder.declared

    @property
    def codec(self) -> int:
        """``frame_pb2.CODEC_ZSTD`` or ``frame_pb2.CODEC_NONE``."""
        return self._decoder.codec

    def _start(self) -> None:
        if self._started:
            raise RuntimeError("a BlobReader is read once")
        self._started = True

    def close(self) -> None:
        """Cancels the call unless the blob was read to its end."""
        if not self._finished and self._close is not None:
            self._close()
        self._close = None


class BlobReader(_Reading):
    """A blob being received: iterate it for its bytes, or :meth:`to_file` / :meth:`to_bytes`.

    Bytes are handed out as they come, each chunk checked; the whole blob is
    verified (checksum, declared size) when the iteration ends without an error,
    which also waits for the call's status. Readable once. :meth:`close` (or
    leaving a ``with`` block) cancels the call if the blob was not read to its end.

    >>> reply, blob = lab.download("Fetch", FetchRequest(size=10))  # doctest: +SKIP
    >>> blob.to_file("out.bin")  # doctest: +SKIP
    10
    """

    def __init__(
        self,
        header: frame_pb2.BlobHeader,
        chunks: Iterator[frame_pb2.Chunk],
        limits: Optional[BlobLimits] = None,
        close: Optional[Callable[[], None]] = None,
    ) -> None:
        super().__init__(header, limits, close)
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        self._start()
        try:
            for chunk in self._chunks:
                yield from self._decoder.feed(chunk)
            self._decoder.end()
            self._finished = True
        finally:
            if not self._finished:
                self.close()

    def to_bytes(self) -> bytes:
        """The whole blob, verified, in memory."""
        return b"".join(self)

    def to_file(self, path: PathLike) -> int:
        """Writes the blob to ``path`` and returns its size. A regular file is written
        to a temporary file beside it, renamed over ``path`` once the blob is verified;
        on a failure nothing is left. A device or a FIFO is written straight through."""
        sink = _FileSink(path)
        try:
            for data in self:
                sink.write(data)
        except BaseException:
            sink.abort()
            raise
        return sink.commit()

    def __enter__(self) -> "BlobReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
