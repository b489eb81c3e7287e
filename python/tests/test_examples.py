"""The example scripts run to success as subprocesses against the real
servers; the counter through a kill -9 and restart of its server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from servers import BIN_DIR, REPO, Server, generated_dir

EXAMPLES = REPO / "python" / "examples"


def env() -> dict[str, str]:
    src = str(REPO / "python" / "src")
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{path}" if path else src,
            "STEADFAST_BIN_DIR": str(BIN_DIR)}


def run(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], env=env(),
                          capture_output=True, text=True, timeout=timeout)


def test_four_shapes_prints_what_contact_client_prints():
    with Server("contact-server") as server:
        done = run("four_shapes.py", "--addr", server.addr, "--gen", str(generated_dir()))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == (
        [f"command {i}: ran `check disk {i}`" for i in range(1, 11)]
        + [f"task {i}: task-{i}" for i in range(1, 6)]
        + ["results held: 5"]
        + [f"status {i} acknowledged" for i in range(1, 6)]
    )


def test_four_shapes_generates_its_code_when_not_given_any():
    with Server("contact-server") as server:
        done = run("four_shapes.py", "--addr", server.addr, "--statuses", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "status 2 acknowledged"


def test_the_counter_counts_through_a_kill_9_and_restart_with_no_gap_or_repeat():
    with Server("gateway-server", args=["--delay-ms", "10"]) as server:
        client = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "counter_client.py"), "--addr", server.addr,
             "--until", "300", "--gen", str(generated_dir())],
            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            time.sleep(1.0)  # about half way
            server.restart()
            out, err = client.communicate(timeout=60)
        finally:
            client.kill()
    assert client.returncode == 0, err
    assert [int(n) for n in out.split()] == list(range(2, 301))
    assert "reconnected" in err, err


def test_the_counter_generates_its_code_when_not_given_any():
    with Server("gateway-server") as server:
        done = run("counter_client.py", "--addr", server.addr, "--until", "5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "3", "4", "5"]
