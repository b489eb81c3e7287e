"""grpcio-health-checking's client against a steadfast health service.

Run by tests/tests/health_python.rs, which serves the service in process and
acts on its HealthHandle whenever this script prints a line on stdout:

  watching my.pkg.Late  -> the test registers "my.pkg.Late"
  watching the server   -> the test begins the drain
  ok                    -> every check passed

Every call has a deadline, so the script ends, passing or failing (a traceback
on stderr, a non-zero exit), in bounded time.
"""

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Seconds any one answer may take.
ANSWER = 10
# Seconds a Watch call may stay open: longer than the whole scenario.
WATCH = 60

Status = health_pb2.HealthCheckResponse


def check(stub, name):
    return stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=ANSWER).status


def say(line):
    print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addr", required=True)
    args = parser.parse_args()

    with grpc.insecure_channel(args.addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        assert check(stub, "") == Status.SERVING
        assert check(stub, "liveness") == Status.SERVING
        assert check(stub, "readiness") == Status.SERVING
        try:
            check(stub, "no.such.Service")
            raise AssertionError("Check of an unknown name answered")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.NOT_FOUND, err

        listed = stub.List(health_pb2.HealthListRequest(), timeout=ANSWER)
        statuses = {name: r.status for name, r in listed.statuses.items()}
        assert statuses == {
            "": Status.SERVING,
            "liveness": Status.SERVING,
            "readiness": Status.SERVING,
        }, statuses

        # An unknown name: SERVICE_UNKNOWN, and the call stays open until the
        # test registers the name.
        late = stub.Watch(health_pb2.HealthCheckRequest(service="my.pkg.Late"), timeout=WATCH)
        first = next(late).status
        assert first == Status.SERVICE_UNKNOWN, first
        say("watching my.pkg.Late")
        then = next(late).status
        assert then == Status.SERVING, then
        late.cancel()

        # The drain: the watcher of "" hears NOT_SERVING; liveness stays SERVING.
        server = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=WATCH)
        first = next(server).status
        assert first == Status.SERVING, first
        say("watching the server")
        then = next(server).status
        assert then == Status.NOT_SERVING, then
        assert check(stub, "liveness") == Status.SERVING
        assert check(stub, "readiness") == Status.NOT_SERVING
        assert check(stub, "my.pkg.Late") == Status.NOT_SERVING
        server.cancel()

    say("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
