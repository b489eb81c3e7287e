"""Run with: PYTHONPATH=python/src python python/examples/four_shapes.py --addr 127.0.0.1:50061

Seed 001's four call shapes against a ``contact-server``, each one steadfast:
ten ``RemoteCmd`` unary calls at once as futures (retried by grpcio from the
service config: the method is idempotent), the ``GetTask`` server stream
(resumed after the last task on a reconnect), one result per task through a
reconnecting client-streaming ``TellResult``, and ``--statuses`` reports
through a reconnecting bidi ``SendStatus``, printing one line per result as
``contact-client`` does. Everything waits for the server to be ready, so it
may start later or restart during the run.

Generated code: ``--gen DIR`` holding ``contact_pb2*.py`` (and, if present,
``service_config.json``), else generated here from ``examples/proto`` with
``steadfast-codegen wire`` (``$STEADFAST_BIN_DIR``, ``target/debug`` or PATH)
and grpc_tools.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from steadfast import retry
from steadfast.session import Ack, ClientStreamingSession, ResumingStream, Session

REPO = Path(__file__).resolve().parents[2]
# The service's policy in contact.proto, for when no service_config.json was generated.
SERVICE_CONFIG = {"methodConfig": [{
    "name": [{"service": "contact.v1.Contact"}],
    "waitForReady": True,
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "1s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
}]}


def load(gen: str | None):
    if gen is None:
        gen = tempfile.mkdtemp(prefix="contact-gen-")
        codegen = shutil.which("steadfast-codegen", path=os.pathsep.join(
            [os.environ.get("STEADFAST_BIN_DIR", ""), str(REPO / "target" / "debug"),
             os.environ.get("PATH", "")]))
        if codegen is None:
            sys.exit("steadfast-codegen not found: build it or pass --gen DIR")
        subprocess.run([codegen, "wire", "-I", str(REPO / "examples" / "proto"), "--out", gen,
                        str(REPO / "examples" / "proto" / "contact.proto")],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{gen}",
                        f"--python_out={gen}", f"--grpc_python_out={gen}", "contact.proto"],
                       check=True)
    sys.path.insert(0, os.fspath(gen))
    config = Path(gen) / "service_config.json"
    return (importlib.import_module("contact_pb2"), importlib.import_module("contact_pb2_grpc"),
            config if config.exists() else SERVICE_CONFIG)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[2])
    parser.add_argument("--addr", default="127.0.0.1:50061")
    parser.add_argument("--statuses", type=int, default=5)
    parser.add_argument("--gen", help="directory of the generated contact_pb2*.py")
    args = parser.parse_args()
    pb, pb_grpc, service_config = load(args.gen)
    policy = retry.ServiceConfig.load(service_config).policy_for("contact.v1.Contact", "")

    with retry.insecure_channel(args.addr, service_config=service_config,
                                options=[("grpc.initial_reconnect_backoff_ms", 100)]) as channel:
        stub = pb_grpc.ContactStub(channel)

        # Unary, ten at once: futures, collected afterwards in id order.
        futures = [stub.RemoteCmd.future(pb.Command(id=i, line=f"check disk {i}"), timeout=30)
                   for i in range(1, 11)]
        for result in (f.result() for f in futures):
            print(f"command {result.id}: {result.output}")

        # Server streaming, resumed from the task after the last one seen.
        with ResumingStream(stub.GetTask, pb.TaskQuery(from_seq=1),
                            resume=lambda query, task: pb.TaskQuery(from_seq=task.seq + 1),
                            policy=policy, wait_for_ready=True, timeout=60) as stream:
            tasks = list(stream)
        for task in tasks:
            print(f"task {task.seq}: {task.name}")

        # Client streaming: the whole stream is sent again if an attempt fails.
        with ClientStreamingSession(stub.TellResult, policy=policy, wait_for_ready=True) as results:
            for task in tasks:
                results.send(pb.TaskResult(task_seq=task.seq, outcome="done"))
            print(f"results held: {results.result().tasks}")

        # Bidi: each status acknowledged by its sequence number.
        by_seq = Ack.with_rule(lambda ack, oldest: ack.seq - oldest.seq + 1)
        with Session(stub.SendStatus, policy=policy, ack=by_seq, wait_for_ready=True) as statuses:
            for seq in range(1, args.statuses + 1):
                statuses.send(pb.AgentStatus(seq=seq, state="healthy"))
            statuses.finish()
            for ack in statuses:
                print(f"status {ack.seq} acknowledged")


if __name__ == "__main__":
    main()
