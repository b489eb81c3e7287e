"""Reconnecting calls for grpcio: streams that outlive a server restart.

Mirrors Rust's ``steadfast::session`` (``runtime/src/session``):

- :class:`Session` (bidi) and :class:`ClientStreamingSession` send each
  request at least once, in order, until a response acknowledges it, and hand
  each response over once, in order, across reconnects;
- :class:`ResumingStream` (server-streaming) asks again, after a reconnect,
  for what comes after the last response seen, by a rule of the application.

Example, the counter of ``examples/proto/schema.proto``::

    with Session(stub.Call, policy=RetryPolicy(max_attempts=30), wait_for_ready=True) as s:
        s.send(Request(num=1))
        for answer in s:                 # reconnects by itself; no gap, no repeat
            s.send(Request(num=answer.num))

Delivery
--------
The session owns a buffer of requests (at most ``2 × capacity``:
:meth:`Session.send` blocks while it is full). An attempt's request iterator
never *takes* a message off anything: it yields a copy of the next request in
the buffer, where the request stays until a response acknowledges it (by
default each response acknowledges the oldest outstanding request, see
:class:`Ack`). A new attempt starts again from the oldest unacknowledged
request, so it re-sends every one of them first, in order, then continues. So
a server that answers each request once is seen answering each exactly once.

Why the classic reconnect bug cannot happen (seed 000)
-------------------------------------------------------
grpcio runs each call's request iterator in a thread of its own. The
hand-written loop shares one queue between attempts: the dead attempt's
thread has already taken the next message off it, nobody sends that message,
and each retry leaves one more thread blocked on the queue. Here the message
stays in the buffer until acknowledged, and an attempt's iterator ends (and
grpcio's thread with it) as soon as the attempt is no longer the current one.

Threads
-------
None of its own: the application's :meth:`Session.recv` (or iteration)
drives the attempts, reconnecting in the caller's thread. The only threads
are grpcio's, one per live attempt to send its requests, and each ends when
its attempt ends or the session closes. :meth:`Session.close` (also from
another thread, also while the server hangs) cancels the current call and
ends its iterator, so after ``close`` and closing the channel,
``threading.enumerate()`` is what it was before the session.

Reconnecting and giving up
--------------------------
An attempt that fails with a code the policy retries (``UNAVAILABLE`` by
default: what grpcio reports for a refused or reset connection) or with a
lost connection reported under another code (``INTERNAL``/``UNKNOWN`` "RST_STREAM",
"Stream removed", "Socket closed") is followed by another after the policy's
backoff (full jitter), or the server's ``grpc-retry-pushback-ms``. An attempt
*made progress* when its responses acknowledged at least two requests; the
session gives up after ``policy.max_attempts`` failed attempts in a row
without progress, at once on another code or a pushback to stop. Giving up
raises the last status from :meth:`Session.recv`, with "gave up after N
attempts in a row without progress" appended when that is why.

``wait_for_ready=True`` passes grpcio's wait-for-ready to each attempt, so a
reconnect waits for the server to be back however long it takes. The session
does not judge liveness: set keepalive on the channel
(``grpc.keepalive_time_ms``, ``grpc.keepalive_timeout_ms`` and, with grpcio
1.85, ``grpc.http2.ping_timeout_ms``, which times the keepalive ping out and
defaults to 60 s) so that a hung server's connection is found dead.

Errors
------
Every error is a :class:`grpc.RpcError` with ``code()``, ``details()`` and
``trailing_metadata()``: the failed attempt's own status, or ``CANCELLED``
"session closed" for a session closed by the application.

``grpc.aio``: :class:`AsyncSession`, :class:`AsyncClientStreamingSession`
and :class:`AsyncResumingStream` mirror the three, with the same rules
(``await send``, ``async for``, ``async with``); they start no task, and
grpc.aio's task that sends an attempt's requests ends with the attempt.
"""

from __future__ import annotations

import asyncio
import collections
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union

if TYPE_CHECKING:
    from typing_extensions import Self

import grpc

from .errors import StatusError
from .retry import RetryPolicy

__all__ = [
    "DEFAULT_OUTBOX_CAPACITY",
    "Ack",
    "AsyncClientStreamingSession",
    "AsyncResumingStream",
    "AsyncSession",
    "ClientStreamingSession",
    "Event",
    "ResumingStream",
    "Session",
    "SessionError",
]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

#: The default capacity: requests sent and unacknowledged, and as many waiting.
DEFAULT_OUTBOX_CAPACITY = 1024

Metadata = Sequence[tuple[str, Union[str, bytes]]]

_LOST = ("rst_stream", "stream removed", "socket closed", "connection reset", "broken pipe")
_PUSHBACK = "grpc-retry-pushback-ms"


class SessionError(StatusError):
    """The status a reconnecting call ends with: a :class:`grpc.RpcError`
    carrying a gRPC code, as grpcio's own errors do. ``__cause__`` is the
    last attempt's error, if any."""

    def __str__(self) -> str:
        return f"<SessionError {self.code().name}: {self.details()!r}>"


def _status_of(error: grpc.RpcError) -> tuple[grpc.StatusCode, str, Metadata]:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else str(error)) or ""
    trailing = (error.trailing_metadata() if hasattr(error, "trailing_metadata") else None) or ()
    return code, details, trailing


def _connection_lost(code: grpc.StatusCode, details: str) -> bool:
    return code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN) and any(
        word in details.lower() for word in _LOST
    )


def _pushback(trailing: Metadata) -> float | None | bool:
    """The server's pushback: seconds to wait, ``False`` to stop, ``None``: none."""
    values = [v for k, v in trailing if k == _PUSHBACK]
    if not values:
        return None
    if len(values) > 1:
        return False
    try:
        ms = int(values[0])
    except (TypeError, ValueError):
        return False
    return ms / 1000 if ms >= 0 else False


@dataclass(frozen=True)
class Event:
    """What happens to a reconnecting call's connection: ``kind`` is
    ``"connected"`` (first response of the first attempt that got one),
    ``"disconnected"`` (an attempt failed; ``code``/``details`` say why),
    ``"reconnected"`` (a later attempt got a response) or ``"gave_up"``."""

    kind: str
    attempt: int
    code: grpc.StatusCode | None = None
    details: str = ""


class Ack(Generic[Req, Resp]):
    """Which outstanding requests a response acknowledges (and so drops from
    the buffer, never to be re-sent). Capped at what the response's attempt
    has sent."""

    def __init__(self, rule: Callable[[Resp, Req, int], int]) -> None:
        self._rule = rule

    @classmethod
    def oldest_per_response(cls) -> Ack[Any, Any]:
        """Each response acknowledges the oldest outstanding request (one
        answer per request, in order). The default for :class:`Session`."""
        return cls(lambda response, oldest, sent: 1)

    @classmethod
    def all_sent(cls) -> Ack[Any, Any]:
        """A response acknowledges everything its attempt sent."""
        return cls(lambda response, oldest, sent: sent)

    @classmethod
    def with_rule(cls, rule: Callable[[Resp, Req], int]) -> Ack[Req, Resp]:
        """``rule(response, oldest)``: how many of the oldest outstanding
        requests ``response`` acknowledges (0 for a message of the server's
        own). E.g. ``lambda ack, oldest: ack.seq - oldest.seq + 1``."""
        return cls(lambda response, oldest, sent: rule(response, oldest))

    def count(self, response: Resp, oldest: Req | None, sent: int) -> int:
        if oldest is None or sent <= 0:
            return 0
        return max(0, min(int(self._rule(response, oldest, sent)), sent))


class _Reconnect:
    """The reconnect rule a session and a resuming stream share: numbering
    attempts, events, consecutive failures, whether and when to try again."""

    def __init__(
        self,
        policy: RetryPolicy,
        on_event: Callable[[Event], None] | None,
        rng: random.Random | None,
    ) -> None:
        self.policy = policy
        self.on_event = on_event
        self.rng = rng or random.Random()
        self.attempt = 0
        self.failures = 0
        self.connected_once = False

    def emit(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def start(self) -> int:
        self.attempt += 1
        return self.attempt

    def connected(self) -> None:
        kind = "reconnected" if self.connected_once else "connected"
        self.connected_once = True
        self.emit(Event(kind, self.attempt))

    def failed(self, code: grpc.StatusCode, details: str, trailing: Metadata,
               connected: bool, progressed: bool) -> float | None:
        """The delay before the next attempt, or ``None``: give up."""
        if connected:
            self.emit(Event("disconnected", self.attempt, code, details))
        if progressed:
            self.failures = 0
        self.failures += 1
        if not (self.policy.retries(code) or _connection_lost(code, details)):
            return None
        if self.failures >= self.policy.max_attempts:
            return None
        pushback = _pushback(trailing)
        if pushback is False:
            return None
        if pushback is not None:
            return float(pushback)
        return self.policy.backoff(self.failures, self.rng)

    def give_up(self, code: grpc.StatusCode, details: str, trailing: Metadata,
                cause: BaseException | None) -> SessionError:
        if self.failures >= self.policy.max_attempts:
            why = (f"gave up after {self.failures} attempts in a row without progress "
                   "(the retry policy's max_attempts)")
            details = f"{details}; {why}" if details else why
        self.emit(Event("gave_up", self.attempt, code, details))
        error = SessionError(code, details, trailing)
        error.__cause__ = cause
        return error


def _closed_error() -> SessionError:
    return SessionError(grpc.StatusCode.CANCELLED, "session closed")


class _State(Generic[Req]):
    """The session's requests until acknowledged, oldest first: the first
    ``capacity`` are *taken* (the current attempt may send them; all of them
    for a client stream), the rest wait. Plain state; :class:`_Buffer` (threads)
    and :class:`_AsyncBuffer` (asyncio) guard it and wake its waiters."""

    def __init__(self, capacity: int, whole_stream: bool) -> None:
        self.requests: collections.deque[Req] = collections.deque()
        self.capacity = capacity
        self.whole_stream = whole_stream
        self.sent = 0  # yielded by the current attempt's iterator
        self.attempt = 0  # the current attempt; other attempts' iterators end
        self.finished = False
        self.closed = False
        self.dropped = 0  # client stream past capacity: sent and forgotten

    def full(self) -> bool:
        return len(self.requests) >= 2 * self.capacity

    def ended(self) -> bool:
        return self.closed or self.finished

    def start_attempt(self) -> int:
        self.attempt += 1
        self.sent = 0
        return self.attempt

    def take(self, attempt: int) -> tuple[bool, Req | None]:
        """``(True, request)``: the next request for ``attempt``'s iterator;
        ``(True, None)``: the iterator ends; ``(False, None)``: wait."""
        if self.attempt != attempt or self.closed:
            return True, None
        window = len(self.requests) if self.whole_stream else min(len(self.requests),
                                                                  self.capacity)
        if self.sent < window:
            request = self.requests[self.sent]
            self.sent += 1
            if self.whole_stream and (self.dropped or self.sent > self.capacity):
                # Past the capacity: the stream cannot be sent again, so keep
                # nothing sent (bounded memory).
                for _ in range(self.sent):
                    self.requests.popleft()
                self.dropped += self.sent
                self.sent = 0
            return True, request
        if self.finished and self.sent == len(self.requests):
            return True, None
        return False, None

    def acknowledge(self, attempt: int, count: Callable[[Req | None, int], int]) -> int:
        if attempt != self.attempt:
            return 0
        n = min(count(self.requests[0] if self.requests else None, self.sent), self.sent)
        for _ in range(n):
            self.requests.popleft()
        self.sent -= n
        return n

    def close(self) -> list[Req]:
        self.closed = True
        self.attempt += 1
        undelivered = list(self.requests)
        self.requests.clear()
        return undelivered


class _Buffer(Generic[Req]):
    """:class:`_State` for threads: one condition guards it; grpcio's thread
    runs :meth:`iterate`."""

    def __init__(self, capacity: int, whole_stream: bool) -> None:
        self.cond = threading.Condition()
        self.state: _State[Req] = _State(capacity, whole_stream)

    @property
    def dropped(self) -> int:
        return self.state.dropped

    def push(self, request: Req, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while not self.state.ended() and self.state.full():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("the session's outbox stayed full")
                self.cond.wait(left)
            if self.state.ended():
                return False
            self.state.requests.append(request)
            self.cond.notify_all()
            return True

    def start_attempt(self) -> int:
        with self.cond:
            self.cond.notify_all()
            return self.state.start_attempt()

    def iterate(self, attempt: int) -> Iterator[Req]:
        """The request iterator of attempt ``attempt`` (run by grpcio's thread)."""
        while True:
            with self.cond:
                while True:
                    done, request = self.state.take(attempt)
                    if done:
                        break
                    self.cond.wait()
                self.cond.notify_all()  # a client stream may have made room
            if request is None:
                return
            yield request

    def acknowledge(self, attempt: int, count: Callable[[Req | None, int], int]) -> int:
        with self.cond:
            n = self.state.acknowledge(attempt, count)
            if n:
                self.cond.notify_all()
            return n

    def finish(self) -> None:
        with self.cond:
            self.state.finished = True
            self.cond.notify_all()

    def close(self) -> list[Req]:
        with self.cond:
            self.cond.notify_all()
            return self.state.close()


class _BaseSession(Generic[Req, Resp]):
    def __init__(
        self,
        method: Any,
        *,
        policy: RetryPolicy | None,
        capacity: int,
        ack: Ack[Req, Resp] | None,
        wait_for_ready: bool,
        metadata: Metadata | None,
        on_event: Callable[[Event], None] | None,
        rng: random.Random | None,
        whole_stream: bool,
    ) -> None:
        self._method = method
        self._capacity = max(1, capacity)
        self._buffer: _Buffer[Req] = _Buffer(self._capacity, whole_stream)
        self._ack = ack
        self._wait_for_ready = wait_for_ready
        self._metadata = tuple(metadata or ())
        self._reconnect = _Reconnect(policy or RetryPolicy(), on_event, rng)
        self._lock = threading.Lock()  # guards _call, _ended, _undelivered
        self._call: Any = None
        self._attempt = 0
        # Why the session gave up (None: it ended with OK, or was closed).
        self._ended: SessionError | None = None
        self._done = False  # ended with OK, closed or gave up
        self._undelivered: list[Req] = []
        self._closed = threading.Event()

    def _open_attempt(self, invoke: Callable[..., Any]) -> None:
        """Starts the next attempt (the caller holds no lock)."""
        attempt = self._buffer.start_attempt()
        self._reconnect.start()
        metadata = list(self._metadata)
        call = invoke(self._buffer.iterate(attempt), metadata=metadata or None,
                      wait_for_ready=self._wait_for_ready)
        with self._lock:
            self._attempt = attempt
            self._call = call
            closed = self._done
        if closed:
            call.cancel()

    def send(self, request: Req, timeout: float | None = None) -> None:
        """Adds ``request`` to the session, blocking while ``2 × capacity``
        requests are unacknowledged; raises the session's final error once it
        has ended (:class:`SessionError`), :class:`TimeoutError` after
        ``timeout`` seconds of a full outbox."""
        if not self._buffer.push(request, timeout):
            raise self._ended or _closed_error()

    def _end(self, error: SessionError | None) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            self._ended = error
            call, self._call = self._call, None
        self._closed.set()
        self._undelivered = self._buffer.close()
        if call is not None:
            call.cancel()

    def close(self) -> list[Req]:
        """Ends the session: cancels the current call, ends its request
        iterator (and grpcio's thread running it), and returns the requests
        never acknowledged, oldest first. Safe from any thread, and twice."""
        self._end(None)
        return list(self._undelivered)

    @property
    def undelivered(self) -> list[Req]:
        """The requests not acknowledged when the session ended (empty before)."""
        return list(self._undelivered)

    def _failure(self, error: grpc.RpcError, connected: bool, progressed: bool) -> float:
        """A failed attempt: the delay before the next one, or raises the
        final error (after ending the session)."""
        if self._closed.is_set():
            raise self._ended or _closed_error()
        code, details, trailing = _status_of(error)
        dropped = self._buffer.dropped
        delay = self._reconnect.failed(code, details, trailing, connected, progressed)
        if dropped and delay is not None:
            details = (f"{details}; the stream was longer than the session's capacity "
                       f"({self._capacity}) and cannot be sent again")
            delay = None
        if delay is None:
            final = self._reconnect.give_up(code, details, trailing, error)
            self._end(final)
            raise final
        return delay

    def _sleep(self, delay: float) -> None:
        if self._closed.wait(delay):
            raise self._ended or _closed_error()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten session still ends its threads
        try:
            self.close()
        except Exception:  # pragma: no cover
            pass


class Session(_BaseSession[Req, Resp]):
    """A reconnecting bidi call: ``method`` is the stub's multi-callable
    (``stub.Call``). Iterate it (or call :meth:`recv`) for the responses, each
    once, in order; :meth:`send` requests from the same or another thread.

    ``policy`` (default :class:`RetryPolicy()`) decides reconnects;
    ``capacity`` bounds the requests sent and not acknowledged (as many more
    wait); ``ack`` (default :meth:`Ack.oldest_per_response`) says which
    requests a response acknowledges; ``wait_for_ready`` makes reconnects wait
    for the server; ``metadata`` goes with every attempt; ``on_event`` gets
    each :class:`Event` (in the thread that drives the attempts).

    The first attempt starts here. The responses are read by :meth:`recv`
    only: a single thread must not send far ahead of what it receives (the
    outbox fills and :meth:`send` blocks for ever).
    """

    def __init__(
        self,
        method: Any,
        *,
        policy: RetryPolicy | None = None,
        capacity: int = DEFAULT_OUTBOX_CAPACITY,
        ack: Ack[Req, Resp] | None = None,
        wait_for_ready: bool = False,
        metadata: Metadata | None = None,
        on_event: Callable[[Event], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(method, policy=policy, capacity=capacity,
                         ack=ack or Ack.oldest_per_response(), wait_for_ready=wait_for_ready,
                         metadata=metadata, on_event=on_event, rng=rng, whole_stream=False)
        self._recv_lock = threading.Lock()
        self._connected = False  # the current attempt got a response
        self._acked = 0  # requests the current attempt's responses acknowledged
        self._open_attempt(self._method)

    def finish(self) -> None:
        """No more requests: each attempt half-closes after the last one, and
        iteration ends when the server ends the call with ``OK``."""
        self._buffer.finish()

    def recv(self) -> Resp | None:
        """The next response, reconnecting as needed; ``None`` once the server
        ended the call with ``OK`` or the session was closed. Raises the
        final :class:`SessionError` when the session gives up."""
        with self._recv_lock:
            while True:
                with self._lock:
                    if self._done:
                        if self._ended is not None:
                            raise self._ended
                        return None
                    call, attempt = self._call, self._attempt
                try:
                    response = next(call)
                except StopIteration:
                    self._end(None)
                    return None
                except grpc.RpcError as error:
                    try:
                        delay = self._failure(error, self._connected, self._acked >= 2)
                        self._sleep(delay)
                    except SessionError:
                        if self._ended is None:  # closed by the application
                            return None
                        raise
                    self._connected, self._acked = False, 0
                    self._open_attempt(self._method)
                    continue
                if not self._connected:
                    self._connected = True
                    self._reconnect.connected()
                ack = self._ack
                assert ack is not None
                self._acked += self._buffer.acknowledge(
                    attempt, lambda oldest, sent: ack.count(response, oldest, sent))
                return response

    def __iter__(self) -> Iterator[Resp]:
        while (response := self.recv()) is not None:
            yield response


class ClientStreamingSession(_BaseSession[Req, Resp]):
    """A reconnecting client-streaming call: ``method`` is the stub's
    multi-callable (``stub.TellResult``). :meth:`send` the requests, then
    :meth:`result` finishes the stream and waits for the one response.

    Each attempt sends the whole stream without waiting; a failed attempt is
    made again with the whole stream while it is at most ``capacity``
    requests long. Past that, requests are forgotten once sent (bounded
    memory) and a failure after them ends the session (the attempt's code, its
    details saying the stream cannot be sent again).
    """

    def __init__(
        self,
        method: Any,
        *,
        policy: RetryPolicy | None = None,
        capacity: int = DEFAULT_OUTBOX_CAPACITY,
        wait_for_ready: bool = False,
        metadata: Metadata | None = None,
        on_event: Callable[[Event], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(method, policy=policy, capacity=capacity, ack=None,
                         wait_for_ready=wait_for_ready, metadata=metadata,
                         on_event=on_event, rng=rng, whole_stream=True)
        self._open_attempt(self._method.future)

    def result(self) -> Resp:
        """Finishes the stream and returns the server's response, making
        attempts as the policy allows; raises :class:`SessionError`."""
        self._buffer.finish()
        while True:
            with self._lock:
                if self._done:
                    raise self._ended or _closed_error()
                future = self._call
            try:
                response = future.result()
            except grpc.RpcError as error:
                # A client stream is answered once: no attempt made progress.
                delay = self._failure(error, connected=False, progressed=False)
                self._sleep(delay)
                self._open_attempt(self._method.future)
                continue
            except grpc.FutureCancelledError:
                raise self._ended or _closed_error() from None
            self._reconnect.connected()
            self._end(None)
            self._undelivered = []
            return response


class ResumingStream(Generic[Req, Resp]):
    """A server-streaming call that picks up where it left off after a
    reconnect. ``method`` is the stub's multi-callable (``stub.GetTask``);
    ``resume(last_request, last_seen)`` makes the request that asks for what
    comes **after** ``last_seen`` (``TaskQuery(from_seq=last.seq + 1)``), or
    ``None`` when the call cannot continue from there.

    Every response of every attempt is handed over, in order; after a
    failure the next attempt asks for what the rule made from the last
    response handed out (or the failed attempt's own request, if it brought
    none). An attempt made progress when the rule made a request other than
    its own. ``timeout`` is the deadline of the *whole* call, every attempt
    and backoff together (``DEADLINE_EXCEEDED`` when it passes). No threads.

    >>> with ResumingStream(stub.GetTask, TaskQuery(from_seq=1),  # doctest: +SKIP
    ...         resume=lambda q, task: TaskQuery(from_seq=task.seq + 1)) as tasks:
    ...     for task in tasks: print(task.seq)
    """

    def __init__(
        self,
        method: Any,
        request: Req,
        resume: Callable[[Req, Resp], Req | None],
        *,
        policy: RetryPolicy | None = None,
        timeout: float | None = None,
        wait_for_ready: bool = False,
        metadata: Metadata | None = None,
        on_event: Callable[[Event], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._method = method
        self._resume = resume
        self._reconnect = _Reconnect(policy or RetryPolicy(), on_event, rng)
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._wait_for_ready = wait_for_ready
        self._metadata = tuple(metadata or ())
        self._request = request  # the current attempt's
        self._next: Req | None = request  # what the next attempt asks for
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._call: Any = None
        self._connected = False
        self._progressed = False
        self._done = False

    def _open(self) -> None:
        assert self._next is not None
        self._request = self._next
        self._connected = self._progressed = False
        self._reconnect.start()
        left = None if self._deadline is None else self._deadline - time.monotonic()
        call = self._method(self._request, timeout=left, metadata=list(self._metadata) or None,
                            wait_for_ready=self._wait_for_ready)
        with self._lock:
            self._call = call
            closed = self._closed.is_set()
        if closed:
            call.cancel()

    def _fail(self, code: grpc.StatusCode, details: str, trailing: Metadata = (),
              cause: BaseException | None = None) -> SessionError:
        self._done = True
        return self._reconnect.give_up(code, details, trailing, cause)

    def __next__(self) -> Resp:
        while True:
            if self._done or self._closed.is_set():
                raise StopIteration
            if self._call is None:
                self._open()
            try:
                response = next(self._call)
            except StopIteration:
                self._done = True
                raise
            except grpc.RpcError as error:
                self._call = None
                if self._closed.is_set():
                    raise StopIteration from None
                code, details, trailing = _status_of(error)
                past_deadline = self._deadline is not None and time.monotonic() >= self._deadline
                if past_deadline:
                    raise self._fail(grpc.StatusCode.DEADLINE_EXCEEDED,
                                     f"deadline exceeded; last attempt: {code.name}: {details}",
                                     trailing, error) from None
                if self._next is None:
                    # The rule said the call cannot continue after the last response.
                    self._reconnect.failed(code, details, trailing, self._connected, False)
                    raise self._fail(code, details, trailing, error) from None
                delay = self._reconnect.failed(code, details, trailing, self._connected,
                                               self._progressed)
                if delay is None:
                    raise self._fail(code, details, trailing, error) from None
                if self._deadline is not None and time.monotonic() + delay >= self._deadline:
                    raise self._fail(grpc.StatusCode.DEADLINE_EXCEEDED,
                                     f"deadline exceeded; last attempt: {code.name}: {details}",
                                     trailing, error) from None
                if self._closed.wait(delay):
                    raise StopIteration from None
                continue
            if not self._connected:
                self._connected = True
                self._reconnect.connected()
            self._next = self._resume(self._request, response)
            if self._next is not None and self._next != self._request:
                self._progressed = True
            return response

    def __iter__(self) -> Iterator[Resp]:
        return self

    def close(self) -> None:
        """Cancels the current attempt; iteration then ends. Safe from any thread."""
        self._closed.set()
        with self._lock:
            call = self._call
        if call is not None:
            call.cancel()

    def __enter__(self) -> ResumingStream[Req, Resp]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- grpc.aio ---------------------------------------------------------------
#
# The same sessions for ``grpc.aio`` channels, with the same rules. grpc.aio
# consumes an attempt's request iterator in a task of its own; the iterator
# ends as soon as its attempt is no longer the current one, and ``close``
# cancels the current call, so no task outlives the session. The application's
# ``recv`` (or ``async for``) drives the attempts: the session starts no task.


class _AsyncBuffer(Generic[Req]):
    """:class:`_State` for one event loop: every change sets the current
    ``changed`` event (and makes a new one) to wake whoever waits."""

    def __init__(self, capacity: int, whole_stream: bool) -> None:
        self.state: _State[Req] = _State(capacity, whole_stream)
        self._changed = asyncio.Event()

    @property
    def dropped(self) -> int:
        return self.state.dropped

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def push(self, request: Req, timeout: float | None) -> bool:
        async def room() -> None:
            while not self.state.ended() and self.state.full():
                await self._changed.wait()

        try:
            await asyncio.wait_for(room(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("the session's outbox stayed full") from None
        if self.state.ended():
            return False
        self.state.requests.append(request)
        self._wake()
        return True

    def start_attempt(self) -> int:
        attempt = self.state.start_attempt()
        self._wake()
        return attempt

    async def iterate(self, attempt: int) -> AsyncIterator[Req]:
        """The request iterator of attempt ``attempt`` (run by grpc.aio's task)."""
        while True:
            done, request = self.state.take(attempt)
            if not done:
                await self._changed.wait()
                continue
            self._wake()  # a client stream may have made room
            if request is None:
                return
            yield request

    def acknowledge(self, attempt: int, count: Callable[[Req | None, int], int]) -> int:
        n = self.state.acknowledge(attempt, count)
        if n:
            self._wake()
        return n

    def finish(self) -> None:
        self.state.finished = True
        self._wake()

    def close(self) -> list[Req]:
        undelivered = self.state.close()
        self._wake()
        return undelivered


class _AsyncBase(Generic[Req, Resp]):
    def __init__(self, method: Any, *, policy: RetryPolicy | None, capacity: int,
                 wait_for_ready: bool, metadata: Metadata | None,
                 on_event: Callable[[Event], None] | None, rng: random.Random | None,
                 whole_stream: bool) -> None:
        self._method = method
        self._capacity = max(1, capacity)
        self._buffer: _AsyncBuffer[Req] = _AsyncBuffer(self._capacity, whole_stream)
        self._wait_for_ready = wait_for_ready
        self._metadata = tuple(metadata or ())
        self._reconnect = _Reconnect(policy or RetryPolicy(), on_event, rng)
        self._call: Any = None
        self._attempt = 0
        self._ended: SessionError | None = None  # why it gave up
        self._done = False
        self._closed = asyncio.Event()
        self._undelivered: list[Req] = []

    def _open_attempt(self) -> None:
        attempt = self._buffer.start_attempt()
        self._reconnect.start()
        self._attempt = attempt
        self._call = self._method(self._buffer.iterate(attempt),
                                  metadata=list(self._metadata) or None,
                                  wait_for_ready=self._wait_for_ready)

    async def send(self, request: Req, timeout: float | None = None) -> None:
        """As :meth:`Session.send`, awaiting room in the outbox."""
        if not await self._buffer.push(request, timeout):
            raise self._ended or _closed_error()

    def _end(self, error: SessionError | None) -> None:
        if self._done:
            return
        self._done = True
        self._ended = error
        self._closed.set()
        self._undelivered = self._buffer.close()
        call, self._call = self._call, None
        if call is not None:
            call.cancel()

    def close(self) -> list[Req]:
        """As :meth:`Session.close`: cancels the current call (grpc.aio's
        request task ends with it) and returns the unacknowledged requests."""
        self._end(None)
        return list(self._undelivered)

    @property
    def undelivered(self) -> list[Req]:
        """The requests not acknowledged when the session ended (empty before)."""
        return list(self._undelivered)

    async def _after_failure(self, error: grpc.RpcError, connected: bool,
                             progressed: bool) -> None:
        """Waits the backoff before the next attempt, or raises the final
        error (after ending the session)."""
        code, details, trailing = _status_of(error)
        delay = self._reconnect.failed(code, details, trailing, connected, progressed)
        if self._buffer.dropped and delay is not None:
            details = (f"{details}; the stream was longer than the session's capacity "
                       f"({self._capacity}) and cannot be sent again")
            delay = None
        if delay is None:
            final = self._reconnect.give_up(code, details, trailing, error)
            self._end(final)
            raise final
        try:
            await asyncio.wait_for(self._closed.wait(), delay)
        except asyncio.TimeoutError:
            return
        raise self._ended or _closed_error()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AsyncSession(_AsyncBase[Req, Resp]):
    """:class:`Session` for ``grpc.aio``: ``await send(...)``, ``await
    recv()`` or ``async for``, ``async with``. Create it in a coroutine (the
    first attempt starts here)."""

    def __init__(self, method: Any, *, policy: RetryPolicy | None = None,
                 capacity: int = DEFAULT_OUTBOX_CAPACITY, ack: Ack[Req, Resp] | None = None,
                 wait_for_ready: bool = False, metadata: Metadata | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 rng: random.Random | None = None) -> None:
        super().__init__(method, policy=policy, capacity=capacity, wait_for_ready=wait_for_ready,
                         metadata=metadata, on_event=on_event, rng=rng, whole_stream=False)
        self._ack: Ack[Req, Resp] = ack or Ack.oldest_per_response()
        self._connected = False
        self._acked = 0
        self._open_attempt()

    def finish(self) -> None:
        """As :meth:`Session.finish`."""
        self._buffer.finish()

    async def recv(self) -> Resp | None:
        """As :meth:`Session.recv`."""
        while True:
            if self._done:
                if self._ended is not None:
                    raise self._ended
                return None
            call, attempt = self._call, self._attempt
            try:
                response = await call.read()
            except asyncio.CancelledError:
                if not self._closed.is_set():
                    raise  # the application's task was cancelled
                if self._ended is not None:
                    raise self._ended from None
                return None
            except grpc.RpcError as error:
                if self._closed.is_set():
                    continue
                try:
                    await self._after_failure(error, self._connected, self._acked >= 2)
                except SessionError:
                    if self._ended is None:
                        return None
                    raise
                self._connected, self._acked = False, 0
                self._open_attempt()
                continue
            if response is grpc.aio.EOF:
                self._end(None)
                return None
            if not self._connected:
                self._connected = True
                self._reconnect.connected()
            ack = self._ack
            self._acked += self._buffer.acknowledge(
                attempt, lambda oldest, sent: ack.count(response, oldest, sent))
            return response

    def __aiter__(self) -> AsyncIterator[Resp]:
        return self._responses()

    async def _responses(self) -> AsyncIterator[Resp]:
        while (response := await self.recv()) is not None:
            yield response


class AsyncClientStreamingSession(_AsyncBase[Req, Resp]):
    """:class:`ClientStreamingSession` for ``grpc.aio``."""

    def __init__(self, method: Any, *, policy: RetryPolicy | None = None,
                 capacity: int = DEFAULT_OUTBOX_CAPACITY, wait_for_ready: bool = False,
                 metadata: Metadata | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 rng: random.Random | None = None) -> None:
        super().__init__(method, policy=policy, capacity=capacity, wait_for_ready=wait_for_ready,
                         metadata=metadata, on_event=on_event, rng=rng, whole_stream=True)
        self._open_attempt()

    async def result(self) -> Resp:
        """As :meth:`ClientStreamingSession.result`."""
        self._buffer.finish()
        while True:
            if self._done:
                raise self._ended or _closed_error()
            try:
                response = await self._call
            except asyncio.CancelledError:
                if self._closed.is_set():
                    raise self._ended or _closed_error() from None
                raise
            except grpc.RpcError as error:
                await self._after_failure(error, connected=False, progressed=False)
                self._open_attempt()
                continue
            self._reconnect.connected()
            self._end(None)
            self._undelivered = []
            return response


class AsyncResumingStream(Generic[Req, Resp]):
    """:class:`ResumingStream` for ``grpc.aio``: ``async for`` the responses."""

    def __init__(self, method: Any, request: Req, resume: Callable[[Req, Resp], Req | None], *,
                 policy: RetryPolicy | None = None, timeout: float | None = None,
                 wait_for_ready: bool = False, metadata: Metadata | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 rng: random.Random | None = None) -> None:
        self._method = method
        self._resume = resume
        self._reconnect = _Reconnect(policy or RetryPolicy(), on_event, rng)
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._wait_for_ready = wait_for_ready
        self._metadata = tuple(metadata or ())
        self._request = request
        self._next: Req | None = request
        self._closed = asyncio.Event()
        self._call: Any = None
        self._connected = self._progressed = self._done = False

    def _deadline_error(self, code: grpc.StatusCode, details: str, trailing: Metadata,
                        cause: BaseException) -> SessionError:
        self._done = True
        return self._reconnect.give_up(grpc.StatusCode.DEADLINE_EXCEEDED,
                                       f"deadline exceeded; last attempt: {code.name}: {details}",
                                       trailing, cause)

    async def __anext__(self) -> Resp:
        while True:
            if self._done or self._closed.is_set():
                raise StopAsyncIteration
            if self._call is None:
                assert self._next is not None
                self._request = self._next
                self._connected = self._progressed = False
                self._reconnect.start()
                left = None if self._deadline is None else self._deadline - time.monotonic()
                self._call = self._method(self._request, timeout=left,
                                          metadata=list(self._metadata) or None,
                                          wait_for_ready=self._wait_for_ready)
            try:
                response = await self._call.read()
            except asyncio.CancelledError:
                if self._closed.is_set():
                    raise StopAsyncIteration from None
                raise
            except grpc.RpcError as error:
                self._call = None
                if self._closed.is_set():
                    raise StopAsyncIteration from None
                code, details, trailing = _status_of(error)
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    raise self._deadline_error(code, details, trailing, error) from None
                progressed = self._progressed and self._next is not None
                delay = self._reconnect.failed(code, details, trailing, self._connected, progressed)
                if delay is None or self._next is None:
                    self._done = True
                    raise self._reconnect.give_up(code, details, trailing, error) from None
                if self._deadline is not None and time.monotonic() + delay >= self._deadline:
                    raise self._deadline_error(code, details, trailing, error) from None
                try:
                    await asyncio.wait_for(self._closed.wait(), delay)
                except asyncio.TimeoutError:
                    continue
                raise StopAsyncIteration from None
            if response is grpc.aio.EOF:
                self._done = True
                raise StopAsyncIteration
            if not self._connected:
                self._connected = True
                self._reconnect.connected()
            self._next = self._resume(self._request, response)
            if self._next is not None and self._next != self._request:
                self._progressed = True
            return response

    def __aiter__(self) -> AsyncResumingStream[Req, Resp]:
        return self

    def close(self) -> None:
        """Cancels the current attempt; iteration then ends."""
        self._closed.set()
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> AsyncResumingStream[Req, Resp]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
