"""Through a real nginx that cuts calls idle for 1 s (grpc_read_timeout 1s)."""

from __future__ import annotations

import os
from typing import Any, Iterator

import grpc
import pytest

import steadfast

from servers import Nginx, nginx_binary


@pytest.fixture
def nginx(lab_server: Any) -> Iterator[Nginx]:
    found = nginx_binary()
    if found is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("nginx is required in CI (apt-get install nginx)")
        pytest.skip("nginx not found (apt-get install nginx)")
    proxy = Nginx(found, lab_server.addr, read_timeout_ms=1000)
    yield proxy
    proxy.stop()


def test_a_3_s_heartbeat_call_passes_a_proxy_that_cuts_idle_calls_after_1_s(
    nginx: Nginx, lab_pb2: Any, lab_pb2_grpc: Any, manifest: steadfast.Manifest
) -> None:
    with grpc.insecure_channel(nginx.addr) as channel:
        lab = steadfast.Service(lab_pb2_grpc.LabStub(channel), "lab.v1.Lab", manifest)
        beats = []
        reply = lab.call("Sleep", lab_pb2.SleepRequest(millis=3000), timeout=20, on_progress=beats.append)
        assert reply.slept_ms >= 3000 and len(beats) >= 4
        # The same sleep without heartbeats is cut by the proxy: the setup bites.
        with pytest.raises(grpc.RpcError) as caught:
            lab.call("SleepPlain", lab_pb2.SleepRequest(millis=3000), timeout=20)
        assert caught.value.code() != grpc.StatusCode.OK
        assert "timed out" in nginx.logs()
