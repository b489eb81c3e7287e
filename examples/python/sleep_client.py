"""Calls lab.v1.Lab/Sleep on a steadfast server with plain grpcio.

Run with (after generating the Python modules from the wire protos):
    python examples/python/sleep_client.py --gen GEN_DIR --addr 127.0.0.1:50051 --millis 1500

The wire method returns `stream LabSleepFrame`: heartbeats while the server works,
then exactly one `message` with the reply. The call asks for that shape with the
metadata `steadfast-framing: v1`; without it the server answers the plain
`SleepReply` of the original lab.proto, as it does for clients built from that. Prints one line per frame. With
`--timeout` shorter than the sleep, the call's deadline ends it: prints
`status DEADLINE_EXCEEDED` and exits with 3.
"""

import argparse
import sys

# Asks a steadfast server for the wire shape (frames) of a rewritten method.
FRAMING = [("steadfast-framing", "v1")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gen", required=True, help="directory with the generated *_pb2 modules")
    parser.add_argument("--addr", required=True, help="HOST:PORT of the lab server")
    parser.add_argument("--millis", type=int, default=1500)
    parser.add_argument("--timeout", type=float, default=60.0, help="the call's deadline, in seconds")
    args = parser.parse_args()

    sys.path.insert(0, args.gen)
    import grpc
    from lab.v1 import lab_pb2, lab_pb2_grpc

    with grpc.insecure_channel(args.addr) as channel:
        stub = lab_pb2_grpc.LabStub(channel)
        replies = 0
        try:
            for frame in stub.Sleep(
                lab_pb2.SleepRequest(millis=args.millis), timeout=args.timeout, metadata=FRAMING
            ):
                kind = frame.WhichOneof("kind")
                if kind == "heartbeat":
                    hb = frame.heartbeat
                    progress = f"{hb.progress:.2f}" if hb.HasField("progress") else "-"
                    print(f"heartbeat seq={hb.seq} elapsed_ms={hb.elapsed_ms} progress={progress}", flush=True)
                elif kind == "message":
                    replies += 1
                    print(f"reply slept_ms={frame.message.slept_ms}", flush=True)
                else:
                    print(f"unexpected frame: {frame!r}", flush=True)
                    return 1
        except grpc.RpcError as error:
            print(f"status {error.code().name}", flush=True)
            return 3
    return 0 if replies == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
