//! What a generated client reports of its calls (`steadfast::observe`): one
//! `rpc.client` span per call with an `rpc.attempt` child per attempt, a
//! `traceparent` per attempt that the server receives, and go-grpc-prometheus
//! metrics recorded when the call ends — its reply, its stream's end, or the
//! caller dropping the stream; a liveness failure counted; `Observed`
//! around a hand-written client, each call labelled by its path; and a call
//! made inside a `steadfast::server::Server` handler continuing the trace of
//! the call the handler serves.
//!
//! Each test runs on a current-thread runtime with its own span layer and
//! metrics recorder set as the thread's defaults, so tests do not see each
//! other's calls.

#![deny(warnings)]
#![allow(missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::observe::TraceContext;
use steadfast_tests::observe::{SpanSeen, Spans, observe};
use steadfast_tests::wait;
use tokio::sync::oneshot;
use tokio_stream::StreamExt;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

pub mod retry {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/cases/retry/retry.v1.rs"));
    }
}

use retry::v1::flaky_client::FlakyClient;
use retry::v1::flaky_server::{Flaky, FlakyServer};
use retry::v1::{Answer, Ask};

const DEADLINE: Duration = Duration::from_secs(10);

// ---- spans ----------------------------------------------------------------

/// The calls and attempts among a thread's spans.
trait Calls {
    /// The one `rpc.client` span whose `otel.name` is `method`.
    fn call(&self, method: &str) -> Option<(usize, SpanSeen)>;
    /// The `rpc.attempt` children of span `parent`, in the order they opened.
    fn attempts(&self, parent: usize) -> Vec<SpanSeen>;
    /// Waits until the call span of `method` has closed.
    async fn closed_call(&self, method: &str) -> (usize, SpanSeen);
}

impl Calls for Spans {
    fn call(&self, method: &str) -> Option<(usize, SpanSeen)> {
        let calls: Vec<_> = self
            .named("rpc.client")
            .into_iter()
            .filter(|(_, span)| span.get("otel.name") == Some(method))
            .collect();
        assert!(
            calls.len() <= 1,
            "one rpc.client span for {method}: {calls:#?}"
        );
        calls.into_iter().next()
    }

    fn attempts(&self, parent: usize) -> Vec<SpanSeen> {
        self.named("rpc.attempt")
            .into_iter()
            .filter(|(_, span)| span.parent == Some(parent))
            .map(|(_, span)| span)
            .collect()
    }

    async fn closed_call(&self, method: &str) -> (usize, SpanSeen) {
        wait::until_some(
            &format!("the rpc.client span of {method} closes"),
            DEADLINE,
            || async { self.call(method).filter(|(_, span)| span.closed.is_some()) },
        )
        .await
    }
}

// ---- the server -----------------------------------------------------------

/// Follows each request's `script`: `fail:N:UNAVAILABLE` fails the first N
/// calls with its key; `midstream` (Watch) fails after one answer; `sleep:MS`
/// (Slow) answers after MS. Keeps the
/// `traceparent` of every call, by key.
#[derive(Clone, Default)]
struct Scripted {
    calls: Arc<Mutex<HashMap<String, Vec<Option<String>>>>>,
}

impl Scripted {
    fn run<T>(&self, request: &Request<T>, ask: &Ask) -> Result<Answer, Status> {
        let traceparent = request
            .metadata()
            .get("traceparent")
            .map(|value| value.to_str().expect("ascii").to_owned());
        let calls = {
            let mut calls = self.calls.lock().expect("lock");
            let seen = calls.entry(ask.key.clone()).or_default();
            seen.push(traceparent);
            seen.len() as u32
        };
        if let Some(n) = ask.script.strip_prefix("fail:") {
            let n: u32 = n
                .strip_suffix(":UNAVAILABLE")
                .expect("fail:N:UNAVAILABLE")
                .parse()
                .expect("N");
            if calls <= n {
                return Err(Status::unavailable(format!("scripted failure {calls}")));
            }
        }
        Ok(Answer {
            attempt: calls,
            calls,
            blob_bytes: 0,
        })
    }

    fn traceparents(&self, key: &str) -> Vec<Option<String>> {
        self.calls
            .lock()
            .expect("lock")
            .get(key)
            .cloned()
            .unwrap_or_default()
    }
}

type AnswerStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<Answer, Status>> + Send>>;

#[tonic::async_trait]
impl Flaky for Scripted {
    async fn read(&self, request: Request<Ask>) -> Result<Response<Answer>, Status> {
        let ask = request.get_ref().clone();
        self.run(&request, &ask).map(Response::new)
    }

    async fn write(&self, _: Request<Ask>) -> Result<Response<Answer>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    type WatchStream = AnswerStream;

    async fn watch(&self, request: Request<Ask>) -> Result<Response<AnswerStream>, Status> {
        let ask = request.get_ref().clone();
        let first = self.run(&request, &ask)?;
        let answers = if ask.script == "midstream" {
            vec![Ok(first), Err(Status::unavailable("broke mid-stream"))]
        } else {
            vec![Ok(first), Ok(first)]
        };
        Ok(Response::new(Box::pin(tokio_stream::iter(answers))))
    }

    async fn tuned(&self, _: Request<Ask>) -> Result<Response<Answer>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn slow(&self, request: Request<Ask>) -> Result<Response<Answer>, Status> {
        let ask = request.get_ref().clone();
        if let Some(ms) = ask.script.strip_prefix("sleep:") {
            tokio::time::sleep(Duration::from_millis(ms.parse().expect("ms"))).await;
        }
        self.run(&request, &ask).map(Response::new)
    }

    async fn put(&self, _: Request<Ask>, _: steadfast::Blob) -> Result<Response<Answer>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn feed(&self, _: Request<tonic::Streaming<Ask>>) -> Result<Response<Answer>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }
}

/// Serves `service` on a port of its own until the sender is dropped.
async fn serve<S>(service: S) -> (SocketAddr, oneshot::Sender<()>)
where
    S: tonic::codegen::Service<
            tonic::codegen::http::Request<tonic::body::Body>,
            Response = tonic::codegen::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });
    (addr, stop)
}

fn flaky(addr: SocketAddr) -> FlakyClient<tonic::transport::Channel> {
    FlakyClient::connect_lazy(format!("http://{addr}")).expect("a valid address")
}

fn ask(script: &str, key: &str) -> Ask {
    Ask {
        script: script.to_owned(),
        key: key.to_owned(),
    }
}

fn field<'a>(span: &'a SpanSeen, name: &str) -> &'a str {
    span.fields
        .get(name)
        .map_or_else(|| panic!("no {name} in {span:#?}"), String::as_str)
}

// ---- the scenarios ----------------------------------------------------------

#[tokio::test]
async fn a_retried_call_is_one_client_span_with_an_attempt_span_per_attempt() {
    let observing = observe();
    let (addr, _stop) = serve(FlakyServer::new(Scripted::default())).await;
    let mut client = flaky(addr);

    let answer = tokio::time::timeout(DEADLINE, client.read(ask("fail:1:UNAVAILABLE", "a")))
        .await
        .expect("in time")
        .expect("the second attempt answers")
        .into_inner();
    assert_eq!(answer.calls, 2);

    let spans = &observing.spans;
    let (call, span) = spans.closed_call("retry.v1.Flaky/Read").await;
    assert_eq!(field(&span, "rpc.method"), "retry.v1.Flaky/Read");
    assert_eq!(field(&span, "otel.kind"), "client");
    assert_eq!(field(&span, "rpc.system.name"), "grpc");
    assert_eq!(field(&span, "rpc.status_code"), "OK");
    assert!(!span.fields.contains_key("error.type"), "{span:#?}");
    assert_eq!(field(&span, "steadfast.attempts"), "2");
    let attempts = spans.attempts(call);
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(field(&attempts[0], "grpc.previous_rpc_attempts"), "0");
    assert_eq!(field(&attempts[0], "rpc.status_code"), "UNAVAILABLE");
    assert_eq!(field(&attempts[0], "error.type"), "UNAVAILABLE");
    assert_eq!(field(&attempts[1], "grpc.previous_rpc_attempts"), "1");
    assert_eq!(field(&attempts[1], "rpc.status_code"), "OK");
    assert!(attempts.iter().all(|attempt| attempt.closed.is_some()));

    let metrics = &observing.metrics;
    let labels = r#"grpc_method="Read",grpc_service="retry.v1.Flaky""#;
    let typed = format!(r#"{labels},grpc_type="unary""#);
    let dump = metrics.dump();
    assert_eq!(
        metrics.counter_series(&format!("steadfast_client_retries_total{{{labels}}}")),
        1,
        "{dump}"
    );
    assert_eq!(
        metrics.counter_series(&format!("grpc_client_started_total{{{typed}}}")),
        1,
        "{dump}"
    );
    assert_eq!(
        metrics.counter_series(&format!(
            r#"grpc_client_handled_total{{grpc_code="OK",{typed}}}"#
        )),
        1,
        "{dump}"
    );
    assert_eq!(
        metrics
            .samples_series(&format!("grpc_client_handling_seconds{{{typed}}}"))
            .len(),
        1,
        "{dump}"
    );
    // A request per attempt, one reply.
    assert_eq!(
        metrics.counter_series(&format!("grpc_client_msg_sent_total{{{typed}}}")),
        2,
        "{dump}"
    );
    assert_eq!(
        metrics.counter_series(&format!("grpc_client_msg_received_total{{{typed}}}")),
        1,
        "{dump}"
    );
}

#[tokio::test]
async fn each_attempt_sends_its_own_span_of_the_calls_trace_to_the_server() {
    let observing = observe();
    let server = Scripted::default();
    let (addr, _stop) = serve(FlakyServer::new(server.clone())).await;
    let mut client = flaky(addr);

    tokio::time::timeout(DEADLINE, client.read(ask("fail:1:UNAVAILABLE", "b")))
        .await
        .expect("in time")
        .expect("the second attempt answers");

    let (call, span) = observing.spans.closed_call("retry.v1.Flaky/Read").await;
    let attempts = observing.spans.attempts(call);
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    let received: Vec<TraceContext> = server
        .traceparents("b")
        .into_iter()
        .map(|value| {
            let value = value.expect("every attempt sends a traceparent");
            TraceContext::parse(&value).unwrap_or_else(|| panic!("a valid traceparent: {value}"))
        })
        .collect();
    assert_eq!(received.len(), 2);
    for (sent, attempt) in received.iter().zip(&attempts) {
        assert_eq!(format!("{:032x}", sent.trace_id), field(&span, "trace_id"));
        assert_eq!(format!("{:016x}", sent.span_id), field(attempt, "span_id"));
        assert_eq!(field(attempt, "trace_id"), field(&span, "trace_id"));
        assert_eq!(field(attempt, "parent_span_id"), field(&span, "span_id"));
        assert!(sent.sampled);
    }
    assert_eq!(received[0].trace_id, received[1].trace_id);
    assert_ne!(received[0].span_id, received[1].span_id);
}

#[tokio::test]
async fn a_heartbeat_stream_dropped_midway_is_cancelled_and_its_span_lasts_until_then() {
    use steadfast_examples::lab::LabService;
    use steadfast_examples::proto::lab::v1::TicksRequest;
    use steadfast_examples::proto::lab::v1::lab_client::LabClient;
    use steadfast_examples::proto::lab::v1::lab_server::LabServer;

    let observing = observe();
    let (addr, _stop) = serve(LabServer::new(LabService::new("lab-o"))).await;
    let mut client = LabClient::connect_lazy(format!("http://{addr}")).expect("address");

    let mut ticks = tokio::time::timeout(
        DEADLINE,
        client.ticks(TicksRequest {
            count: 1000,
            gap_ms: 20,
        }),
    )
    .await
    .expect("in time")
    .expect("the stream starts")
    .into_inner();
    for _ in 0..2 {
        tokio::time::timeout(DEADLINE, ticks.next())
            .await
            .expect("a tick in time")
            .expect("a tick")
            .expect("not an error");
    }
    let method = "lab.v1.Lab/Ticks";
    let (_, open) = observing.spans.call(method).expect("the call's span");
    assert!(
        open.closed.is_none(),
        "the span outlives the headers: {open:#?}"
    );
    assert!(!open.fields.contains_key("rpc.status_code"), "{open:#?}");
    let labels = r#"grpc_method="Ticks",grpc_service="lab.v1.Lab",grpc_type="server_stream""#;
    let handled = format!(r#"grpc_client_handled_total{{grpc_code="Canceled",{labels}}}"#);
    assert_eq!(observing.metrics.counter_series(&handled), 0);

    drop(ticks);
    let (call, span) = observing.spans.closed_call(method).await;
    assert_eq!(field(&span, "rpc.status_code"), "CANCELLED");
    assert_eq!(field(&span, "error.type"), "CANCELLED");
    let attempts = observing.spans.attempts(call);
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(field(&attempts[0], "rpc.status_code"), "CANCELLED");
    let dump = observing.metrics.dump();
    assert_eq!(observing.metrics.counter_series(&handled), 1, "{dump}");
    assert!(
        observing
            .metrics
            .counter_series(&format!("grpc_client_msg_received_total{{{labels}}}"))
            >= 2,
        "{dump}"
    );
}

#[tokio::test]
async fn an_error_after_the_headers_ends_the_call_with_that_error() {
    let observing = observe();
    let (addr, _stop) = serve(FlakyServer::new(Scripted::default())).await;
    let mut client = flaky(addr);

    let mut answers = tokio::time::timeout(DEADLINE, client.watch(ask("midstream", "d")))
        .await
        .expect("in time")
        .expect("the headers come")
        .into_inner();
    let first = tokio::time::timeout(DEADLINE, answers.next())
        .await
        .expect("in time")
        .expect("an item");
    assert!(first.is_ok(), "{first:?}");
    let second = tokio::time::timeout(DEADLINE, answers.next())
        .await
        .expect("in time")
        .expect("an item");
    assert_eq!(
        second.expect_err("the error").code(),
        tonic::Code::Unavailable
    );

    let (_, span) = observing.spans.closed_call("retry.v1.Flaky/Watch").await;
    assert_eq!(field(&span, "rpc.status_code"), "UNAVAILABLE");
    let labels = r#"grpc_method="Watch",grpc_service="retry.v1.Flaky",grpc_type="server_stream""#;
    let metrics = &observing.metrics;
    let dump = metrics.dump();
    assert_eq!(
        metrics.counter_series(&format!(
            r#"grpc_client_handled_total{{grpc_code="Unavailable",{labels}}}"#
        )),
        1,
        "{dump}"
    );
    assert_eq!(
        metrics.counter_series(&format!(
            r#"grpc_client_handled_total{{grpc_code="OK",{labels}}}"#
        )),
        0,
        "{dump}"
    );
    drop(answers);
}

#[tokio::test]
async fn a_heartbeat_call_silent_past_its_liveness_window_counts_a_liveness_failure() {
    let observing = observe();
    let (addr, _stop) = serve(FlakyServer::new(Scripted::default())).await;
    let mut client = flaky(addr).without_retries();

    // Heartbeats every 50 ms cannot keep a 5 ms window.
    let mut request = Request::new(ask("sleep:5000", "e"));
    steadfast::CallOptions::new()
        .liveness(Duration::from_millis(5))
        .attach(&mut request);
    let status = tokio::time::timeout(DEADLINE, client.slow(request))
        .await
        .expect("in time")
        .expect_err("the window passes");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    let (call, span) = observing.spans.closed_call("retry.v1.Flaky/Slow").await;
    assert_eq!(field(&span, "rpc.status_code"), "UNAVAILABLE");
    // The attempt was dropped by the client: cancelled, as the server saw it.
    let attempts = observing.spans.attempts(call);
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(field(&attempts[0], "rpc.status_code"), "CANCELLED");
    let metrics = &observing.metrics;
    let dump = metrics.dump();
    let labels = r#"grpc_method="Slow",grpc_service="retry.v1.Flaky""#;
    assert_eq!(
        metrics.counter_series(&format!(
            "steadfast_client_liveness_failures_total{{{labels}}}"
        )),
        1,
        "{dump}"
    );
    assert_eq!(
        metrics.counter_series(&format!(
            r#"grpc_client_handled_total{{grpc_code="Unavailable",{labels},grpc_type="server_stream"}}"#
        )),
        1,
        "{dump}"
    );
}

#[tokio::test]
async fn a_hand_written_client_over_observed_is_one_attempt_span_per_call_labelled_by_path() {
    let observing = observe();
    let (addr, _stop) = serve(FlakyServer::new(Scripted::default())).await;
    let channel = steadfast::channel::connect_lazy(format!("http://{addr}")).expect("address");
    let mut grpc = tonic::client::Grpc::new(steadfast::observe::Observed::new(channel));

    tokio::time::timeout(DEADLINE, async {
        grpc.ready().await.expect("ready");
        grpc.unary::<Ask, Answer, _>(
            Request::new(ask("", "f")),
            tonic::codegen::http::uri::PathAndQuery::from_static("/retry.v1.Flaky/Read"),
            tonic_prost::ProstCodec::default(),
        )
        .await
    })
    .await
    .expect("in time")
    .expect("an answer");

    assert!(observing.spans.named("rpc.client").is_empty());
    let attempt = wait::until_some("the attempt span closes", DEADLINE, || async {
        observing
            .spans
            .named("rpc.attempt")
            .into_iter()
            .map(|(_, span)| span)
            .find(|span| span.closed.is_some())
    })
    .await;
    assert_eq!(attempt.parent, None, "{attempt:#?}");
    assert_eq!(field(&attempt, "otel.name"), "retry.v1.Flaky/Read");
    assert_eq!(field(&attempt, "rpc.status_code"), "OK");
    assert_eq!(field(&attempt, "grpc.previous_rpc_attempts"), "0");
    let metrics = &observing.metrics;
    let dump = metrics.dump();
    let labels = r#"grpc_method="Read",grpc_service="retry.v1.Flaky",grpc_type="other""#;
    assert_eq!(
        metrics.counter_series(&format!("grpc_client_started_total{{{labels}}}")),
        1,
        "{dump}"
    );
    assert_eq!(
        metrics.counter_series(&format!(
            r#"grpc_client_handled_total{{grpc_code="OK",{labels}}}"#
        )),
        1,
        "{dump}"
    );
}

#[tokio::test]
async fn a_traceparent_the_caller_sets_is_the_calls_parent() {
    let observing = observe();
    let server = Scripted::default();
    let (addr, _stop) = serve(FlakyServer::new(server.clone())).await;
    let mut client = flaky(addr);

    let mut request = Request::new(ask("", "g"));
    request.metadata_mut().insert(
        "traceparent",
        tonic::metadata::MetadataValue::from_static(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    );
    tokio::time::timeout(DEADLINE, client.read(request))
        .await
        .expect("in time")
        .expect("an answer");

    let (_, span) = observing.spans.closed_call("retry.v1.Flaky/Read").await;
    assert_eq!(field(&span, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(field(&span, "parent_span_id"), "00f067aa0ba902b7");
    let received = server.traceparents("g");
    let sent = TraceContext::parse(received[0].as_deref().expect("a traceparent"))
        .expect("a valid traceparent");
    assert_eq!(sent.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
    assert_ne!(sent.span_id, 0x00f067aa0ba902b7);
}

/// A `Flaky` upstream whose `Read` keeps the [`TraceContext`] its server gave
/// the call and then reads from `downstream` with a generated client, made
/// inside the handler with no `traceparent` of its own.
struct Relay {
    downstream: SocketAddr,
    contexts: Arc<Mutex<Vec<Option<TraceContext>>>>,
}

#[tonic::async_trait]
impl Flaky for Relay {
    async fn read(&self, request: Request<Ask>) -> Result<Response<Answer>, Status> {
        self.contexts
            .lock()
            .expect("lock")
            .push(TraceContext::of(&request));
        let ask = request.into_inner();
        flaky(self.downstream).read(ask).await
    }

    async fn write(&self, _: Request<Ask>) -> Result<Response<Answer>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    type WatchStream = AnswerStream;

    async fn watch(&self, _: Request<Ask>) -> Result<Response<AnswerStream>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn tuned(&self, _: Request<Ask>) -> Result<Response<Answer>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn slow(&self, _: Request<Ask>) -> Result<Response<Answer>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn put(&self, _: Request<Ask>, _: steadfast::Blob) -> Result<Response<Answer>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn feed(&self, _: Request<tonic::Streaming<Ask>>) -> Result<Response<Answer>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }
}

#[tokio::test]
async fn a_call_made_in_a_handler_continues_the_trace_of_the_call_it_serves() {
    let observing = observe();
    let downstream = Scripted::default();
    let (downstream_addr, _stop) = serve(FlakyServer::new(downstream.clone())).await;
    let contexts = Arc::new(Mutex::new(Vec::new()));
    let upstream = steadfast_tests::serve::Production::start(
        steadfast::server::Server::builder().add_service(FlakyServer::new(Relay {
            downstream: downstream_addr,
            contexts: Arc::clone(&contexts),
        })),
    )
    .await;

    // The caller is a plain tonic client, so the only rpc.client span is the
    // handler's call downstream.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", upstream.addr()))
        .expect("address")
        .connect_lazy();
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut request = Request::new(ask("", "h"));
    request.metadata_mut().insert(
        "traceparent",
        tonic::metadata::MetadataValue::from_static(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    );
    tokio::time::timeout(DEADLINE, async {
        grpc.ready().await.expect("ready");
        grpc.unary::<Ask, Answer, _>(
            request,
            tonic::codegen::http::uri::PathAndQuery::from_static("/retry.v1.Flaky/Read"),
            tonic_prost::ProstCodec::default(),
        )
        .await
    })
    .await
    .expect("in time")
    .expect("the downstream's answer, relayed");

    let handler = contexts.lock().expect("lock").clone();
    assert_eq!(handler.len(), 1, "{handler:?}");
    let handler = handler[0].expect("the server gives the call a TraceContext");
    assert_eq!(handler.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
    assert_eq!(handler.parent_span_id, Some(0x00f067aa0ba902b7));
    assert_ne!(handler.span_id, 0x00f067aa0ba902b7);

    let received = downstream.traceparents("h");
    assert_eq!(received.len(), 1, "{received:?}");
    let value = received[0]
        .as_deref()
        .expect("the downstream gets a traceparent");
    let sent = TraceContext::parse(value).expect("a valid traceparent");
    assert_eq!(
        format!("{:032x}", sent.trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "{value}"
    );
    assert_ne!(sent.span_id, handler.span_id, "{value}");
    assert_ne!(sent.span_id, 0x00f067aa0ba902b7, "{value}");

    let (call, span) = observing.spans.closed_call("retry.v1.Flaky/Read").await;
    assert_eq!(field(&span, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        field(&span, "parent_span_id"),
        format!("{:016x}", handler.span_id)
    );
    let attempts = observing.spans.attempts(call);
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(
        field(&attempts[0], "span_id"),
        format!("{:016x}", sent.span_id)
    );
}
