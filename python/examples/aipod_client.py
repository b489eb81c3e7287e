"""Run with: PYTHONPATH=python/src python python/examples/aipod_client.py --addr 127.0.0.1:8080 --upstream models-a --delay-ms 3000 FILE

Seed 004's "aipod" client, with the package: params as JSON and an input file
sent to the code-first function ``predict`` of a ``model-server``, through an
nginx that routes by ``x-upstream`` (examples/deploy/nginx.conf). What aipod
did by hand, steadfast does: the function is picked by ``x-func-name`` on one
method (``steadfast.v1.Dispatch/Call``); the file goes as one checksummed zstd
frame in chunks, compressed as it is read (no temporary files); heartbeats keep
a slow call alive through a proxy's read timeout and carry the server's
progress. Prints upload and server progress on stderr, then
``size=N sha256=HEX served_by=NAME``; on an error status prints
``status CODE MESSAGE`` and exits with 3.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import grpc

import steadfast


class Counted:
    """A binary file that reports the bytes read from it (the upload's progress)."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "rb")
        self.size = os.path.getsize(path)
        self.read_bytes = 0
        self.tenths = -1

    def read(self, n: int = -1) -> bytes:
        data = self.file.read(n)
        self.read_bytes += len(data)
        tenths = self.read_bytes * 10 // max(self.size, 1)
        if tenths != self.tenths:  # a line per 10 %
            self.tenths = tenths
            print(f"upload {self.read_bytes}/{self.size} bytes", file=sys.stderr, flush=True)
        return data


def on_progress(beat: Any) -> None:
    done = f" progress={beat.progress:.2f}" if beat.HasField("progress") else ""
    note = f" note={beat.note}" if beat.HasField("note") else ""
    print(f"server seq={beat.seq} elapsed_ms={beat.elapsed_ms}{done}{note}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[2])
    parser.add_argument("file", help="the model's input")
    parser.add_argument("--addr", default="127.0.0.1:8080", help="HOST:PORT of nginx (or a model-server)")
    parser.add_argument("--upstream", help="the backend group nginx routes to (x-upstream)")
    parser.add_argument("--delay-ms", type=int, default=0, help="the model's work after reading its input")
    parser.add_argument("--timeout", type=float, default=120.0, help="the call's deadline, in seconds")
    args = parser.parse_args()

    source = Counted(args.file)
    with source.file, grpc.insecure_channel(args.addr) as channel:
        model = steadfast.Dispatch(channel, upstream=args.upstream)
        try:
            result = model.call(
                "predict",
                {"delay_ms": args.delay_ms},
                blob=steadfast.BlobSource.from_file(source, size=source.size),  # type: ignore[arg-type]
                on_progress=on_progress,
                timeout=args.timeout,
            )
        except grpc.RpcError as error:
            print(f"status {error.code().name} {error.details()}", flush=True)
            return 3
    print(f"size={result['size']} sha256={result['sha256_hex']} served_by={result['served_by']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
