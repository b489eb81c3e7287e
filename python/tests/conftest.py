"""Fixtures: real example servers on port 0, the lab wire modules, channels."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest

import steadfast

from servers import Server, generate_lab


@pytest.fixture(scope="session")
def lab_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with ``gen/`` (the lab wire modules, importable)."""
    out = tmp_path_factory.mktemp("lab")
    wire = generate_lab(out)
    # The codegen writes the manifest beside the wire protos.
    (out / "manifest").write_text(str(wire / "steadfast.json"))
    sys.path.insert(0, str(out / "gen"))
    return out


@pytest.fixture(scope="session")
def wire(lab_out: Path) -> Path:
    """The manifest of the lab wire protos."""
    return Path((lab_out / "manifest").read_text())


@pytest.fixture(scope="session")
def gen_dir(lab_out: Path) -> Path:
    return lab_out / "gen"


@pytest.fixture(scope="session")
def lab_pb2(wire: Path) -> Any:
    from lab.v1 import lab_pb2

    return lab_pb2


@pytest.fixture(scope="session")
def lab_pb2_grpc(wire: Path) -> Any:
    from lab.v1 import lab_pb2_grpc

    return lab_pb2_grpc


@pytest.fixture(scope="session")
def manifest(wire: Path) -> steadfast.Manifest:
    return steadfast.Manifest.load(wire)


@pytest.fixture(scope="session")
def lab_server() -> Iterator[Server]:
    with Server("lab-server", "lab-server pylab", ["--name", "pylab"]) as server:
        yield server


@pytest.fixture
def frozen_lab() -> Iterator[Server]:
    """A lab server of its own, for a test that stops it with SIGSTOP."""
    with Server("lab-server", "lab-server frozen", ["--name", "frozen"]) as server:
        yield server


@pytest.fixture(scope="session")
def model_server() -> Iterator[Server]:
    with Server("model-server", "model-server pymodel", ["--name", "pymodel"]) as server:
        yield server


@pytest.fixture
def channel(lab_server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(lab_server.addr) as channel:
        yield channel


@pytest.fixture
def lab(channel: grpc.Channel, lab_pb2_grpc: Any, manifest: steadfast.Manifest) -> steadfast.Service:
    return steadfast.Service(lab_pb2_grpc.LabStub(channel), "lab.v1.Lab", manifest)
