"""Run with: PYTHONPATH=python/src python python/examples/counter_client.py --addr 127.0.0.1:50051 --until 1000

The counter of seed 000 on a reconnecting session: sends ``--start`` to a
``gateway-server``, then sends back each answer (``num + 1``), printing one
number per line, until ``--until``. Kill the server (``kill -9``) and restart
it as often as you like: the numbers go on with no gap, no repeat, no stall,
and no thread left behind. Connection events go to stderr. Exits 1 with the
status when the session gives up.

Generated code: ``--gen DIR`` holding ``schema_pb2*.py``, else generated
here with grpc_tools from ``examples/proto/schema.proto``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc

from steadfast.retry import RetryPolicy
from steadfast.session import Event, Session

PROTOS = Path(__file__).resolve().parents[2] / "examples" / "proto"


def load(gen: str | None):
    if gen is None:
        gen = tempfile.mkdtemp(prefix="counter-gen-")
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}",
                        f"--python_out={gen}", f"--grpc_python_out={gen}", "schema.proto"],
                       check=True)
    sys.path.insert(0, os.fspath(gen))
    return importlib.import_module("schema_pb2"), importlib.import_module("schema_pb2_grpc")


def report(event: Event) -> None:
    why = f": {event.code.name}: {event.details}" if event.code else ""
    print(f"{event.kind} (attempt {event.attempt}){why}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[2])
    parser.add_argument("--addr", default="127.0.0.1:50051")
    parser.add_argument("--start", type=int, default=1)
    parser.add_argument("--until", type=int, required=True)
    parser.add_argument("--max-attempts", type=int, default=30,
                        help="attempts in a row without an answer before giving up")
    parser.add_argument("--gen", help="directory of the generated schema_pb2*.py")
    args = parser.parse_args()
    schema_pb2, schema_pb2_grpc = load(args.gen)

    policy = RetryPolicy(max_attempts=args.max_attempts, initial_backoff=0.1, max_backoff=1.0)
    # Reconnect quickly, and find a hung server's connection dead within ~3 s
    # (grpcio times keepalive pings out by ping_timeout_ms, default 60 s).
    options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000),
               ("grpc.keepalive_time_ms", 1000), ("grpc.keepalive_timeout_ms", 2000),
               ("grpc.http2.ping_timeout_ms", 2000)]
    with grpc.insecure_channel(args.addr, options=options) as channel:
        stub = schema_pb2_grpc.GatewayStub(channel)
        # wait_for_ready: a reconnect waits for the server however long it is down.
        with Session(stub.Call, policy=policy, wait_for_ready=True, on_event=report) as session:
            session.send(schema_pb2.Request(num=args.start))
            try:
                for answer in session:
                    print(answer.num, flush=True)
                    if answer.num >= args.until:
                        return 0
                    session.send(schema_pb2.Request(num=answer.num))
            except grpc.RpcError as e:
                print(f"gave up: {e.code().name}: {e.details()}", file=sys.stderr)
                return 1
    return 1  # the server ended the call


if __name__ == "__main__":
    sys.exit(main())
