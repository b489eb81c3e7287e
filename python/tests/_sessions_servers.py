"""Real example servers for the session, retry and example tests: started on
port 0, killed with SIGKILL and restarted on the same port, stopped with
SIGSTOP; and the Python code generated from the examples' wire protos.

Binaries come from ``$STEADFAST_BIN_DIR`` (default ``<repo>/target/debug``).
To be merged with the core's server fixture module.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType

import grpc

REPO = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (\S+):(\d+)")


def bin_dir() -> Path:
    return Path(os.environ.get("STEADFAST_BIN_DIR", REPO / "target" / "debug"))


def binary(name: str) -> Path:
    path = bin_dir() / name
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: build it (cargo build -p steadfast-examples) "
            "or set STEADFAST_BIN_DIR"
        )
    return path


class Server:
    """An example server process; :meth:`kill` and :meth:`restart` keep its port."""

    def __init__(self, name: str, *args: str, port: int = 0) -> None:
        self.name = name
        self.args = args
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)
        self.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, deadline: float = 20.0) -> None:
        """Starts the server and waits for its `listening on` line."""
        log = open(self._log.name, "wb")
        start = log.tell()
        self.process = subprocess.Popen(
            [str(binary(self.name)), "--addr", f"127.0.0.1:{self.port}", *self.args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            text = Path(self._log.name).read_bytes()[start:].decode(errors="replace")
            match = LISTENING.search(text)
            if match:
                self.port = int(match.group(2))
                return
            if self.process.poll() is not None:
                # The port of a killed server may take a moment to be free.
                if "in use" in text and time.monotonic() + 0.2 < end:
                    time.sleep(0.1)
                    log = open(self._log.name, "wb")
                    self.process = subprocess.Popen(
                        [str(binary(self.name)), "--addr", f"127.0.0.1:{self.port}", *self.args],
                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    )
                    log.close()
                    continue
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}): {text}")
            time.sleep(0.02)
        raise TimeoutError(f"{self.name} did not say it listens within {deadline}s")

    def kill(self) -> None:
        """SIGKILL (a crash: no drain, connections reset), and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """kill -9, then start again on the same port."""
        self.kill()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: a hung server (its connections stay open, nothing answers)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.kill()
        os.unlink(self._log.name)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def generate(out: Path) -> Path:
    """Writes the wire protos of the examples and their Python code to ``out``."""
    wire = out / "wire"
    subprocess.run(
        [str(binary("steadfast-codegen")), "wire", "-I", str(REPO / "examples" / "proto"),
         "--out", str(wire), str(REPO / "examples/proto/schema.proto"),
         str(REPO / "examples/proto/contact.proto")],
        check=True, capture_output=True,
    )
    gen = out / "gen"
    gen.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(wire), f"--python_out={gen}",
         f"--grpc_python_out={gen}", "schema.proto", "contact.proto"],
        check=True, capture_output=True,
    )
    return gen


def import_generated(gen: Path) -> dict[str, ModuleType]:
    if str(gen) not in sys.path:
        sys.path.insert(0, str(gen))
    return {name: importlib.import_module(name)
            for name in ("schema_pb2", "schema_pb2_grpc", "contact_pb2", "contact_pb2_grpc")}


#: Channel options that reconnect quickly after a restart (grpcio's defaults
#: wait 1 s, then up to 120 s, between connection attempts).
FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]

#: Keepalive that finds a hung server's connection dead within about 2 s.
#: grpcio 1.85 times a keepalive ping out by ``grpc.http2.ping_timeout_ms``
#: (default 60 s), not by ``grpc.keepalive_timeout_ms`` alone: set both.
KEEPALIVE = [
    ("grpc.keepalive_time_ms", 500),
    ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.http2.ping_timeout_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]


def wait_no_new_threads(before: set[threading.Thread], deadline: float = 10.0,
                        ignore: str | None = None) -> list[str]:
    """Waits until every thread not in ``before`` (nor named with ``ignore``)
    has ended; returns the names of those still alive at the deadline (empty:
    none leaked)."""
    end = time.monotonic() + deadline
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()
                 and not (ignore and ignore in t.name)]
        if not extra or time.monotonic() > end:
            return [t.name for t in extra]
        time.sleep(0.05)


def channel(addr: str, *options: tuple[str, object]) -> grpc.Channel:
    return grpc.insecure_channel(addr, options=[*FAST_RECONNECT, *options])


_GENERATED: dict[str, object] = {}


def generated_modules() -> dict[str, ModuleType]:
    """The examples' generated modules, generated once per test run."""
    if "modules" not in _GENERATED:
        out = Path(tempfile.mkdtemp(prefix="steadfast-gen-"))
        gen = generate(out)
        _GENERATED["dir"] = gen
        _GENERATED["modules"] = import_generated(gen)
    return _GENERATED["modules"]  # type: ignore[return-value]


def generated_dir() -> Path:
    generated_modules()
    return _GENERATED["dir"]  # type: ignore[return-value]
