"""Uploads a file to lab.v1.Lab/Digest on a steadfast server with plain grpcio.

Run with (after generating the Python modules from the wire protos):
    python examples/python/digest_client.py --gen GEN_DIR --addr 127.0.0.1:50051 FILE

`Digest` has `request_blob` and `heartbeat_ms` set, so on the wire it is
    rpc Digest(stream LabDigestUpload) returns (stream LabDigestFrame)
The request stream is the request message (`head`), the blob's header (`blob`:
its size and codec), then the blob as chunks (`chunk`): the file compressed as
ONE zstd frame with zstd's content checksum (the server refuses a frame without
it), cut at any byte boundary, each chunk with its offset in the compressed
stream and `last` set on the final one. The response stream is heartbeats while
the server works, then the reply. The call asks for these shapes with the
metadata `steadfast-framing: v1`: a blob travels only in them, so without it the
server refuses the call with FAILED_PRECONDITION.

Reads and compresses the file a piece at a time, so memory does not grow with
the file. Prints `heartbeat seq=N` lines, then `size=N sha256=HEX`; on an error
status prints `status CODE` and exits with 3.
"""

import argparse
import os
import sys

# Asks a steadfast server for the wire shape (frames) of a rewritten method.
FRAMING = [("steadfast-framing", "v1")]

# 128 KiB of compressed bytes per chunk, like steadfast's own default.
CHUNK_BYTES = 128 * 1024
READ_BYTES = 256 * 1024


def upload(lab_pb2, frame_pb2, path, level, extra_millis, checksum=True):
    """The wire request stream: head, header, then the compressed chunks."""
    import zstandard

    size = os.path.getsize(path)
    yield lab_pb2.LabDigestUpload(head=lab_pb2.DigestRequest(extra_millis=extra_millis))
    yield lab_pb2.LabDigestUpload(
        blob=frame_pb2.BlobHeader(size=size, codec=frame_pb2.CODEC_ZSTD)
    )
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=checksum)
    chunker = compressor.chunker(size=size, chunk_size=CHUNK_BYTES)
    offset = 0

    def chunk(data, last):
        nonlocal offset
        message = lab_pb2.LabDigestUpload(
            chunk=frame_pb2.Chunk(data=data, offset=offset, last=last)
        )
        offset += len(data)
        return message

    # Holds one compressed chunk back, so that the final one can carry `last`.
    pending = None
    with open(path, "rb") as file:
        while True:
            data = file.read(READ_BYTES)
            if not data:
                break
            for piece in chunker.compress(data):
                if pending is not None:
                    yield chunk(pending, False)
                pending = piece
    for piece in chunker.finish():
        if pending is not None:
            yield chunk(pending, False)
        pending = piece
    yield chunk(pending if pending is not None else b"", True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gen", required=True, help="directory with the generated *_pb2 modules")
    parser.add_argument("--addr", required=True, help="HOST:PORT of the lab server")
    parser.add_argument("--level", type=int, default=3, help="zstd level")
    parser.add_argument("--extra-millis", type=int, default=0, help="server work after reading")
    parser.add_argument("--timeout", type=float, default=120.0, help="the call's deadline, in seconds")
    parser.add_argument(
        "--no-checksum",
        action="store_true",
        help="leave zstd's content checksum out (the server refuses such a blob)",
    )
    parser.add_argument("file")
    args = parser.parse_args()

    sys.path.insert(0, args.gen)
    import grpc
    from lab.v1 import lab_pb2, lab_pb2_grpc
    from steadfast.v1 import frame_pb2

    with grpc.insecure_channel(args.addr) as channel:
        stub = lab_pb2_grpc.LabStub(channel)
        replies = 0
        try:
            requests = upload(
                lab_pb2, frame_pb2, args.file, args.level, args.extra_millis, not args.no_checksum
            )
            for frame in stub.Digest(requests, timeout=args.timeout, metadata=FRAMING):
                kind = frame.WhichOneof("kind")
                if kind == "heartbeat":
                    print(f"heartbeat seq={frame.heartbeat.seq}", flush=True)
                elif kind == "message":
                    replies += 1
                    reply = frame.message
                    print(f"size={reply.size} sha256={reply.sha256_hex}", flush=True)
                else:
                    print(f"unexpected frame: {frame!r}", flush=True)
                    return 1
        except grpc.RpcError as error:
            print(f"status {error.code().name} {error.details()}", flush=True)
            return 3
    return 0 if replies == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
