"""The manifest, framing metadata and error formatting (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

import steadfast
from steadfast._frames import window_seconds, with_framing
from steadfast.errors import StatusError, format_duration


def test_load_a_manifest_and_a_service_config(tmp_path: Path) -> None:
    (tmp_path / "steadfast.json").write_text(json.dumps({"version": 1, "methods": {
        "/lab.v1.Lab/Digest": {"heartbeat_ms": 1000, "request_blob": True, "response_blob": False}}}))
    manifest = steadfast.Manifest.load(tmp_path)
    info = manifest.get("/lab.v1.Lab/Digest")
    assert info == steadfast.MethodInfo("/lab.v1.Lab/Digest", 1000, True, False)
    assert manifest.heartbeat_ms("/lab.v1.Lab/Nope") == 0
    assert steadfast.Manifest.load(tmp_path / "steadfast.json").methods() == [info]
    with pytest.raises(ValueError):
        steadfast.Manifest.from_dict({"version": 2})
    config = {"methodConfig": [{"name": [{"service": "lab.v1.Lab"}], "timeout": "10s"}]}
    (tmp_path / "service_config.json").write_text(json.dumps(config))
    options = dict(steadfast.channel_options(tmp_path))
    assert json.loads(options["grpc.service_config"]) == config
    assert options["grpc.enable_retries"] == 1


def test_framing_metadata_is_added_once() -> None:
    assert with_framing([("a", "1"), ("steadfast-framing", "v0")]) == [("a", "1"), ("steadfast-framing", "v1")]


def test_the_window_is_three_intervals_unless_given() -> None:
    assert window_seconds(500, None) == 1.5
    assert window_seconds(500, 10) == 10
    assert window_seconds(None, None) is None
    assert window_seconds(0, None) is None


def test_durations_read_like_rust() -> None:
    assert [format_duration(s) for s in (1.5, 3, 0.5, 1.2345, 0)] == ["1.5s", "3s", "500ms", "1.234s", "0ms"]


def test_status_error_is_an_rpc_error() -> None:
    error = StatusError(grpc.StatusCode.DATA_LOSS, "gone")
    assert isinstance(error, grpc.RpcError)
    assert (error.code(), error.details(), error.trailing_metadata()) == (grpc.StatusCode.DATA_LOSS, "gone", ())


def test_calls_ask_for_the_framed_shape() -> None:
    """Every call sends ``steadfast-framing: v1`` beside the caller's metadata."""
    from steadfast.v1 import dispatch_pb2

    seen = {}

    class Frames:
        def __init__(self) -> None:
            self.frames = iter([dispatch_pb2.DispatchFrame(message=dispatch_pb2.CallResult(result=b"1"))])

        def __next__(self) -> object:
            return next(self.frames)

        def cancel(self) -> None:
            pass

    def multicallable(request: object, **kwargs: object) -> Frames:
        seen.update(kwargs)
        return Frames()

    reply = steadfast.call(multicallable, None, timeout=5, metadata=[("x-user", "ada")])
    assert reply.result == b"1"
    assert seen == {"timeout": 5, "metadata": [("x-user", "ada"), ("steadfast-framing", "v1")]}
