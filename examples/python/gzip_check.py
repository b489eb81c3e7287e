"""Checks a steadfast server's health with a grpcio channel that compresses
every request with gzip, as many Python deployments configure their clients.

Run with:
    python examples/python/gzip_check.py --addr 127.0.0.1:50051

Prints the status of the health name `liveness` (`SERVING`), or
`status CODE DETAILS` and exits with 3 when the call fails: a server that did
not accept gzip answers `UNIMPLEMENTED "Content is compressed with gzip which
isn't supported"`. Run by examples/tests/gzip_clients.rs against every example
server.
"""

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Seconds the call may take.
DEADLINE = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="HOST:PORT of the server")
    args = parser.parse_args()

    with grpc.insecure_channel(args.addr, compression=grpc.Compression.Gzip) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service="liveness"), timeout=DEADLINE)
        except grpc.RpcError as error:
            print(f"status {error.code().name} {error.details()}", flush=True)
            return 3
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
