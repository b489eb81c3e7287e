"""The vendored steadfast/v1 modules are what grpcio-tools generates from proto/ today.

With the grpcio-tools they were generated with (``steadfast.v1.GENERATED_WITH``),
byte for byte; with another version, whose output differs in its own ways, the
descriptors they carry (the proto's whole content) and the service's methods.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import steadfast.v1

from servers import REPO

VENDORED = REPO / "python" / "src" / "steadfast" / "v1"
FILES = [
    "frame_pb2.py", "frame_pb2.pyi", "dispatch_pb2.py", "dispatch_pb2.pyi", "dispatch_pb2_grpc.py",
    "options_pb2.py", "options_pb2.pyi",
]
REGENERATE = (
    f"pip install grpcio-tools=={steadfast.v1.GENERATED_WITH} && python -m grpc_tools.protoc -I proto "
    "--python_out=python/src --pyi_out=python/src --grpc_python_out=python/src "
    "steadfast/v1/frame.proto steadfast/v1/dispatch.proto steadfast/v1/options.proto && "
    "rm python/src/steadfast/v1/frame_pb2_grpc.py python/src/steadfast/v1/options_pb2_grpc.py"
)


def essence(name: str, text: str) -> object:
    if name.endswith("_pb2.py"):
        return re.findall(r"AddSerializedFile\((b'.*?')\)", text, re.DOTALL)
    if name.endswith("_grpc.py"):
        return sorted(set(re.findall(r"'(/steadfast\.v1\.\w+/\w+)'", text)))
    return None  # a .pyi follows its descriptor


def test_vendored_modules_match_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'proto'}",
         f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}",
         "steadfast/v1/frame.proto", "steadfast/v1/dispatch.proto", "steadfast/v1/options.proto"],
        check=True,
    )
    same_generator = version("grpcio-tools") == steadfast.v1.GENERATED_WITH
    for name in FILES:
        fresh = (tmp_path / "steadfast" / "v1" / name).read_text()
        vendored = (VENDORED / name).read_text()
        if same_generator:
            assert fresh == vendored, f"steadfast/v1/{name} is stale: {REGENERATE}"
        else:
            assert essence(name, fresh) == essence(name, vendored), f"steadfast/v1/{name} is stale: {REGENERATE}"
    assert essence("x_pb2.py", (VENDORED / "dispatch_pb2.py").read_text()), "the check sees descriptors"
    assert essence("x_grpc.py", (VENDORED / "dispatch_pb2_grpc.py").read_text()) == [
        "/steadfast.v1.Dispatch/Call", "/steadfast.v1.Dispatch/Describe"]


def test_the_vendored_modules_import_on_this_runtime() -> None:
    from steadfast.v1 import dispatch_pb2, dispatch_pb2_grpc, frame_pb2, options_pb2

    assert frame_pb2.Chunk(data=b"x", last=True).SerializeToString()
    assert dispatch_pb2.DispatchUpload.DESCRIPTOR.oneofs_by_name["kind"]
    assert dispatch_pb2_grpc.DispatchStub
    # Code generated from a proto as written (with steadfast's options) imports
    # these too: the installed package must not hide them.
    assert options_pb2.method.number
