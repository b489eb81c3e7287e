"""Test support, one module for every test: the example servers (started on
port 0, restarted on the same port after a kill -9, hung with SIGSTOP), nginx,
the Python code generated from the examples' wire protos, channels.

Binaries come from ``STEADFAST_BIN_DIR`` (default ``<repo>/target/debug``):
``lab-server``, ``model-server``, ``contact-server``, ``gateway-server``,
``lab-client`` and ``steadfast-codegen``
(``cargo build -p steadfast-examples -p steadfast-build --features steadfast-build/cli``).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import grpc

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("STEADFAST_BIN_DIR", REPO / "target" / "debug"))
STARTUP = 20.0
LISTENING = re.compile(r"listening on (\S+):(\d+)")


def binary(name: str) -> Path:
    path = BIN_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: build it (cargo build -p steadfast-examples) or set STEADFAST_BIN_DIR"
        )
    return path


class Server:
    """An example server process on 127.0.0.1, its port read from its ``<announcement>
    listening on <addr>`` line (any announcement when ``None``); port 0 by default.

    :meth:`restart` is kill -9 then a start on the same port; :meth:`freeze` /
    :meth:`thaw` are SIGSTOP / SIGCONT; :meth:`stop` (or leaving a ``with`` block)
    kills it for good. Its output goes to a log file, read for the announcement.
    """

    def __init__(
        self,
        name: str,
        announcement: Optional[str] = None,
        args: Sequence[str] = (),
        *,
        port: int = 0,
    ) -> None:
        self.name = name
        self.announcement = announcement
        self.args = list(args)
        self.port = port
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)
        self._log.close()
        self.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self._log.name, "wb") as log:
            return subprocess.Popen(
                [str(binary(self.name)), "--addr", self.addr, *self.args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    def start(self, deadline: float = STARTUP) -> None:
        """Starts the server and waits for its ``listening on`` line."""
        self.process = self._spawn()
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            text = Path(self._log.name).read_bytes().decode(errors="replace")
            match = LISTENING.search(text)
            if match:
                prefix = f"{self.announcement} listening on "
                if self.announcement is not None and not text.startswith(prefix):
                    self.stop()
                    raise RuntimeError(f"{self.name} announced {text!r}, not {prefix!r}<ADDR>")
                self.port = int(match.group(2))
                return
            if self.process.poll() is not None:
                # The port of a killed server may take a moment to be free.
                if "in use" in text and time.monotonic() + 0.2 < end:
                    time.sleep(0.1)
                    self.process = self._spawn()
                    continue
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}): {text}")
            time.sleep(0.02)
        raise TimeoutError(f"{self.name} did not say it listens within {deadline}s")

    def kill(self) -> None:
        """SIGKILL (a crash: no drain, connections reset), and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        """kill -9, then start again on the same port."""
        self.kill()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: a hung server (its connections stay open, nothing answers)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kills it and removes its log."""
        self.kill()
        try:
            os.unlink(self._log.name)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wire(wire: Path, *protos: str) -> None:
    """steadfast-codegen's wire protos (and manifest) of ``protos`` (paths under
    examples/proto) into ``wire``."""
    proto = REPO / "examples" / "proto"
    subprocess.run(
        [str(binary("steadfast-codegen")), "wire", "-I", str(proto), "--out", str(wire),
         *(str(proto / p) for p in protos)],
        check=True,
    )


def _protoc(wire: Path, gen: Path, *protos: str) -> None:
    """grpcio-tools' Python modules of the wire ``protos`` into ``gen``."""
    gen.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{wire}", f"--python_out={gen}",
         f"--grpc_python_out={gen}", *protos],
        check=True,
    )


def generate_lab(out: Path) -> Path:
    """Generates the Python modules of the lab wire protos into ``out/gen`` (not
    steadfast/v1: the package has those) and returns the wire directory: the one
    ``STEADFAST_WIRE_DIR`` names (the Rust test emits it with steadfast-build), else
    ``out/wire`` written by steadfast-codegen."""
    given = os.environ.get("STEADFAST_WIRE_DIR")
    wire = Path(given) if given else out / "wire"
    if not given:
        _wire(wire, "lab/v1/lab.proto")
    _protoc(wire, out / "gen", "lab/v1/lab.proto")
    return wire


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nginx_binary() -> Optional[str]:
    found = shutil.which("nginx")
    if found:
        return found
    for d in ("/usr/local/sbin", "/usr/sbin", "/sbin"):
        if os.access(f"{d}/nginx", os.X_OK):
            return f"{d}/nginx"
    return None


class Nginx:
    """nginx as a gRPC proxy to ``upstream`` with ``grpc_read_timeout`` (like
    tests/src/nginx.rs), listening on a free port of 127.0.0.1;
    :meth:`start_with` runs the ``http { }`` a test gives instead."""

    def __init__(self, nginx: str, upstream: str, read_timeout_ms: int) -> None:
        self._start(nginx, lambda addr: f"""    server {{
        listen {addr} http2;
        client_max_body_size 0;
        location / {{
            grpc_pass grpc://{upstream};
            grpc_read_timeout {read_timeout_ms}ms;
            grpc_send_timeout 60s;
        }}
    }}""")

    @classmethod
    def start_with(cls, nginx: str, http: Callable[[str], str]) -> "Nginx":
        """nginx with ``http(addr)`` as the contents of its ``http { }``, ``addr``
        the free port it must listen on."""
        proxy = cls.__new__(cls)
        proxy._start(nginx, http)
        return proxy

    def _start(self, nginx: str, http: Callable[[str], str]) -> None:
        self.dir = tempfile.mkdtemp(prefix="steadfast-py-nginx-")
        self.addr = f"127.0.0.1:{free_port()}"
        user = "user root;\n" if os.geteuid() == 0 else ""
        temps = "".join(f"    {kind}_temp_path {self.dir}/{kind}_temp;\n"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = (f"{user}worker_processes 1;\npid {self.dir}/nginx.pid;\n"
                f"error_log {self.dir}/error.log info;\nevents {{}}\n"
                f"http {{\n    access_log off;\n{temps}{http(self.addr)}\n}}\n")
        Path(self.dir, "nginx.conf").write_text(conf)
        self.process = subprocess.Popen(
            [nginx, "-p", self.dir, "-e", f"{self.dir}/error.log", "-c", f"{self.dir}/nginx.conf",
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        host, port = self.addr.split(":")
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.logs()}")
            if Path(self.dir, "nginx.pid").exists():
                try:
                    socket.create_connection((host, int(port)), 0.2).close()
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen: {self.logs()}")
            time.sleep(0.05)

    def logs(self) -> str:
        try:
            return Path(self.dir, "error.log").read_text()
        except OSError:
            return ""

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_python(code: str, args: List[str], env_path: Path) -> str:
    """Runs ``code`` in a fresh interpreter with the package and ``env_path`` importable."""
    env = dict(os.environ)
    src = str(REPO / "python" / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, str(env_path), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


def generate(out: Path) -> Path:
    """Writes the wire protos of the contact and schema examples and their Python
    code to ``out``; returns the code's directory."""
    wire = out / "wire"
    _wire(wire, "schema.proto", "contact.proto")
    gen = out / "gen"
    _protoc(wire, gen, "schema.proto", "contact.proto")
    return gen


def import_generated(gen: Path) -> Dict[str, ModuleType]:
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


def wait_no_new_threads(before: Set[threading.Thread], deadline: float = 10.0,
                        ignore: Optional[str] = None) -> List[str]:
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


def channel(addr: str, *options: Tuple[str, object]) -> grpc.Channel:
    return grpc.insecure_channel(addr, options=[*FAST_RECONNECT, *options])


_GENERATED: Dict[str, object] = {}


def generated_modules() -> Dict[str, ModuleType]:
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
