"""Watches a steadfast server's health with gRPC's own Python client
(grpcio-health-checking) through its drain.

Run with:
    python examples/python/health_watch.py --addr 127.0.0.1:50051

Watches "" (the whole server) and prints one line per event on stdout:

  serving      -> the first status: SERVING (the test then sends SIGTERM)
  not serving  -> the drain began: NOT_SERVING
  ended        -> the call then ended OK (the watcher does not hold the drain)

Run by examples/tests/drain.rs. Every call has a deadline, so the script ends,
passing or failing (a traceback on stderr, a non-zero exit), in bounded time.
"""

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Seconds the Watch call may stay open: longer than the whole scenario.
WATCH = 60

Status = health_pb2.HealthCheckResponse


def say(line):
    print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="HOST:PORT of the server")
    args = parser.parse_args()

    with grpc.insecure_channel(args.addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=WATCH)
        first = next(watch).status
        assert first == Status.SERVING, first
        say("serving")
        then = next(watch).status
        assert then == Status.NOT_SERVING, then
        say("not serving")
        rest = [r.status for r in watch]  # raises grpc.RpcError unless it ends OK
        assert rest == [], rest
        say("ended")
    return 0


if __name__ == "__main__":
    sys.exit(main())
