"""Scenarios for steadfast.session against the real example servers:
restarts (kill -9, same port), a hung server (SIGSTOP), giving up, and no
thread left behind."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from servers import KEEPALIVE, Server, channel, generated_modules, wait_no_new_threads
from steadfast.retry import RetryPolicy
from steadfast.session import (
    Ack,
    ClientStreamingSession,
    Event,
    ResumingStream,
    Session,
    SessionError,
)

PATIENT = RetryPolicy(max_attempts=30, initial_backoff=0.05, max_backoff=0.5)


@pytest.fixture(scope="module")
def pb():
    return generated_modules()


@pytest.fixture
def threads() -> Iterator[None]:
    """Fails the test if it leaves a thread running (grpcio's included)."""
    before = set(threading.enumerate())
    yield
    assert wait_no_new_threads(before) == []


def count(session: Session, pb, until: int, on_answer=lambda n: None) -> list[int]:
    """The counter of seed 000 through `session`: send 1, send back each answer."""
    session.send(pb["schema_pb2"].Request(num=1))
    seen = []
    for answer in session:
        seen.append(answer.num)
        on_answer(answer.num)
        if answer.num >= until:
            break
        session.send(pb["schema_pb2"].Request(num=answer.num))
    return seen


def test_a_counter_survives_three_kill_9_restarts_with_no_gap_no_repeat(pb, threads):
    events: list[Event] = []
    with Server("gateway-server", args=["--delay-ms", "5"]) as server:
        restarts = {60, 120, 180}

        def maybe_restart(n: int) -> None:
            if n in restarts:
                server.restart()

        with channel(server.addr) as ch:
            stub = pb["schema_pb2_grpc"].GatewayStub(ch)
            with Session(stub.Call, policy=PATIENT, wait_for_ready=True,
                         on_event=events.append) as session:
                seen = count(session, pb, 250, maybe_restart)
    assert seen == list(range(2, 251))
    kinds = [e.kind for e in events]
    assert kinds.count("disconnected") == 3, events
    assert kinds.count("reconnected") == 3, events


def test_a_restart_while_requests_are_in_flight_resends_them_in_order(pb, threads):
    # Ten requests ahead of their answers, acknowledged by sequence number
    # (contact's SendStatus): the ones lost with the server are sent again.
    Status = pb["contact_pb2"].AgentStatus
    with Server("contact-server", args=["--delay-ms", "20"]) as server:
        with channel(server.addr) as ch:
            stub = pb["contact_pb2_grpc"].ContactStub(ch)
            ack = Ack.with_rule(lambda a, oldest: a.seq - oldest.seq + 1)
            with Session(stub.SendStatus, policy=PATIENT, wait_for_ready=True,
                         capacity=10, ack=ack) as session:
                acks: list[int] = []

                def sender() -> None:
                    for seq in range(1, 101):
                        session.send(Status(seq=seq, state="ok"))
                    session.finish()

                t = threading.Thread(target=sender)
                t.start()
                for a in session:
                    acks.append(a.seq)
                    if a.seq == 30:
                        server.restart()
                t.join()
    # An ack lost with the connection is asked for again (its status is
    # re-sent): each acknowledged once, in order.
    assert acks == list(range(1, 101))


def test_closing_while_the_server_hangs_ends_every_thread(pb, threads):
    with Server("gateway-server") as server:
        with channel(server.addr) as ch:
            stub = pb["schema_pb2_grpc"].GatewayStub(ch)
            session = Session(stub.Call, policy=PATIENT)
            assert count(session, pb, 5) == [2, 3, 4, 5]
            server.freeze()
            session.send(pb["schema_pb2"].Request(num=5))
            received: list[object] = []
            receiver = threading.Thread(target=lambda: received.append(session.recv()))
            receiver.start()
            time.sleep(0.3)
            assert receiver.is_alive()  # blocked on the hung server
            started = time.monotonic()
            undelivered = session.close()
            receiver.join(5)
            assert not receiver.is_alive()
            assert time.monotonic() - started < 2
            assert received == [None]
            assert [r.num for r in undelivered] == [5]
            with pytest.raises(grpc.RpcError) as raised:
                session.send(pb["schema_pb2"].Request(num=6))
            assert raised.value.code() == grpc.StatusCode.CANCELLED
        server.thaw()


def test_a_hung_server_is_found_by_keepalive_and_the_count_goes_on(pb, threads):
    # SIGSTOP: the connection stays open and nothing answers. Keepalive (ping
    # every 0.5 s, 1 s to answer) must find it dead well before the server is
    # restarted, 4 s later; then the count goes on with no gap.
    events: list[tuple[float, Event]] = []
    with Server("gateway-server", args=["--delay-ms", "5"]) as server:
        with channel(server.addr, *KEEPALIVE) as ch:
            stub = pb["schema_pb2_grpc"].GatewayStub(ch)
            with Session(stub.Call, policy=PATIENT, wait_for_ready=True,
                         on_event=lambda e: events.append((time.monotonic(), e))) as session:
                session.send(pb["schema_pb2"].Request(num=1))
                seen = []
                for answer in session:
                    seen.append(answer.num)
                    if answer.num == 20:
                        server.freeze()
                        paused = time.monotonic()
                        restart = threading.Timer(4.0, server.restart)
                        restart.start()
                    if answer.num >= 40:
                        break
                    session.send(pb["schema_pb2"].Request(num=answer.num))
            restart.join()
    assert seen == list(range(2, 41))
    disconnected = [(t, e) for t, e in events if e.kind == "disconnected"]
    assert disconnected, events
    at, first = disconnected[0]
    assert first.code == grpc.StatusCode.UNAVAILABLE
    assert at - paused < 3.5, (at - paused, first)


def test_a_session_gives_up_after_max_attempts_without_progress(pb, threads):
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05)
    events: list[Event] = []
    with Server("gateway-server") as server:
        with channel(server.addr) as ch:
            stub = pb["schema_pb2_grpc"].GatewayStub(ch)
            with Session(stub.Call, policy=policy, on_event=events.append) as session:
                assert count(session, pb, 3) == [2, 3]
                server.kill()
                session.send(pb["schema_pb2"].Request(num=3))
                with pytest.raises(grpc.RpcError) as raised:
                    session.recv()
                assert isinstance(raised.value, SessionError)
                assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "gave up after 3 attempts in a row" in raised.value.details()
                assert [r.num for r in session.undelivered] == [3]
                assert events[-1].kind == "gave_up"
                with pytest.raises(grpc.RpcError):
                    session.send(pb["schema_pb2"].Request(num=4))


def test_a_code_the_policy_does_not_retry_ends_the_session_at_once(pb, threads):
    with Server("gateway-server") as server:
        with channel(server.addr) as ch:
            # A deadline per attempt: DEADLINE_EXCEEDED is not retried.
            call = pb["schema_pb2_grpc"].GatewayStub(ch).Call

            def with_deadline(requests, **kw):
                return call(requests, timeout=0.3, **kw)

            with Session(with_deadline, policy=PATIENT) as session:
                session.send(pb["schema_pb2"].Request(num=1))
                assert session.recv().num == 2
                with pytest.raises(grpc.RpcError) as raised:
                    session.recv()
                assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_resuming_task_stream_continues_after_the_last_task_across_a_restart(pb, threads):
    TaskQuery = pb["contact_pb2"].TaskQuery
    events: list[Event] = []
    with Server("contact-server", args=["--tasks", "30", "--delay-ms", "20"]) as server:
        with channel(server.addr) as ch:
            stub = pb["contact_pb2_grpc"].ContactStub(ch)
            with ResumingStream(stub.GetTask, TaskQuery(from_seq=1),
                                resume=lambda q, task: TaskQuery(from_seq=task.seq + 1),
                                policy=PATIENT, wait_for_ready=True, timeout=60,
                                on_event=events.append) as tasks:
                seqs = []
                for task in tasks:
                    seqs.append(task.seq)
                    if task.seq in (7, 19):
                        server.restart()
    assert seqs == list(range(1, 31))
    assert [e.kind for e in events].count("reconnected") == 2


def test_a_resuming_stream_ends_with_deadline_exceeded_when_its_whole_deadline_passes(pb, threads):
    TaskQuery = pb["contact_pb2"].TaskQuery
    with Server("contact-server", args=["--tasks", "1000", "--delay-ms", "50"]) as server:
        with channel(server.addr) as ch:
            stub = pb["contact_pb2_grpc"].ContactStub(ch)
            started = time.monotonic()
            tasks = ResumingStream(stub.GetTask, TaskQuery(from_seq=1),
                                   resume=lambda q, t: TaskQuery(from_seq=t.seq + 1),
                                   policy=PATIENT, timeout=1.0)
            seen = []
            with pytest.raises(grpc.RpcError) as raised:
                for task in tasks:
                    seen.append(task.seq)
                    if task.seq == 5:
                        server.restart()
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - started < 3
            assert seen == list(range(1, len(seen) + 1))


def test_a_client_stream_is_sent_again_whole_when_the_server_comes_up_late(pb, threads):
    Result = pb["contact_pb2"].TaskResult
    with Server("contact-server") as server:
        server.kill()  # down when the session starts
        with channel(server.addr) as ch:
            stub = pb["contact_pb2_grpc"].ContactStub(ch)
            policy = RetryPolicy(max_attempts=5, initial_backoff=0.5, max_backoff=1.0)
            session = ClientStreamingSession(stub.TellResult, policy=policy,
                                             rng=_Max())
            for seq in range(1, 11):
                session.send(Result(task_seq=seq, outcome="done"))
            threading.Timer(0.3, server.start).start()
            with session:
                assert session.result().tasks == 10


def test_a_client_stream_longer_than_its_capacity_is_not_sent_again(pb, threads):
    Result = pb["contact_pb2"].TaskResult
    with Server("contact-server") as server:
        with channel(server.addr) as ch:
            stub = pb["contact_pb2_grpc"].ContactStub(ch)
            session = ClientStreamingSession(stub.TellResult, capacity=2,
                                             policy=RetryPolicy(initial_backoff=0.01))
            with session:
                for seq in range(1, 5):
                    session.send(Result(task_seq=seq), timeout=5)
                time.sleep(0.3)  # all four sent (and forgotten past the first two)
                server.kill()
                with pytest.raises(grpc.RpcError) as raised:
                    session.result()
                assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "cannot be sent again" in raised.value.details()


class _Max:
    """An rng whose jitter is always the full backoff."""

    def uniform(self, low: float, high: float) -> float:
        return high


# --- grpc.aio ----------------------------------------------------------------

import asyncio  # noqa: E402

import pytest_asyncio  # noqa: E402
from steadfast.session import (  # noqa: E402
    AsyncClientStreamingSession,
    AsyncResumingStream,
    AsyncSession,
)


@pytest_asyncio.fixture
async def aio_clean() -> AsyncIterator[None]:
    """Fails the test if it leaves a task or a thread running (but grpc.aio's
    poller thread, `_poll_wrapper`, which grpcio starts for an event loop and
    keeps)."""
    threads_before = set(threading.enumerate())
    tasks_before = asyncio.all_tasks()
    yield
    for _ in range(100):
        extra = asyncio.all_tasks() - tasks_before - {asyncio.current_task()}
        if not extra:
            break
        await asyncio.sleep(0.05)
    assert extra == set()
    assert wait_no_new_threads(threads_before, ignore="_poll_wrapper") == []


def aio_channel(addr: str, *options: tuple[str, object]) -> grpc.aio.Channel:
    from servers import FAST_RECONNECT
    return grpc.aio.insecure_channel(addr, options=[*FAST_RECONNECT, *options])


@pytest.mark.asyncio
async def test_aio_a_counter_survives_two_kill_9_restarts_with_no_gap_no_repeat(pb, aio_clean):
    Request = pb["schema_pb2"].Request
    events: list[Event] = []
    with Server("gateway-server", args=["--delay-ms", "5"]) as server:
        async with aio_channel(server.addr) as ch:
            stub = pb["schema_pb2_grpc"].GatewayStub(ch)
            async with AsyncSession(stub.Call, policy=PATIENT, wait_for_ready=True,
                                    on_event=events.append) as session:
                await session.send(Request(num=1))
                seen = []
                async for answer in session:
                    seen.append(answer.num)
                    if answer.num in (50, 100):
                        server.restart()
                    if answer.num >= 150:
                        break
                    await session.send(Request(num=answer.num))
    assert seen == list(range(2, 151))
    assert [e.kind for e in events].count("reconnected") == 2, events


@pytest.mark.asyncio
async def test_aio_closing_while_the_server_hangs_ends_the_receiver(pb, aio_clean):
    Request = pb["schema_pb2"].Request
    with Server("gateway-server") as server:
        async with aio_channel(server.addr) as ch:
            stub = pb["schema_pb2_grpc"].GatewayStub(ch)
            session = AsyncSession(stub.Call, policy=PATIENT)
            await session.send(Request(num=1))
            assert (await session.recv()).num == 2
            server.freeze()
            await session.send(Request(num=2))
            receiver = asyncio.ensure_future(session.recv())
            await asyncio.sleep(0.3)
            assert not receiver.done()
            assert [r.num for r in session.close()] == [2]
            assert await asyncio.wait_for(receiver, 2) is None
            with pytest.raises(grpc.RpcError) as raised:
                await session.send(Request(num=3))
            assert raised.value.code() == grpc.StatusCode.CANCELLED
        server.thaw()


@pytest.mark.asyncio
async def test_aio_a_session_gives_up_after_max_attempts(pb, aio_clean):
    Request = pb["schema_pb2"].Request
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05)
    with Server("gateway-server") as server:
        async with aio_channel(server.addr) as ch:
            stub = pb["schema_pb2_grpc"].GatewayStub(ch)
            async with AsyncSession(stub.Call, policy=policy) as session:
                await session.send(Request(num=1))
                assert (await session.recv()).num == 2
                server.kill()
                await session.send(Request(num=2))
                with pytest.raises(SessionError) as raised:
                    await session.recv()
                assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "gave up after 3 attempts in a row" in raised.value.details()
                assert [r.num for r in session.undelivered] == [2]


@pytest.mark.asyncio
async def test_aio_a_resuming_task_stream_continues_across_a_restart(pb, aio_clean):
    TaskQuery = pb["contact_pb2"].TaskQuery
    with Server("contact-server", args=["--tasks", "20", "--delay-ms", "20"]) as server:
        async with aio_channel(server.addr) as ch:
            stub = pb["contact_pb2_grpc"].ContactStub(ch)
            seqs = []
            async with AsyncResumingStream(
                    stub.GetTask, TaskQuery(from_seq=1),
                    resume=lambda q, t: TaskQuery(from_seq=t.seq + 1),
                    policy=PATIENT, wait_for_ready=True, timeout=60) as tasks:
                async for task in tasks:
                    seqs.append(task.seq)
                    if task.seq == 8:
                        server.restart()
    assert seqs == list(range(1, 21))


@pytest.mark.asyncio
async def test_aio_a_client_stream_is_sent_again_when_the_server_comes_up_late(pb, aio_clean):
    Result = pb["contact_pb2"].TaskResult
    with Server("contact-server") as server:
        server.kill()
        async with aio_channel(server.addr) as ch:
            stub = pb["contact_pb2_grpc"].ContactStub(ch)
            policy = RetryPolicy(max_attempts=5, initial_backoff=0.5, max_backoff=1.0)
            async with AsyncClientStreamingSession(stub.TellResult, policy=policy,
                                                   rng=_Max()) as session:
                for seq in range(1, 8):
                    await session.send(Result(task_seq=seq))
                loop = asyncio.get_running_loop()
                loop.call_later(0.3, server.start)
                assert (await session.result()).tasks == 7
