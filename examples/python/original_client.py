"""Calls lab.v1.Lab with plain grpcio, built from the ORIGINAL lab.proto.

This is the client a service already has before it adopts steadfast: generated
from the proto as written (steadfast options and all), not from the wire protos,
and sending no `steadfast-framing` metadata. A steadfast server answers it in
each method's original shape: `Sleep` returns a plain `SleepReply` (no
heartbeats), `Ticks` streams plain `Tick`s, `Count` and `Echo` take a stream of
ticks and answer a plain `TickCount` or plain ticks, and the blob methods
(`Digest`, `Fetch`) refuse the call with FAILED_PRECONDITION.

Run with (the options proto is in the repository's proto/ directory):
    python -m grpc_tools.protoc -I examples/proto -I proto --python_out=gen \
        --grpc_python_out=gen lab/v1/lab.proto steadfast/v1/options.proto
    python examples/python/original_client.py --gen gen --addr 127.0.0.1:50051 sleep 1200
    python examples/python/original_client.py --gen gen --addr 127.0.0.1:50051 ticks 3 700
    python examples/python/original_client.py --gen gen --addr 127.0.0.1:50051 count 3 700
    python examples/python/original_client.py --gen gen --addr 127.0.0.1:50051 echo 3 700
    python examples/python/original_client.py --gen gen --addr 127.0.0.1:50051 digest

Prints `reply slept_ms=N`, `tick n=N` per tick, `reply count=N sum=S`, or
`status CODE: MESSAGE` (and exits with 3) on an error status.
"""

import argparse
import sys
import time
from typing import Any, Iterator


def ticks_every(lab_pb2: Any, count: int, gap_ms: int) -> Iterator[Any]:
    """Ticks 1..count, `gap_ms` apart (the first after one gap)."""
    for n in range(1, count + 1):
        time.sleep(gap_ms / 1000)
        yield lab_pb2.Tick(n=n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gen", required=True, help="directory with the generated *_pb2 modules")
    parser.add_argument("--addr", required=True, help="HOST:PORT of the lab server")
    parser.add_argument("--timeout", type=float, default=60.0, help="the call's deadline, in seconds")
    commands = parser.add_subparsers(dest="command", required=True)
    sleep = commands.add_parser("sleep", help="Sleep(millis)")
    sleep.add_argument("millis", type=int)
    ticks = commands.add_parser("ticks", help="Ticks(count, gap_ms)")
    ticks.add_argument("count", type=int)
    ticks.add_argument("gap_ms", type=int)
    for name in ("count", "echo"):
        streamed = commands.add_parser(name, help=f"{name.title()}(stream of ticks)")
        streamed.add_argument("count", type=int)
        streamed.add_argument("gap_ms", type=int)
    commands.add_parser("digest", help="Digest, a request-blob method")
    commands.add_parser("fetch", help="Fetch, a response-blob method")
    args = parser.parse_args()

    sys.path.insert(0, args.gen)
    import grpc
    from lab.v1 import lab_pb2, lab_pb2_grpc

    with grpc.insecure_channel(args.addr) as channel:
        stub = lab_pb2_grpc.LabStub(channel)
        try:
            if args.command == "sleep":
                reply = stub.Sleep(lab_pb2.SleepRequest(millis=args.millis), timeout=args.timeout)
                print(f"reply slept_ms={reply.slept_ms}", flush=True)
            elif args.command == "ticks":
                request = lab_pb2.TicksRequest(count=args.count, gap_ms=args.gap_ms)
                for tick in stub.Ticks(request, timeout=args.timeout):
                    print(f"tick n={tick.n}", flush=True)
            elif args.command == "count":
                reply = stub.Count(ticks_every(lab_pb2, args.count, args.gap_ms), timeout=args.timeout)
                print(f"reply count={reply.count} sum={reply.sum}", flush=True)
            elif args.command == "echo":
                ticks = ticks_every(lab_pb2, args.count, args.gap_ms)
                for tick in stub.Echo(ticks, timeout=args.timeout):
                    print(f"tick n={tick.n}", flush=True)
            elif args.command == "digest":
                reply = stub.Digest(lab_pb2.DigestRequest(), timeout=args.timeout)
                print(f"reply size={reply.size}", flush=True)
            else:
                reply = stub.Fetch(lab_pb2.FetchRequest(size=10, seed=1), timeout=args.timeout)
                print(f"reply size={reply.size}", flush=True)
        except grpc.RpcError as error:
            print(f"status {error.code().name}: {error.details()}", flush=True)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
