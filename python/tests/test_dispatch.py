"""steadfast.Dispatch on a real model-server."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, List

import grpc
import pytest

import steadfast


@pytest.fixture
def model(model_server: Any) -> Any:
    with grpc.insecure_channel(model_server.addr) as channel:
        yield steadfast.Dispatch(channel)


def test_describe_lists_the_functions(model: steadfast.Dispatch) -> None:
    functions = {f.name: f for f in model.describe()}
    assert {"hello", "predict", "echo_blob"} <= set(functions)
    predict = functions["predict"]
    assert predict.heartbeat_ms == 500 and predict.takes_blob and not predict.returns_blob
    assert functions["echo_blob"].returns_blob
    assert predict.params_schema is not None and "delay_ms" in str(predict.params_schema)


def test_hello(model: steadfast.Dispatch) -> None:
    assert model.call("hello", {"name": "Ada"}, timeout=10) == "hello, Ada from pymodel"


def test_predict_with_a_blob_and_progress(model: steadfast.Dispatch, tmp_path: Path) -> None:
    path = tmp_path / "input.bin"
    path.write_bytes(b"model input " * 200_000)
    beats: List[Any] = []
    result = model.call("predict", {"delay_ms": 1500}, blob=steadfast.BlobSource.from_path(path), timeout=30, on_progress=beats.append)
    assert result == {
        "size": path.stat().st_size,
        "sha256_hex": hashlib.sha256(path.read_bytes()).hexdigest(),
        "served_by": "pymodel",
    }
    assert len(beats) >= 2 and any(b.HasField("progress") for b in beats)


def test_a_returned_blob_is_read_verified(model: steadfast.Dispatch, tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    result, blob = model.download("echo_blob", None, blob=steadfast.BlobSource.from_bytes(data), timeout=30)
    assert result is None
    assert blob.to_file(tmp_path / "echo.bin") == len(data)
    assert (tmp_path / "echo.bin").read_bytes() == data


def test_an_unknown_name_is_unimplemented(model: steadfast.Dispatch) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        model.call("no_such_function", {}, timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "hello" in caught.value.details()


def test_bad_params_are_invalid_argument(model: steadfast.Dispatch) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        model.call("hello", {"name": 5}, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
