"""Test support: the example servers, nginx and the generated lab modules.

Binaries come from ``STEADFAST_BIN_DIR`` (default ``<repo>/target/debug``):
``lab-server``, ``model-server``, ``lab-client`` and ``steadfast-codegen``
(``cargo build -p steadfast-examples -p steadfast-build --features steadfast-build/cli``).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("STEADFAST_BIN_DIR", REPO / "target" / "debug"))
STARTUP = 20.0


def binary(name: str) -> Path:
    path = BIN_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: build it (cargo build -p steadfast-examples) or set STEADFAST_BIN_DIR"
        )
    return path


class Server:
    """A server process started on port 0; its address read from its announcement."""

    def __init__(self, name: str, announcement: str, args: Sequence[str] = ()) -> None:
        self.process = subprocess.Popen(
            [str(binary(name)), "--addr", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = _read_line(self.process.stdout, STARTUP)
        prefix = f"{announcement} listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"{name} announced {line!r}, not {prefix!r}<ADDR>")
        self.addr = line[len(prefix) :].strip()
        # Keeps draining stdout so the server never blocks on a full pipe; ends
        # with the process (EOF).
        threading.Thread(target=_drain, args=(self.process.stdout,), daemon=True).start()

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.process.kill()
        self.process.wait(10)


def _read_line(pipe: IO[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    fd = pipe.fileno()
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no announcement within {timeout}s (got {data!r})")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            byte = os.read(fd, 1)
            if not byte:
                break
            data += byte
    return data.decode()


def _drain(pipe: IO[bytes]) -> None:
    while pipe.read(65536):
        pass


def generate_lab(out: Path) -> Path:
    """Generates the Python modules of the lab wire protos into ``out/gen`` (not
    steadfast/v1: the package has those) and returns the wire directory: the one
    ``STEADFAST_WIRE_DIR`` names (the Rust test emits it with steadfast-build), else
    ``out/wire`` written by steadfast-codegen."""
    gen = out / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    given = os.environ.get("STEADFAST_WIRE_DIR")
    wire = Path(given) if given else out / "wire"
    if not given:
        _emit_wire(wire)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{wire}",
            f"--python_out={gen}",
            f"--grpc_python_out={gen}",
            "lab/v1/lab.proto",
        ],
        check=True,
    )
    return wire


def _emit_wire(wire: Path) -> None:
    subprocess.run(
        [
            str(binary("steadfast-codegen")),
            "wire",
            "-I",
            str(REPO / "examples" / "proto"),
            "--out",
            str(wire),
            str(REPO / "examples" / "proto" / "lab" / "v1" / "lab.proto"),
        ],
        check=True,
    )


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
    tests/src/nginx.rs), listening on a free port of 127.0.0.1."""

    def __init__(self, nginx: str, upstream: str, read_timeout_ms: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="steadfast-py-nginx-")
        self.addr = f"127.0.0.1:{free_port()}"
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = f"""{user}worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log info;
events {{}}
http {{
    access_log off;
    client_body_temp_path {self.dir}/client_body_temp;
    proxy_temp_path {self.dir}/proxy_temp;
    fastcgi_temp_path {self.dir}/fastcgi_temp;
    uwsgi_temp_path {self.dir}/uwsgi_temp;
    scgi_temp_path {self.dir}/scgi_temp;
    server {{
        listen {self.addr} http2;
        client_max_body_size 0;
        location / {{
            grpc_pass grpc://{upstream};
            grpc_read_timeout {read_timeout_ms}ms;
            grpc_send_timeout 60s;
        }}
    }}
}}
"""
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
