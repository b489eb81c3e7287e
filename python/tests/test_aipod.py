"""Seed 004's deployment: the aipod example through a real nginx running
examples/deploy/nginx.conf (its listen address, backends and read timeout
replaced, the rest as shipped, like examples/tests/model_nginx.rs) with
``grpc_read_timeout 1s``, in front of two model-servers of different names."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from servers import REPO, Nginx, Server, nginx_binary

DEPLOY_CONF = REPO / "examples" / "deploy" / "nginx.conf"
EXAMPLE = REPO / "python" / "examples" / "aipod_client.py"
# The snippet's groups and the server that runs in each: models-b's server also
# serves the default group.
GROUPS = {"models_default": "aipod-b", "models_a": "aipod-a", "models_b": "aipod-b"}


def render(listen: str, backends: Dict[str, str], read_timeout: str) -> str:
    """The snippet with its one ``listen``, one ``grpc_read_timeout`` and each
    group's ``server`` line replaced; fails when the snippet has drifted."""
    out: List[str] = []
    group = None
    replaced: List[str] = []
    listens = timeouts = 0
    for line in DEPLOY_CONF.read_text().splitlines():
        code = line.split("#")[0].strip()
        indent = line[: len(line) - len(line.lstrip())]
        if code.startswith("upstream ") and code.endswith("{"):
            group = code[len("upstream ") : -1].strip()
        elif code == "}":
            group = None
        if code.startswith("server ") and group is not None:
            replaced.append(group)
            line = f"{indent}server {backends[group]};"
        elif code.startswith("listen "):
            listens += 1
            line = f"{indent}listen {listen} http2;"
        elif code.startswith("grpc_read_timeout "):
            timeouts += 1
            line = f"{indent}grpc_read_timeout {read_timeout};"
        out.append(line)
    assert sorted(replaced) == sorted(backends), "one `server` line per upstream group"
    assert (listens, timeouts) == (1, 1), "one listen, one read timeout"
    return "\n".join(out)


@pytest.fixture
def deployment() -> Iterator[Nginx]:
    found = nginx_binary()
    if found is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("nginx is required in CI (apt-get install nginx)")
        pytest.skip("nginx not found (apt-get install nginx)")
    servers = {name: Server("model-server", f"model-server {name}", ["--name", name])
               for name in sorted(set(GROUPS.values()))}
    try:
        backends = {g: servers[n].addr for g, n in GROUPS.items()}
        proxy = Nginx.start_with(found, lambda addr: render(addr, backends, "1s"))
        try:
            yield proxy
        finally:
            proxy.stop()
    finally:
        for server in servers.values():
            server.stop()


def run_example(addr: str, *args: str) -> Tuple[subprocess.CompletedProcess[str], float]:
    src = str(REPO / "python" / "src")
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{path}" if path else src}
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(EXAMPLE), "--addr", addr, *args],
                          env=env, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


def test_a_3_s_predict_with_params_and_a_file_passes_nginx_cutting_idle_calls_after_1_s(
    deployment: Nginx, tmp_path: Path
) -> None:
    data = bytes(i % 251 for i in range(3 << 20))
    model_input = tmp_path / "input.bin"
    model_input.write_bytes(data)
    done, took = run_example(deployment.addr, "--upstream", "models-a", "--delay-ms", "3000",
                             str(model_input))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"size={len(data)} sha256={hashlib.sha256(data).hexdigest()} served_by=aipod-a"
    ]
    assert took >= 3.0
    progress = done.stderr.splitlines()
    assert f"upload {len(data)}/{len(data)} bytes" in progress, done.stderr
    beats = [line for line in progress if line.startswith("server seq=")]
    assert len(beats) >= 4 and "progress=" in beats[-1], done.stderr
    assert "upstream timed out" not in deployment.logs()


def test_x_upstream_picks_the_other_group(deployment: Nginx, tmp_path: Path) -> None:
    model_input = tmp_path / "input.bin"
    model_input.write_bytes(b"which backend?")
    done, _ = run_example(deployment.addr, "--upstream", "models-b", str(model_input))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("served_by=aipod-b")
