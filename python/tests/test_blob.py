"""Blobs: uploads to lab Digest, downloads from lab Fetch, and the reader's checks."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import grpc
import pytest
import xxhash
import zstandard

import steadfast
from steadfast.blob import BlobDecoder
from steadfast.v1 import frame_pb2

from servers import binary, run_python


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def compressible(size: int) -> bytes:
    line = b"2026-12-07T16:00:00Z INFO steadfast: a log line that repeats with n="
    out = bytearray()
    n = 0
    while len(out) < size:
        out += line + str(n).encode() + b"\n"
        n += 1
    return bytes(out[:size])


def header_of(source: steadfast.BlobSource) -> frame_pb2.BlobHeader:
    parts = source.parts()
    header = next(parts)
    parts.close()
    assert isinstance(header, frame_pb2.BlobHeader)
    return header


def test_digest_of_bytes(lab: steadfast.Service, lab_pb2: Any) -> None:
    data = compressible(3 << 20)
    source = steadfast.BlobSource.from_bytes(data)
    assert header_of(source).codec == frame_pb2.CODEC_ZSTD
    beats: List[Any] = []
    reply = lab.call("Digest", lab_pb2.DigestRequest(extra_millis=1500), blob=source, timeout=60, on_progress=beats.append)
    assert (reply.size, reply.sha256_hex) == (len(data), sha(data))
    assert beats, "heartbeats while the server works"


def test_digest_of_a_file_and_a_file_object(lab: steadfast.Service, lab_pb2: Any, tmp_path: Path) -> None:
    data = compressible(1 << 20) + os.urandom(300_000)
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    reply = lab.call("Digest", lab_pb2.DigestRequest(), blob=steadfast.BlobSource.from_path(path, level=1, chunk_bytes=64 * 1024), timeout=60)
    assert (reply.size, reply.sha256_hex) == (len(data), sha(data))
    with open(path, "rb") as file:
        reply = lab.call("Digest", lab_pb2.DigestRequest(), blob=steadfast.BlobSource.from_file(file), timeout=60)
    assert reply.sha256_hex == sha(data)


def test_incompressible_data_goes_raw(lab: steadfast.Service, lab_pb2: Any) -> None:
    data = os.urandom(1_000_000)
    source = steadfast.BlobSource.from_bytes(data)
    assert header_of(source).codec == frame_pb2.CODEC_NONE
    reply = lab.call("Digest", lab_pb2.DigestRequest(), blob=source, timeout=60)
    assert (reply.size, reply.sha256_hex) == (len(data), sha(data))


@pytest.mark.parametrize("codec", ["zstd", "none"])
def test_an_empty_blob(lab: steadfast.Service, lab_pb2: Any, codec: str) -> None:
    reply = lab.call("Digest", lab_pb2.DigestRequest(), blob=steadfast.BlobSource.from_bytes(b"", codec=codec), timeout=20)
    assert (reply.size, reply.sha256_hex) == (0, sha(b""))


@pytest.mark.parametrize("content", ["logs", "random"])
def test_a_64_mib_upload_in_bounded_memory(lab_server: Any, gen_dir: Path, tmp_path: Path, content: str) -> None:
    """zstd (log lines) and raw (random bytes, the codec auto picks): ru_maxrss of
    the uploading process grows far less than the payload."""
    size = 64 << 20
    path = tmp_path / "big.bin"
    with open(path, "wb") as file:
        block = compressible(1 << 20)
        for i in range(64):
            file.write(os.urandom(1 << 20) if content == "random" else block[:-8] + i.to_bytes(8, "little"))
    code = """
import resource, sys, grpc, steadfast
from lab.v1 import lab_pb2, lab_pb2_grpc
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with grpc.insecure_channel(sys.argv[1]) as channel:
    stub = lab_pb2_grpc.LabStub(channel)
    source = steadfast.BlobSource.from_path(sys.argv[2], level=1)
    reply = steadfast.call(stub.Digest, source.upload(lab_pb2.LabDigestUpload, lab_pb2.DigestRequest()),
                           heartbeat_ms=1000, timeout=300)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(reply.size, reply.sha256_hex, (after - before) * 1024)
"""
    out = run_python(code, [lab_server.addr, str(path)], gen_dir).split()
    h = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            h.update(block)
    assert out[:2] == [str(size), h.hexdigest()]
    growth = int(out[2])
    print(f"64 MiB upload: ru_maxrss grew by {growth >> 20} MiB")
    assert growth < 24 << 20, f"memory grew by {growth} bytes for a {size}-byte upload"


def test_fetch_matches_the_rust_client(lab: steadfast.Service, lab_pb2: Any, lab_server: Any, tmp_path: Path) -> None:
    size = 3_000_000
    reply, blob = lab.download("Fetch", lab_pb2.FetchRequest(size=size, seed=7), timeout=60)
    assert reply.size == size and blob.declared_size == size
    target = tmp_path / "python.bin"
    assert blob.to_file(target) == size
    rust = tmp_path / "rust.bin"
    subprocess.run([str(binary("lab-client")), "--addr", f"http://{lab_server.addr}", "fetch", "--out", str(rust), str(size), "7"], check=True, capture_output=True)
    assert target.read_bytes() == rust.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_fetch_iterates_verified_bytes(lab: steadfast.Service, lab_pb2: Any) -> None:
    reply, blob = lab.download("Fetch", lab_pb2.FetchRequest(size=1_500_000, seed=3), timeout=60)
    with blob:
        data = b"".join(blob)
    assert len(data) == 1_500_000


def test_to_a_device_is_written_through(lab: steadfast.Service, lab_pb2: Any) -> None:
    _, blob = lab.download("Fetch", lab_pb2.FetchRequest(size=100_000, seed=1), timeout=60)
    assert blob.to_file("/dev/null") == 100_000
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


# --- the reader's checks, on hand-made frames ---------------------------------


def zstd_chunks(data: bytes, size: int = 1000, checksum: bool = True) -> List[frame_pb2.Chunk]:
    wire = zstandard.ZstdCompressor(level=3, write_checksum=checksum).compress(data)
    return cut(wire, size)


def cut(wire: bytes, size: int) -> List[frame_pb2.Chunk]:
    chunks = [frame_pb2.Chunk(data=wire[i : i + size], offset=i) for i in range(0, len(wire), size)]
    chunks[-1].last = True
    return chunks


def zstd_header(size: Any = None) -> frame_pb2.BlobHeader:
    return frame_pb2.BlobHeader(size=size, codec=frame_pb2.CODEC_ZSTD)


def read(header: frame_pb2.BlobHeader, chunks: List[frame_pb2.Chunk], **limits: Any) -> bytes:
    return steadfast.BlobReader(header, iter(chunks), steadfast.BlobLimits(**limits)).to_bytes()


def code_of(header: frame_pb2.BlobHeader, chunks: List[frame_pb2.Chunk], **limits: Any) -> tuple:
    with pytest.raises(grpc.RpcError) as caught:
        read(header, chunks, **limits)
    return caught.value.code(), caught.value.details()


DATA = compressible(50_000)


def test_good_frames_read_back() -> None:
    assert read(zstd_header(len(DATA)), zstd_chunks(DATA)) == DATA
    raw = cut(DATA, 4096)
    raw[-1].checksum = xxhash.xxh3_64_intdigest(DATA)
    assert read(frame_pb2.BlobHeader(size=len(DATA), codec=frame_pb2.CODEC_NONE), raw) == DATA


def test_a_gap_is_data_loss() -> None:
    chunks = zstd_chunks(DATA, 300)
    del chunks[2]
    code, details = code_of(zstd_header(), chunks)
    assert code == grpc.StatusCode.DATA_LOSS
    assert details == "blob chunk at offset 900 where offset 600 was expected (a chunk is missing or out of order)"


def test_corrupt_zstd_is_data_loss() -> None:
    wire = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(DATA))
    wire[len(wire) // 2] ^= 0xFF
    code, details = code_of(zstd_header(), cut(bytes(wire), 500))
    assert code == grpc.StatusCode.DATA_LOSS and details.startswith("the blob's zstd stream is corrupt"), details


def test_a_wrong_raw_checksum_is_data_loss() -> None:
    raw = cut(DATA, 4096)
    raw[-1].checksum = 12345
    code, details = code_of(frame_pb2.BlobHeader(codec=frame_pb2.CODEC_NONE), raw)
    assert code == grpc.StatusCode.DATA_LOSS and "checksum does not match" in details
    raw[-1].ClearField("checksum")
    code, details = code_of(frame_pb2.BlobHeader(codec=frame_pb2.CODEC_NONE), raw)
    assert code == grpc.StatusCode.DATA_LOSS and "has no checksum" in details


def test_truncation_and_extra_chunks_are_data_loss() -> None:
    chunks = zstd_chunks(DATA, 300)
    code, details = code_of(zstd_header(), chunks[:-1])
    assert code == grpc.StatusCode.DATA_LOSS
    assert details.startswith("the blob ended before its last chunk (truncated after"), details
    extra = frame_pb2.Chunk(data=b"x", offset=chunks[-1].offset + len(chunks[-1].data))
    code, details = code_of(zstd_header(), chunks + [extra])
    assert (code, details) == (grpc.StatusCode.DATA_LOSS, "a chunk came after the blob's last chunk")
    early = zstd_chunks(DATA, 300)[:-1]
    early[-1].last = True
    code, details = code_of(zstd_header(), early)
    assert code == grpc.StatusCode.DATA_LOSS and "truncated: its last chunk came before the end" in details


def test_bytes_after_the_frame_are_data_loss() -> None:
    wire = zstandard.ZstdCompressor(write_checksum=True).compress(DATA) + b"junk"
    code, details = code_of(zstd_header(), cut(wire, 700))
    assert (code, details) == (grpc.StatusCode.DATA_LOSS, "the blob has bytes after the end of its zstd frame")


def test_declared_size_is_checked() -> None:
    code, details = code_of(zstd_header(len(DATA) - 1), zstd_chunks(DATA))
    assert code == grpc.StatusCode.DATA_LOSS and details.startswith(f"the blob declared {len(DATA) - 1} bytes but carried")
    code, details = code_of(zstd_header(len(DATA) + 1), zstd_chunks(DATA))
    assert (code, details) == (grpc.StatusCode.DATA_LOSS, f"the blob declared {len(DATA) + 1} bytes but carried {len(DATA)}")


def test_limits_are_resource_exhausted() -> None:
    code, details = code_of(zstd_header(), zstd_chunks(DATA), max_size=10_000)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than the limit of 10000 bytes" in details
    code, _ = code_of(zstd_header(100_000), zstd_chunks(DATA), max_size=10_000)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    code, details = code_of(zstd_header(), zstd_chunks(os.urandom(20_000), 5000), max_chunk=4096)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "over this receiver's limit of 4096 bytes" in details
    # A decompression bomb stops at the limit, not after inflating.
    bomb = zstandard.ZstdCompressor(write_checksum=True).compress(bytes(64 << 20))
    code, _ = code_of(zstd_header(), cut(bomb, 1000), max_size=1 << 20)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_frame_without_checksum_or_a_codec_unknown_is_invalid_argument() -> None:
    code, details = code_of(zstd_header(), zstd_chunks(DATA, checksum=False))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "no content checksum" in details
    with pytest.raises(grpc.RpcError) as caught:
        BlobDecoder(frame_pb2.BlobHeader(codec=7))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_to_file_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    chunks = zstd_chunks(DATA, 300)
    chunks[-1].data = chunks[-1].data[:-1] + bytes([chunks[-1].data[-1] ^ 1])  # the checksum breaks
    reader = steadfast.BlobReader(zstd_header(), iter(chunks))
    with pytest.raises(grpc.RpcError) as caught:
        reader.to_file(target)
    assert caught.value.code() == grpc.StatusCode.DATA_LOSS
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_corrupt_download_stream_is_data_loss(lab_pb2: Any) -> None:
    """Hand-made LabFetchFrame messages through the download path."""
    chunks = zstd_chunks(DATA, 300)
    del chunks[1]
    frames = [lab_pb2.LabFetchFrame(message=lab_pb2.FetchReply(size=len(DATA))),
              lab_pb2.LabFetchFrame(blob=zstd_header(len(DATA)))]
    frames += [lab_pb2.LabFetchFrame(chunk=c) for c in chunks]

    class FakeCall:
        cancelled = False

        def __init__(self) -> None:
            self.frames = iter(frames)

        def __next__(self) -> Any:
            return next(self.frames)

        def cancel(self) -> None:
            FakeCall.cancelled = True

    reply, blob = steadfast.download(lambda request, **kw: FakeCall(), lab_pb2.FetchRequest(), heartbeat_ms=500)
    assert reply.size == len(DATA)
    with pytest.raises(grpc.RpcError) as caught:
        blob.to_bytes()
    assert caught.value.code() == grpc.StatusCode.DATA_LOSS
    assert FakeCall.cancelled, "the call is cancelled on a corrupt blob"


def test_an_abandoned_upload_stops_its_compressing_thread() -> None:
    def compressing() -> list:
        return [t for t in threading.enumerate() if t.name == "steadfast-blob-compress"]

    parts = steadfast.BlobSource.from_bytes(os.urandom(4 << 20), codec="zstd").parts()
    assert isinstance(next(parts), frame_pb2.BlobHeader)
    assert isinstance(next(parts), frame_pb2.Chunk)
    assert compressing(), "zstd runs on a thread of its own"
    parts.close()
    assert not compressing(), "closing the upload stopped the thread"


def test_workers_and_the_rust_tables_still_make_one_verified_frame() -> None:
    data = b"".join(b"line %d of a log that compresses\n" % i for i in range(200_000))
    for level, workers in [(1, 0), (3, 0), (3, 2), (9, 0)]:
        source = steadfast.BlobSource.from_bytes(data, codec="zstd", level=level, workers=workers)
        header, *chunks = list(source.parts())
        decoder = steadfast.BlobDecoder(header)
        out = b"".join(b"".join(decoder.feed(chunk)) for chunk in chunks)
        decoder.end()
        assert out == data, (level, workers)


def test_digest_of_a_fifo_fed_slowly_streams_with_no_declared_size(
    lab: steadfast.Service, lab_pb2: Any, tmp_path: Path
) -> None:
    fifo = tmp_path / "live"
    os.mkfifo(fifo)
    parts = [b"a live source, line %d\n" % i * 50 for i in range(20)]

    def feed() -> None:
        with open(fifo, "wb") as writer:
            for part in parts:
                writer.write(part)
                writer.flush()
                time.sleep(0.02)

    source = steadfast.BlobSource.from_path(fifo)
    assert source.size is None
    writer = threading.Thread(target=feed)
    writer.start()
    try:
        reply = lab.call("Digest", lab_pb2.DigestRequest(), blob=source, timeout=60)
    finally:
        writer.join(10)
    data = b"".join(parts)
    assert (reply.size, reply.sha256_hex) == (len(data), hashlib.sha256(data).hexdigest())


def test_an_upload_past_its_deadline_is_deadline_exceeded(lab: steadfast.Service, lab_pb2: Any) -> None:
    source = steadfast.BlobSource.from_bytes(b"x" * 1000)
    with pytest.raises(grpc.RpcError) as raised:
        lab.call("Digest", lab_pb2.DigestRequest(extra_millis=5000), blob=source, timeout=1)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
