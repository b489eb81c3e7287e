//! Reconnecting calls. A [`Session`] (client-streaming, bidi) sends each request
//! at least once, in order, until acknowledged, and hands each response over once,
//! in order, across reconnects, holding at most twice its outbox capacity; a
//! [`ResumingStream`] (server-streaming) asks again after the last response seen,
//! by a [rule of the application](#resuming-a-server-stream). Each **gives up**
//! (its last attempt's status, [`Event::GaveUp`]) on a code the policy does not
//! retry, a pushback to stop, or [`RetryPolicy::max_attempts`] failed attempts in
//! a row **without progress**: a session's attempt made progress if it saw two or
//! more requests acknowledged, a stream's if the rule asked for a new request;
//! a client-streaming stream past the capacity, at its first failure ([Delivery](#delivery)).
//!
//! A generated client has both, reconnecting by its retry policy for the method
//! ([`retry`](crate::retry#generated-clients)): a `<rpc>_session(SessionBuilder)`
//! for each client-streaming or bidi rpc, and a `<rpc>_resuming(request, rule)`
//! for each server-streaming one. Over any other tonic client, open them as below.
//!
//! ```no_run
//! # use tonic::codegen::http::uri::PathAndQuery;
//! # use tonic::{Request, Response, Status, Streaming};
//! # /// The counter's message (`examples/proto/schema.proto`).
//! # #[derive(Clone, PartialEq, prost::Message)]
//! # struct Num { #[prost(int64, tag = "1")] num: i64 }
//! # /// A client of `schema.Gateway/Call`, the call tonic generates.
//! # #[derive(Clone)] struct GatewayClient(tonic::client::Grpc<tonic::transport::Channel>);
//! # impl GatewayClient {
//! #     async fn call(&mut self, requests: Request<steadfast::session::SessionStream<Num>>)
//! #         -> Result<Response<Streaming<Num>>, Status> {
//! #         self.0.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
//! #         let path = PathAndQuery::from_static("/schema.Gateway/Call");
//! #         self.0.streaming(requests, path, tonic_prost::ProstCodec::default()).await
//! #     }
//! # }
//! # async fn demo(client: GatewayClient) -> Result<(), Box<dyn std::error::Error>> {
//! use steadfast::retry::RetryPolicy;
//! use steadfast::session::{Ack, Session, SessionStream};
//!
//! let mut session = Session::builder(RetryPolicy::default())
//!     .outbox_capacity(1024)
//!     .ack(Ack::oldest_per_response())
//!     .open(move |requests| {
//!         let mut client = client.clone();
//!         // `into_request`: with `grpc-previous-rpc-attempts` on a reconnect.
//!         async move { client.call(requests.into_request()).await }
//!     });
//! let mut events = session.events();
//! session.send(Num { num: 1 }).await?;
//! while let Some(answer) = session.recv().await {
//!     let answer = answer?;
//!     session.send(answer).await?;
//! #   break;
//! }
//! let closed = session.close().await;
//! # let _ = (events, closed); Ok(()) }
//! ```
//!
//! # Delivery
//!
//! The application sends into the session's buffer of requests, which the
//! session owns, not an attempt: its oldest requests (up to the capacity) are
//! **taken** (the current attempt may send them) and the rest wait (the
//! **outbox**). The attempt's request stream yields *copies* of the taken ones,
//! in order (so requests must be `Clone`). A request leaves the buffer only when
//! a response acknowledges it ([`Ack`]: by default each response acknowledges
//! the oldest outstanding request), which makes room for the next ones. A new
//! attempt's stream starts again from the oldest request, so it re-sends every
//! unacknowledged one first, in order, then continues. Requests reach the server at
//! least once, in order; responses reach the application in the order the
//! server sent them, and a response lost with its connection is asked for again
//! (the request is re-sent), so an application whose server answers each
//! request sees every answer exactly once. (A server that also sends
//! messages of its own needs an [`Ack::with`] rule that recognises its
//! answers: by default each of its messages acknowledges a request too.)
//!
//! A **client-streaming** session ([`SessionBuilder::open_client_streaming`])
//! is answered once, after the last request, so its attempt sends the whole
//! stream without waiting for acknowledgments. It keeps the requests sent for
//! re-sending only while the stream is at most
//! [`outbox_capacity`](SessionBuilder::outbox_capacity) long: a longer stream
//! drops each request once sent (memory stays bounded), completes like a
//! plain call, and if its attempt fails after that, the session gives up with
//! the attempt's status (code kept, the message saying that the stream could
//! not be sent again) instead of making a new attempt with part of a stream;
//! [`Closed::undelivered`] then holds only the requests never sent.
//!
//! To send from one task while another receives, [`split`](Session::split)
//! the session into a [`SessionSender`] and a [`SessionReceiver`] (a
//! [`Stream`](futures_core::Stream) of the responses), as with tonic's
//! request channel and `Streaming`: the same guarantees hold. A single task
//! must not send far ahead of what it receives: the session stops reading
//! responses while their queue is full, so no acknowledgment makes room and
//! [`Session::send`] waits for ever once the outbox is full too.
//!
//! # Why the classic reconnect bug cannot happen
//!
//! The hand-written loop shares one queue between attempts: a dead attempt's
//! sender has already taken the next message off it, nobody sends that message,
//! and each retry leaves one more sender behind. Here:
//!
//! - an attempt's request stream ([`SessionStream`]) never takes a message off
//!   anything: it reads a copy of the next one out of the session's buffer,
//!   where the message stays until a response acknowledges it; there is no
//!   moment where a message is held by an attempt alone;
//! - there is one attempt at a time: when it ends, its request stream ends
//!   (it yields nothing for an attempt that is not the current one), and
//!   everything else of it (the call's future, its response stream) lives in
//!   one stack frame of the supervisor and is dropped, which cancels its call:
//!   there is no per-attempt task to leak.
//!
//! # Tasks and cancellation
//!
//! A session runs exactly one task, its supervisor, spawned by
//! [`SessionBuilder::open`]. The calls it makes may make the transport spawn
//! tasks (hyper drives a streaming request body in a task of its own); those
//! end with the attempt, since its request stream ends and its call is
//! dropped. So after any number of reconnects the number of live tasks is back
//! to what it was before the session, once the session has ended and the
//! connection it used is gone or idle. The session ends — its task returns —
//! when the application [closes](Session::close) or drops it (or its
//! [`SessionReceiver`], or drops its [`SessionSender`] in a panic), when it gives up,
//! or when the server ends the call with `OK`.
//!
//! # Reconnecting and giving up
//!
//! An attempt that fails with a code the [`RetryPolicy`] retries
//! ([`RetryPolicy::retries`], `UNAVAILABLE` by default, which is also what a
//! reset connection gives) or with a failure that proves the server never got
//! the call ([`unprocessed`](crate::retry::unprocessed): no connection, a
//! refused stream, a call hyper dropped unsent because its connection closed,
//! which tonic 0.14 reports as `CANCELLED`) or with a **lost connection** (tonic made the status from an
//! I/O error or an HTTP/2 GOAWAY, not the server: a server killed during a
//! call gives `UNKNOWN` "connection reset" in tonic 0.14) is followed by
//! another attempt, after the policy's backoff
//! ([`RetryPolicy::backoff`], full jitter), or exactly the server's pushback
//! ([`Pushback`](crate::retry::Pushback)) if it sent one.
//!
//! An attempt **made progress** when its responses acknowledged at least two
//! requests ([`Ack`]): progress is what was acknowledged, not responses seen
//! (a response that acknowledges nothing is handed over and counts for
//! nothing), and one acknowledgment per attempt is what a server does that
//! answers anything once (or sends a message of its own) and then breaks, which
//! must not keep a session reconnecting for ever. The session counts
//! consecutive failed attempts, resetting the count when a failed attempt had
//! made progress (that attempt then counts as the first of a new run): it
//! gives up when the count reaches [`RetryPolicy::max_attempts`] — so with the
//! default policy, after 5 attempts in a row that each saw fewer than two
//! requests acknowledged, its status's message then ending with "gave up after
//! 5 attempts in a row without progress" — and at once on a code the policy
//! does not retry (unless unprocessed) or a pushback asking to stop. A server
//! that answers two requests or more on each connection before it breaks is
//! making progress, and the session follows it. The backoff before
//! the next attempt grows with that count, and so starts small again after
//! progress. Giving up ends the session's task, emits [`Event::GaveUp`], makes
//! [`Session::recv`] yield the status (after the responses already queued), and
//! [`Session::close`] returns the undelivered requests with it. The policy's
//! throttle and call deadlines do not apply to sessions.
//!
//! Each attempt after the first is one `info` event of target
//! `steadfast::session` ("session reconnecting", or "stream resuming" for a
//! [`ResumingStream`]) with the method (`rpc.method`, when the call was told
//! it: [`SessionBuilder::method`], [`ResumeBuilder::method`]), the
//! attempt's number (`attempt`), the code the last one failed with
//! (`cause`, as [`code_name`](crate::observe::code_name) spells it), and what
//! that one got through (`acknowledged` and `resent` requests of a session;
//! `received` responses of a stream, and `resumed`: whether the new attempt
//! asks for what follows them); with the feature `metrics`, one count of
//! [`CLIENT_RECONNECTS`](crate::observe::names::CLIENT_RECONNECTS) or
//! [`CLIENT_RESUMES`](crate::observe::names::CLIENT_RESUMES).
//!
//! Over a [`Failover`](crate::channel::Failover) channel (several instances of
//! the server), the next attempt goes to an instance that is up: the call that
//! broke, or could not connect, marked its instance down.
//!
//! The session does not judge liveness itself: an attempt whose server stops
//! answering without closing the connection waits until the connection is
//! found dead. Set HTTP/2 keepalive on the endpoint
//! (`Endpoint::http2_keep_alive_interval` and `keep_alive_timeout`): a ping
//! left unanswered closes the connection, which is a lost connection above.
//!
//! # Bounds
//!
//! At most [`outbox_capacity`](SessionBuilder::outbox_capacity) requests are
//! taken (sent, or for the attempt to send, and not acknowledged) and as many
//! wait in the outbox ([`Session::send`] waits when it is full; a
//! client-streaming session holds at most twice the capacity too, sent or
//! not); at most as
//! many responses wait for [`Session::recv`] (while that queue is full, the
//! session reads no more responses); an attempt's stream holds no copies (it
//! makes one when the transport asks for the next request); at most
//! [`EVENT_CAPACITY`] events wait for a slow observer.
//!
//! # Cost
//!
//! A request goes from [`Session::send`] to the transport with one wake-up
//! (the transport's task reads it from the buffer), as on a plain tonic
//! stream fed by a channel; a response goes through the session's task (which
//! acknowledges it) to [`Session::recv`], one wake-up more than a plain
//! `Streaming`. The copy of each request is the other cost.
//!
//! # Errors
//!
//! Every status is the call's own (`tonic::Status` from the attempt that
//! failed); the session adds none, except `INTERNAL` from [`Session::close`]
//! when the application's `open` closure panicked.
//!
//! # Resuming a server stream
//!
//! A server-streaming call cannot re-send anything to get back what a lost
//! connection took: the server has to be asked again, for what comes after
//! the last response the application got. A [`ResumingStream`] does that
//! with a **resume rule** of the application, `resume(last_request,
//! last_seen) -> Option<Req>`: the message of the attempt that brought the
//! last response, and that response, give the message of the next attempt
//! ("from sequence number `last_seen.seq + 1`"). `None` means the call
//! cannot continue from there; a failure then ends it.
//!
//! ```no_run
//! # use tonic::codegen::http::uri::PathAndQuery;
//! # use tonic::{Request, Response, Status, Streaming};
//! # #[derive(Clone, PartialEq, prost::Message)]
//! # struct GetTask { #[prost(uint64, tag = "1")] from: u64 }
//! # #[derive(Clone, PartialEq, prost::Message)]
//! # struct TaskUpdate { #[prost(uint64, tag = "1")] seq: u64 }
//! # #[derive(Clone)] struct TaskClient(tonic::client::Grpc<tonic::transport::Channel>);
//! # impl TaskClient {
//! #     async fn get_task(&mut self, request: Request<GetTask>)
//! #         -> Result<Response<Streaming<TaskUpdate>>, Status> {
//! #         self.0.ready().await.map_err(|e| Status::from_error(Box::new(e)))?;
//! #         let path = PathAndQuery::from_static("/tasks.Tasks/GetTask");
//! #         self.0.server_streaming(request, path, tonic_prost::ProstCodec::default()).await
//! #     }
//! # }
//! # async fn demo(client: TaskClient) -> Result<(), Status> {
//! use std::time::Duration;
//! use steadfast::retry::RetryPolicy;
//! use steadfast::session::ResumingStream;
//!
//! let mut request = tonic::Request::new(GetTask { from: 1 });
//! request.set_timeout(Duration::from_secs(600)); // for all attempts together
//! let mut updates = ResumingStream::builder(RetryPolicy::default()).open(
//!     request,
//!     move |request| {
//!         let mut client = client.clone();
//!         async move { client.get_task(request).await }
//!     },
//!     |_last_request: &GetTask, last_seen: &TaskUpdate| {
//!         Some(GetTask { from: last_seen.seq + 1 })
//!     },
//! );
//! let mut events = updates.events();
//! while let Some(update) = updates.message().await? {
//!     // Each update once, in order, whatever the reconnects.
//! #   let _ = update;
//! }
//! # let _ = events.try_recv(); Ok(()) }
//! ```
//!
//! - **Delivery.** The stream hands the application every response of every
//!   attempt, in order. It never repeats or skips one by itself: after a
//!   failure the next attempt asks for what the rule made from the last
//!   response handed out, or, when the failed attempt brought none, for the
//!   same as that attempt (the original request, before any response). So
//!   the application sees each response exactly once if the rule makes the
//!   server continue right after `last_seen`; that is the rule's promise.
//! - **Ending.** The server ending the call with `OK` ends the stream
//!   (`None`). A failure that is not retried (as for sessions above: the
//!   policy's codes, [unprocessed](crate::retry::unprocessed), a lost
//!   connection; `max_attempts` failures in a row without progress; a
//!   pushback to stop), or any failure after a response for which the rule
//!   said `None`, is returned as the stream's last item. [`Event`]s are those
//!   of a session: `Connected`, `Disconnected` with the status, `Reconnected`
//!   with the attempt's number, `GaveUp` with the final status.
//! - **Progress.** An attempt made progress when, from one of its responses,
//!   the resume rule made a request other than the attempt's own; that
//!   restarts the count of consecutive failures, and with it the backoff. A
//!   rule that asks for the same request again (so the server repeats what it
//!   sent) makes no progress: after `max_attempts` such attempts in a row the
//!   stream ends with the last status, its message saying so. Responses are
//!   handed over all the same, so the application sees those repeats.
//! - **Deadline.** A `grpc-timeout` on the first request (set with
//!   `Request::set_timeout`) is the deadline of the **whole call**, all
//!   attempts and backoffs together, as for [`retry::Call`](crate::retry::Call):
//!   each attempt is sent with the time left, an attempt still running at
//!   the deadline is dropped, no backoff sleeps past it, and the stream then
//!   ends with `DEADLINE_EXCEEDED` (naming the last attempt's status, if one
//!   failed). Every attempt carries the first request's other metadata and
//!   its extensions, and `grpc-previous-rpc-attempts`.
//! - **Tasks.** None: the application's polling drives the attempts. An
//!   attempt that fails is dropped (its call and response stream) before the
//!   next one starts, and dropping the stream drops everything, so the task
//!   count depends only on the channel's connection. Nothing happens while
//!   the application does not poll, except that the server is held back by
//!   HTTP/2 flow control, as with any tonic stream.

mod ack;
mod buffer;
mod event;
mod handle;
mod reconnect;
mod resume;
mod stream;
mod supervisor;

#[cfg(test)]
mod tests;

pub use ack::Ack;
pub use event::{EVENT_CAPACITY, Event};
pub use handle::{
    DEFAULT_OUTBOX_CAPACITY, SendError, Session, SessionBuilder, SessionReceiver, SessionSender,
};
pub use resume::{ResumeBuilder, ResumingStream};
pub use stream::SessionStream;
pub use supervisor::Closed;

#[cfg(doc)]
use crate::retry::RetryPolicy;
