"""The vendored steadfast/v1 modules are what grpcio-tools generates from proto/ today."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from servers import REPO

VENDORED = REPO / "python" / "src" / "steadfast" / "v1"
FILES = [
    "frame_pb2.py", "frame_pb2.pyi", "dispatch_pb2.py", "dispatch_pb2.pyi", "dispatch_pb2_grpc.py",
]
# Lines that name the generator's version: a newer grpcio-tools may differ there only.
VERSION_LINES = re.compile(
    r"^(# Protobuf Python Version: .*|GRPC_GENERATED_VERSION = .*|    \d+,)$", re.MULTILINE
)


def normalize(text: str) -> str:
    return VERSION_LINES.sub("<version>", text)


def test_vendored_modules_match_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'proto'}",
         f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}",
         "steadfast/v1/frame.proto", "steadfast/v1/dispatch.proto"],
        check=True,
    )
    for name in FILES:
        fresh = (tmp_path / "steadfast" / "v1" / name).read_text()
        vendored = (VENDORED / name).read_text()
        assert normalize(fresh) == normalize(vendored), (
            f"steadfast/v1/{name} is stale: regenerate with\n  python -m grpc_tools.protoc -I proto "
            "--python_out=python/src --pyi_out=python/src --grpc_python_out=python/src "
            "steadfast/v1/frame.proto steadfast/v1/dispatch.proto\n(then delete frame_pb2_grpc.py)"
        )
