"""The grpc.aio surface against real servers."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any, List

import grpc
import grpc.aio
import pytest

import steadfast
import steadfast.aio


def aio_lab(addr: str, lab_pb2_grpc: Any, manifest: steadfast.Manifest) -> Any:
    channel = grpc.aio.insecure_channel(addr)
    return channel, steadfast.aio.Service(lab_pb2_grpc.LabStub(channel), "lab.v1.Lab", manifest)


@pytest.mark.asyncio
async def test_sleep_with_progress(lab_server: Any, lab_pb2: Any, lab_pb2_grpc: Any, manifest: steadfast.Manifest) -> None:
    channel, lab = aio_lab(lab_server.addr, lab_pb2_grpc, manifest)
    async with channel:
        beats: List[Any] = []
        reply = await lab.call("Sleep", lab_pb2.SleepRequest(millis=1300), timeout=20, on_progress=beats.append)
        assert reply.slept_ms >= 1300
        assert [b.seq for b in beats] == list(range(1, len(beats) + 1)) and len(beats) >= 2
        stub = lab_pb2_grpc.LabStub(channel)
        reply = await steadfast.aio.call(stub.Sleep, lab_pb2.SleepRequest(millis=200), heartbeat_ms=500, timeout=20)
        assert reply.slept_ms >= 200


@pytest.mark.asyncio
async def test_ticks(lab_server: Any, lab_pb2: Any, lab_pb2_grpc: Any, manifest: steadfast.Manifest) -> None:
    channel, lab = aio_lab(lab_server.addr, lab_pb2_grpc, manifest)
    async with channel:
        ticks = [t.n async for t in lab.stream("Ticks", lab_pb2.TicksRequest(count=3, gap_ms=600), timeout=20)]
        assert ticks == [1, 2, 3]
        assert (await lab.call("WhoAmI", lab_pb2.WhoAmIRequest(), timeout=10)).name == "pylab"


@pytest.mark.asyncio
async def test_deadline(lab_server: Any, lab_pb2: Any, lab_pb2_grpc: Any, manifest: steadfast.Manifest) -> None:
    channel, lab = aio_lab(lab_server.addr, lab_pb2_grpc, manifest)
    async with channel:
        with pytest.raises(grpc.RpcError) as caught:
            await lab.call("Sleep", lab_pb2.SleepRequest(millis=10_000), timeout=1.0)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.asyncio
async def test_a_frozen_server_is_unavailable(frozen_lab: Any, lab_pb2: Any, lab_pb2_grpc: Any, manifest: steadfast.Manifest) -> None:
    channel, lab = aio_lab(frozen_lab.addr, lab_pb2_grpc, manifest)
    async with channel:
        loop = asyncio.get_running_loop()
        handle = loop.call_later(1.2, frozen_lab.freeze)
        started = time.monotonic()
        try:
            with pytest.raises(grpc.RpcError) as caught:
                await lab.call("Sleep", lab_pb2.SleepRequest(millis=20_000), timeout=30)
        finally:
            handle.cancel()
            frozen_lab.thaw()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert caught.value.details().endswith("(liveness window 1.5s); call abandoned")
        assert 1.5 < time.monotonic() - started < 4.5
        assert (await lab.call("Sleep", lab_pb2.SleepRequest(millis=50), timeout=10)).slept_ms >= 50


@pytest.mark.asyncio
async def test_digest_and_fetch(lab_server: Any, lab_pb2: Any, lab_pb2_grpc: Any, manifest: steadfast.Manifest, tmp_path: Any) -> None:
    channel, lab = aio_lab(lab_server.addr, lab_pb2_grpc, manifest)
    async with channel:
        data = b"aio " * 300_000
        reply = await lab.call("Digest", lab_pb2.DigestRequest(), blob=steadfast.BlobSource.from_bytes(data), timeout=60)
        assert reply.sha256_hex == hashlib.sha256(data).hexdigest()
        reply, blob = await lab.download("Fetch", lab_pb2.FetchRequest(size=2_000_000, seed=7), timeout=60)
        assert await blob.to_file(tmp_path / "a.bin") == 2_000_000
        _, blob = await lab.download("Fetch", lab_pb2.FetchRequest(size=2_000_000, seed=7), timeout=60)
        assert await blob.to_bytes() == (tmp_path / "a.bin").read_bytes()


@pytest.mark.asyncio
async def test_dispatch(model_server: Any) -> None:
    async with grpc.aio.insecure_channel(model_server.addr) as channel:
        model = steadfast.aio.Dispatch(channel)
        names = [f.name for f in await model.describe()]
        assert "hello" in names and "predict" in names
        assert await model.call("hello", {"name": "Ada"}, timeout=10) == "hello, Ada from pymodel"
        beats: List[Any] = []
        data = b"predict " * 100_000
        result = await model.call("predict", {"delay_ms": 1200}, blob=steadfast.BlobSource.from_bytes(data), timeout=30, on_progress=beats.append)
        assert result["sha256_hex"] == hashlib.sha256(data).hexdigest() and beats
        result, blob = await model.download("echo_blob", None, blob=steadfast.BlobSource.from_bytes(data), timeout=30)
        assert await blob.to_bytes() == data
        with pytest.raises(grpc.RpcError) as caught:
            await model.call("nope", {}, timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
