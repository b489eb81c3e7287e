"""Heartbeat calls with grpcio's sync API against a real lab-server."""

from __future__ import annotations

import threading
import time
from typing import Any, List

import grpc
import pytest

import steadfast


def test_sleep_hides_heartbeats_and_reports_progress(lab: steadfast.Service, lab_pb2: Any) -> None:
    beats: List[Any] = []
    reply = lab.call("Sleep", lab_pb2.SleepRequest(millis=1600), timeout=20, on_progress=beats.append)
    assert reply.slept_ms >= 1600
    assert isinstance(reply, lab_pb2.SleepReply)
    assert len(beats) >= 2, beats
    assert [b.seq for b in beats] == list(range(1, len(beats) + 1))
    assert all(b.HasField("progress") and 0 <= b.progress <= 1 for b in beats)
    assert beats[-1].elapsed_ms >= 1000


def test_the_low_level_call_takes_the_stub_method(channel: grpc.Channel, lab_pb2: Any, lab_pb2_grpc: Any) -> None:
    stub = lab_pb2_grpc.LabStub(channel)
    seqs: List[int] = []
    reply = steadfast.call(
        stub.Sleep, lab_pb2.SleepRequest(millis=700), heartbeat_ms=500, timeout=20,
        on_progress=lambda hb: seqs.append(hb.seq),
    )
    assert reply.slept_ms >= 700 and seqs[:1] == [1]


def test_ticks_stream_yields_the_messages(lab: steadfast.Service, lab_pb2: Any) -> None:
    beats: List[Any] = []
    ticks = [t.n for t in lab.stream("Ticks", lab_pb2.TicksRequest(count=3, gap_ms=700), timeout=20, on_progress=beats.append)]
    assert ticks == [1, 2, 3]
    assert beats, "a gap over the 500 ms interval brings a heartbeat"


def test_count_takes_a_request_stream(lab: steadfast.Service, lab_pb2: Any) -> None:
    def ticks() -> Any:
        for n in (1, 2, 3):
            time.sleep(0.2)
            yield lab_pb2.Tick(n=n)

    reply = lab.call("Count", ticks(), timeout=20)
    assert (reply.count, reply.sum) == (3, 6)


def test_a_method_without_options_is_called_plain(lab: steadfast.Service, lab_pb2: Any) -> None:
    assert lab.call("WhoAmI", lab_pb2.WhoAmIRequest(), timeout=10).name == "pylab"


def test_a_stream_closed_early_cancels_the_call(lab: steadfast.Service, lab_pb2: Any) -> None:
    before = threading.active_count()
    with lab.stream("Ticks", lab_pb2.TicksRequest(count=100, gap_ms=50), timeout=20) as ticks:
        assert next(ticks).n == 1
    assert ticks.call.code() == grpc.StatusCode.CANCELLED
    time.sleep(0.1)
    assert threading.active_count() <= before, "the liveness watchdog stopped"


def test_the_deadline_is_honoured(lab: steadfast.Service, lab_pb2: Any) -> None:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        lab.call("Sleep", lab_pb2.SleepRequest(millis=10_000), timeout=1.0)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3


def test_a_frozen_server_is_unavailable_within_the_window(frozen_lab: Any, lab_pb2: Any, lab_pb2_grpc: Any, manifest: steadfast.Manifest) -> None:
    with grpc.insecure_channel(frozen_lab.addr) as channel:
        lab = steadfast.Service(lab_pb2_grpc.LabStub(channel), "lab.v1.Lab", manifest)
        beats: List[Any] = []
        timer = threading.Timer(1.2, frozen_lab.freeze)
        timer.start()
        started = time.monotonic()
        try:
            with pytest.raises(grpc.RpcError) as caught:
                lab.call("Sleep", lab_pb2.SleepRequest(millis=20_000), timeout=30, on_progress=beats.append)
        finally:
            timer.cancel()
            frozen_lab.thaw()
        took = time.monotonic() - started
        error = caught.value
        assert isinstance(error, steadfast.StatusError)
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "(liveness window 1.5s); call abandoned" in error.details(), error.details()
        assert error.details().startswith("no frame from the server for 1.5")
        assert beats, "heartbeats came before the freeze"
        # Frozen at 1.2 s, the last heartbeat at most 0.5 s before: over by 2.7 s (+ slack).
        assert 1.5 < took < 4.5, took
        # Thawed, the server serves again.
        assert lab.call("Sleep", lab_pb2.SleepRequest(millis=100), timeout=10).slept_ms >= 100


def test_a_liveness_window_given_overrides_the_manifest(lab: steadfast.Service, lab_pb2: Any) -> None:
    # Ticks 1.2 s apart: heartbeats fill the gaps (every 500 ms), so a 1 s window holds.
    ticks = list(lab.stream("Ticks", lab_pb2.TicksRequest(count=2, gap_ms=1200), liveness=1.0, timeout=20))
    assert [t.n for t in ticks] == [1, 2]


def test_an_abandoned_stream_leaves_no_thread(lab: steadfast.Service, lab_pb2: Any) -> None:
    import gc

    before = {t.ident for t in threading.enumerate()}
    ticks = lab.stream("Ticks", lab_pb2.TicksRequest(count=100, gap_ms=50), timeout=20)
    assert next(ticks).n == 1
    watchdogs = [t for t in threading.enumerate() if t.name == "steadfast-liveness" and t.ident not in before]
    assert len(watchdogs) == 1
    del ticks
    gc.collect()
    watchdogs[0].join(5)
    assert not watchdogs[0].is_alive(), "the watchdog of a garbage-collected stream ends"
