"""Calls the code-first Model functions of a steadfast model-server with plain grpcio.

Run with (after generating the Python modules from the dispatch wire proto):
    cargo run -p steadfast-build --bin steadfast-codegen -- wire --out wire steadfast/v1/dispatch.proto
    python -m grpc_tools.protoc -I wire --python_out=gen --grpc_python_out=gen \\
        steadfast/v1/dispatch.proto steadfast/v1/frame.proto
    python examples/python/model_client.py --gen gen --addr 127.0.0.1:50051 hello Ada
    python examples/python/model_client.py --gen gen --addr 127.0.0.1:50051 predict FILE --delay-ms 2000

Every function is called through one method, `steadfast.v1.Dispatch/Call`:
    rpc Call(stream DispatchUpload) returns (stream DispatchFrame)
with the function's name in the `x-func-name` metadata (and, for a proxy that
routes by it, a backend group in `x-upstream`). The request stream is the head
(`head.params`: the params as JSON), then, for a function that takes a blob
(`predict`), the blob's header (its size and codec) and its chunks: the file
compressed as ONE zstd frame with zstd's content checksum (the server refuses
a frame without it), cut at any byte boundary, each chunk with its offset in
the compressed stream and `last` set on the final one. The response stream is
heartbeats while the function works, then the result (`message.result`, JSON).

Prints `heartbeat seq=N ...` lines, then the greeting or
`size=N sha256=HEX served_by=NAME`; on an error status prints
`status CODE MESSAGE` and exits with 3.
"""

import argparse
import json
import os
import sys

# 128 KiB of compressed bytes per chunk, like steadfast's own default.
CHUNK_BYTES = 128 * 1024
READ_BYTES = 256 * 1024


def head(dispatch_pb2, params):
    """The first request frame: the params as JSON."""
    return dispatch_pb2.DispatchUpload(
        head=dispatch_pb2.CallHead(params=json.dumps(params).encode())
    )


def upload(dispatch_pb2, frame_pb2, params, path):
    """The request stream of a function that takes a blob: head, header, chunks."""
    import zstandard

    size = os.path.getsize(path)
    yield head(dispatch_pb2, params)
    yield dispatch_pb2.DispatchUpload(
        blob=frame_pb2.BlobHeader(size=size, codec=frame_pb2.CODEC_ZSTD)
    )
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
    chunker = compressor.chunker(size=size, chunk_size=CHUNK_BYTES)
    offset = 0

    def chunk(data, last):
        nonlocal offset
        message = dispatch_pb2.DispatchUpload(
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


def call(stub, requests, metadata, timeout):
    """Calls, prints the heartbeats, and returns the result (decoded JSON)."""
    result = None
    for frame in stub.Call(requests, metadata=metadata, timeout=timeout):
        kind = frame.WhichOneof("kind")
        if kind == "heartbeat":
            beat = frame.heartbeat
            line = f"heartbeat seq={beat.seq} elapsed_ms={beat.elapsed_ms}"
            if beat.HasField("progress"):
                line += f" progress={beat.progress:.2f}"
            if beat.HasField("note"):
                line += f" note={beat.note}"
            print(line, flush=True)
        elif kind == "message" and result is None:
            result = json.loads(frame.message.result)
        else:
            raise RuntimeError(f"unexpected frame: {frame!r}")
    if result is None:
        raise RuntimeError("the call ended without a result")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gen", required=True, help="directory with the generated *_pb2 modules")
    parser.add_argument("--addr", required=True, help="HOST:PORT of the model server (or proxy)")
    parser.add_argument("--upstream", help="send x-upstream: NAME (for a proxy)")
    parser.add_argument("--timeout", type=float, default=120.0, help="the call's deadline, in seconds")
    parser.add_argument(
        "--func", help="call this x-func-name instead of the command's (to see an unknown name refused)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    hello = commands.add_parser("hello", help="greet NAME; prints the greeting")
    hello.add_argument("name")
    predict = commands.add_parser("predict", help="upload FILE; prints size, sha256, served_by")
    predict.add_argument("file")
    predict.add_argument("--delay-ms", type=int, default=0, help="the model's work after reading")
    args = parser.parse_args()

    sys.path.insert(0, args.gen)
    import grpc
    from steadfast.v1 import dispatch_pb2, dispatch_pb2_grpc, frame_pb2

    metadata = [("x-func-name", args.func or args.command)]
    if args.upstream:
        metadata.append(("x-upstream", args.upstream))
    with grpc.insecure_channel(args.addr) as channel:
        stub = dispatch_pb2_grpc.DispatchStub(channel)
        try:
            if args.command == "hello":
                requests = iter([head(dispatch_pb2, {"name": args.name})])
                print(call(stub, requests, metadata, args.timeout), flush=True)
            else:
                params = {"delay_ms": args.delay_ms}
                requests = upload(dispatch_pb2, frame_pb2, params, args.file)
                result = call(stub, requests, metadata, args.timeout)
                print(
                    f"size={result['size']} sha256={result['sha256_hex']} "
                    f"served_by={result['served_by']}",
                    flush=True,
                )
        except grpc.RpcError as error:
            print(f"status {error.code().name} {error.details()}", flush=True)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
