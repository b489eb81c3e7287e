//! Scenarios of seeing every call on `steadfast::server::Server`: one
//! `rpc.server` span per call for its whole life (a heartbeat call's span
//! lasts as long as the call), its status whatever way the call ends (OK, an
//! error after the headers, a client's cancel, the drain's cut), the caller's
//! trace continued, and go-grpc-prometheus's metrics with bounded labels.
//!
//! Each test runs on a current-thread runtime, so the span layer and the
//! metrics recorder it installs for its thread see its server's calls and no
//! other test's.

use std::time::{Duration, Instant};

use steadfast::observe::names;
use steadfast::server::Server;
use steadfast_examples::WIRE_DESCRIPTOR_SET;
use steadfast_examples::lab::LabService;
use steadfast_examples::proto::lab::v1::{
    Identity, SleepRequest, Tick, WhoAmIRequest, lab_client::LabClient, lab_server::LabServer,
};
use steadfast_tests::observe::{Metrics, Observing, SpanSeen, Spans, observe};
use steadfast_tests::serve::Production;
use steadfast_tests::wait;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;

/// Generous bound for anything to happen, so a hang fails the test instead of CI.
const DEADLINE: Duration = Duration::from_secs(20);

// ------------------------------------------------------------------ spans --

/// The `rpc.server` spans of a thread, by method.
trait ServerSpans {
    /// The closed `rpc.server` spans of `method`, in the order they closed.
    fn closed_of(&self, method: &str) -> Vec<SpanSeen>;
    /// How many `rpc.server` spans of `method` are open.
    fn open_of(&self, method: &str) -> usize;
    /// Waits until `n` spans of `method` have closed; returns them.
    async fn wait_closed(&self, method: &str, n: usize) -> Vec<SpanSeen>;
    /// Waits until a span of `method` is open.
    async fn wait_open(&self, method: &str);
}

impl ServerSpans for Spans {
    fn closed_of(&self, method: &str) -> Vec<SpanSeen> {
        self.closed("rpc.server")
            .into_iter()
            .filter(|s| s.get("rpc.method") == Some(method))
            .collect()
    }

    fn open_of(&self, method: &str) -> usize {
        self.named("rpc.server")
            .into_iter()
            .filter(|(_, s)| s.closed.is_none() && s.get("rpc.method") == Some(method))
            .count()
    }

    async fn wait_closed(&self, method: &str, n: usize) -> Vec<SpanSeen> {
        let what = format!("{n} closed spans of {method}");
        wait::until_some(&what, DEADLINE, || {
            let closed = self.closed_of(method);
            async move { (closed.len() >= n).then_some(closed) }
        })
        .await
    }

    async fn wait_open(&self, method: &str) {
        let what = format!("an open span of {method}");
        wait::until(&what, DEADLINE, || {
            let open = self.open_of(method);
            async move { open >= 1 }
        })
        .await;
    }
}

// ------------------------------------------------------------------ setup --

/// A lab server (with its descriptors) observed by a span layer and a
/// recorder installed for this thread.
struct Observed {
    server: Production,
    spans: Spans,
    recorder: &'static Metrics,
    _observing: Observing,
}

impl Observed {
    async fn start(configure: impl FnOnce(Server) -> Server) -> Observed {
        let observing = observe();
        let server = Server::builder()
            .add_service(LabServer::new(LabService::new("observed")))
            .file_descriptor_set(WIRE_DESCRIPTOR_SET)
            .expect("the lab's descriptors");
        Observed {
            server: Production::start(configure(server)).await,
            spans: observing.spans.clone(),
            recorder: observing.metrics,
            _observing: observing,
        }
    }

    async fn client(&self) -> LabClient<tonic::transport::Channel> {
        LabClient::connect(format!("http://{}", self.server.addr()))
            .await
            .expect("connect")
    }

    async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.server.addr()))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect")
    }

    fn handled(&self, service: &str, method: &str, code: &str) -> u64 {
        self.recorder.counter(
            names::SERVER_HANDLED,
            &[
                ("grpc_service", service),
                ("grpc_method", method),
                ("grpc_code", code),
            ],
        )
    }

    async fn wait_handled(&self, service: &str, method: &str, code: &str, n: u64) {
        let what = format!("{n} {service}/{method} calls handled with {code}");
        wait::until(&what, DEADLINE, || {
            let handled = self.handled(service, method, code);
            async move { handled >= n }
        })
        .await;
        assert_eq!(
            self.handled(service, method, code),
            n,
            "{}",
            self.recorder.dump()
        );
    }
}

const LAB: &str = "lab.v1.Lab";

#[tokio::test]
async fn a_heartbeat_call_has_one_span_for_its_whole_life_and_is_counted() {
    let observed = Observed::start(|server| server).await;
    let mut client = observed.client().await;
    let called = Instant::now();
    let reply = client
        .sleep(SleepRequest { millis: 1_500 })
        .await
        .expect("sleep");
    let took = called.elapsed();
    assert!(reply.get_ref().slept_ms >= 1_500);

    let spans = observed.spans.wait_closed("lab.v1.Lab/Sleep", 1).await;
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    let lived = span.closed.expect("closed") - span.opened;
    assert!(
        lived >= Duration::from_millis(1_500) && lived <= took + Duration::from_millis(500),
        "the span lived {lived:?}, the call took {took:?}"
    );
    assert_eq!(span.get("rpc.status_code"), Some("OK"));
    assert_eq!(span.get("error.type"), None);
    assert_eq!(span.get("otel.name"), Some("lab.v1.Lab/Sleep"));
    assert_eq!(span.get("otel.kind"), Some("server"));
    assert_eq!(span.get("rpc.system.name"), Some("grpc"));
    assert_eq!(
        span.get("server.port"),
        Some(&*observed.server.addr().port().to_string())
    );
    assert_eq!(span.get("network.peer.address"), Some("127.0.0.1"));
    let heartbeats: u64 = span
        .get("steadfast.heartbeats")
        .expect("heartbeats recorded")
        .parse()
        .expect("a count");
    assert!(heartbeats >= 2, "{heartbeats} heartbeats");
    assert_eq!(span.get("trace_id").map(str::len), Some(32));
    // The generated client's attempt sent a `traceparent`: its child.
    assert_eq!(span.get("parent_span_id").map(str::len), Some(16));

    observed.wait_handled(LAB, "Sleep", "OK", 1).await;
    let labels = [("grpc_service", LAB), ("grpc_method", "Sleep")];
    let recorder = observed.recorder;
    // On the wire a heartbeat method streams its responses (heartbeats, then
    // the reply): its descriptors say so.
    assert_eq!(
        recorder.counter(
            names::SERVER_STARTED,
            &[labels[0], labels[1], ("grpc_type", "server_stream")]
        ),
        1,
        "{}",
        recorder.dump()
    );
    assert_eq!(recorder.gauge(names::SERVER_IN_FLIGHT, &labels), 0.0);
    assert_eq!(
        recorder.counter(names::SERVER_HEARTBEATS, &labels),
        heartbeats
    );
    assert_eq!(recorder.counter(names::SERVER_MSG_RECEIVED, &labels), 1);
    assert_eq!(
        recorder.counter(names::SERVER_MSG_SENT, &labels),
        heartbeats + 1
    );
    let seconds = recorder.samples(names::SERVER_HANDLING_SECONDS, &labels);
    assert_eq!(seconds.len(), 1);
    assert!(seconds[0] >= 1.5, "{seconds:?}");
}

#[tokio::test]
async fn an_error_after_the_headers_is_the_calls_status() {
    let observed = Observed::start(|server| server).await;
    let mut client = observed.client().await;
    // A heartbeat method answers its headers at once; the handler's refusal
    // comes in the trailers.
    let status = client
        .sleep(SleepRequest { millis: u64::MAX })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);

    let spans = observed.spans.wait_closed("lab.v1.Lab/Sleep", 1).await;
    assert_eq!(spans[0].get("rpc.status_code"), Some("INVALID_ARGUMENT"));
    assert_eq!(spans[0].get("error.type"), Some("INVALID_ARGUMENT"));
    observed
        .wait_handled(LAB, "Sleep", "InvalidArgument", 1)
        .await;
    assert_eq!(observed.handled(LAB, "Sleep", "OK"), 0);
}

#[tokio::test]
async fn a_call_the_client_cancels_is_cancelled() {
    let observed = Observed::start(|server| server).await;
    let mut client = observed.client().await;
    let call = tokio::spawn(async move { client.sleep(SleepRequest { millis: 60_000 }).await });
    observed.spans.wait_open("lab.v1.Lab/Sleep").await;
    call.abort();

    let spans = observed.spans.wait_closed("lab.v1.Lab/Sleep", 1).await;
    assert_eq!(spans[0].get("rpc.status_code"), Some("CANCELLED"));
    assert_eq!(spans[0].get("error.type"), Some("CANCELLED"));
    observed.wait_handled(LAB, "Sleep", "Canceled", 1).await;
    assert_eq!(
        observed.recorder.gauge(
            names::SERVER_IN_FLIGHT,
            &[("grpc_service", LAB), ("grpc_method", "Sleep")]
        ),
        0.0
    );
}

#[tokio::test]
async fn unknown_methods_are_labelled_other() {
    let observed = Observed::start(|server| server).await;
    let channel = observed.channel().await;
    for path in ["/lab.v1.Lab/Nope", "/made.up.Service/X"] {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.expect("ready");
        let status = grpc
            .unary(
                tonic::Request::new(()),
                PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await
            .expect_err("unknown");
        assert_eq!(status.code(), Code::Unimplemented, "{path}");
    }

    let spans = observed.spans.wait_closed("_OTHER", 2).await;
    let mut originals: Vec<_> = spans
        .iter()
        .map(|s| s.get("rpc.method_original").unwrap_or_default().to_owned())
        .collect();
    originals.sort();
    assert_eq!(originals, ["/lab.v1.Lab/Nope", "/made.up.Service/X"]);
    assert!(
        spans
            .iter()
            .all(|s| s.get("rpc.status_code") == Some("UNIMPLEMENTED"))
    );
    observed
        .wait_handled("other", "other", "Unimplemented", 2)
        .await;
    let recorder = observed.recorder;
    assert_eq!(
        recorder.counter(names::SERVER_STARTED, &[("grpc_service", "other")]),
        2
    );
    // No series names what the client made up.
    let dump = recorder.dump();
    assert!(
        !dump.contains("Nope") && !dump.contains("made.up"),
        "{dump}"
    );
}

#[tokio::test]
async fn the_callers_trace_is_continued() {
    let observed = Observed::start(|server| server).await;
    let channel = observed.channel().await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(WhoAmIRequest {});
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .expect("ascii"),
    );
    let identity: tonic::Response<Identity> = grpc
        .unary(
            request,
            PathAndQuery::from_static("/lab.v1.Lab/WhoAmI"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect("who am i");
    assert_eq!(identity.get_ref().name, "observed");

    let spans = observed.spans.wait_closed("lab.v1.Lab/WhoAmI", 1).await;
    let span = &spans[0];
    assert_eq!(
        span.get("trace_id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(span.get("parent_span_id"), Some("00f067aa0ba902b7"));
    let span_id = span.get("span_id").expect("span id");
    assert_eq!(span_id.len(), 16);
    assert_ne!(span_id, "00f067aa0ba902b7");
    assert_eq!(span.get("rpc.status_code"), Some("OK"));
    observed.wait_handled(LAB, "WhoAmI", "OK", 1).await;
    assert_eq!(
        observed.recorder.counter(
            names::SERVER_STARTED,
            &[("grpc_method", "WhoAmI"), ("grpc_type", "unary")]
        ),
        1
    );
}

#[tokio::test]
async fn a_call_cut_at_the_drain_deadline_is_unavailable() {
    let mut observed =
        Observed::start(|server| server.drain_deadline(Duration::from_millis(300))).await;
    let mut client = observed.client().await;
    let call = tokio::spawn(async move { client.sleep(SleepRequest { millis: 60_000 }).await });
    observed.spans.wait_open("lab.v1.Lab/Sleep").await;
    assert_eq!(observed.recorder.gauge(names::SERVER_DRAINING, &[]), 0.0);
    observed.server.shutdown().trigger();

    let status = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("the call ended in time")
        .expect("the call's task")
        .expect_err("cut");
    assert_eq!(status.code(), Code::Unavailable);
    let spans = observed.spans.wait_closed("lab.v1.Lab/Sleep", 1).await;
    assert_eq!(spans[0].get("rpc.status_code"), Some("UNAVAILABLE"));
    assert_eq!(spans[0].get("steadfast.drain_cut"), Some("true"));
    observed.wait_handled(LAB, "Sleep", "Unavailable", 1).await;
    assert_eq!(observed.recorder.counter(names::SERVER_CALLS_CUT, &[]), 1);
    assert_eq!(observed.recorder.gauge(names::SERVER_DRAINING, &[]), 1.0);
    observed.server.returned(DEADLINE).await;
}

#[tokio::test]
async fn streamed_messages_are_counted_both_ways() {
    let observed = Observed::start(|server| server).await;
    let mut client = observed.client().await;
    let ticks: Vec<Tick> = (1..=5).map(|n| Tick { n }).collect();
    let mut echoed = client
        .echo(tokio_stream::iter(ticks.clone()))
        .await
        .expect("echo")
        .into_inner();
    let mut back = Vec::new();
    while let Some(tick) = echoed.message().await.expect("an echo") {
        back.push(tick);
    }
    assert_eq!(back, ticks);
    let count = client
        .count(tokio_stream::iter((1..=7).map(|n| Tick { n })))
        .await
        .expect("count");
    assert_eq!(count.get_ref().count, 7);

    let recorder = observed.recorder;
    for (method, received, replies) in [("Echo", 5, 5), ("Count", 7, 1)] {
        let spans = observed
            .spans
            .wait_closed(&format!("lab.v1.Lab/{method}"), 1)
            .await;
        let heartbeats: u64 = spans[0]
            .get("steadfast.heartbeats")
            .map_or(0, |n| n.parse().expect("a count"));
        observed.wait_handled(LAB, method, "OK", 1).await;
        let labels = [("grpc_service", LAB), ("grpc_method", method)];
        assert_eq!(
            recorder.counter(names::SERVER_MSG_RECEIVED, &labels),
            received,
            "{method}"
        );
        assert_eq!(
            recorder.counter(names::SERVER_MSG_SENT, &labels),
            replies + heartbeats,
            "{method}"
        );
    }
    assert_eq!(
        recorder.counter(
            names::SERVER_STARTED,
            &[("grpc_method", "Echo"), ("grpc_type", "bidi_stream")]
        ),
        1
    );
}

#[tokio::test]
async fn methods_of_a_service_without_descriptors_are_learned_from_their_answers() {
    let observing = observe();
    let (spans, recorder) = (&observing.spans, observing.metrics);
    let server = Server::builder().add_service(LabServer::new(LabService::new("bare")));
    let server = Production::start(server).await;
    let addr = server.addr();
    let mut client = LabClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    for _ in 0..2 {
        client.who_am_i(WhoAmIRequest {}).await.expect("who am i");
    }
    let closed = spans.wait_closed("lab.v1.Lab/WhoAmI", 2).await;
    assert_eq!(closed.len(), 2);
    let handled = |service: &str, method: &str| {
        recorder.counter(
            names::SERVER_HANDLED,
            &[("grpc_service", service), ("grpc_method", method)],
        )
    };
    wait::until("both calls handled", DEADLINE, || {
        let n = handled("other", "other") + handled(LAB, "WhoAmI");
        async move { n == 2 }
    })
    .await;
    // The first answer taught the server the method: the second has its labels.
    assert_eq!(handled("other", "other"), 1, "{}", recorder.dump());
    assert_eq!(handled(LAB, "WhoAmI"), 1, "{}", recorder.dump());
}

#[tokio::test]
async fn blob_bytes_are_counted_by_direction() {
    use steadfast::BlobSource;
    use steadfast_examples::proto::lab::v1::{DigestRequest, FetchRequest};

    let observed = Observed::start(|server| server).await;
    let mut client = observed.client().await;
    const SIZE: u64 = 300_000;
    // Compressible bytes: the wire carries fewer than the blob's own.
    let upload = vec![7u8; SIZE as usize];
    let digest = client
        .digest(
            DigestRequest { extra_millis: 0 },
            BlobSource::from_bytes(upload),
        )
        .await
        .expect("digest");
    assert_eq!(digest.get_ref().size, SIZE);
    let (reply, blob) = client
        .fetch(FetchRequest {
            size: SIZE,
            seed: 1,
        })
        .await
        .expect("fetch");
    assert_eq!(reply.get_ref().size, SIZE);
    let wire_received = blob.progress();
    assert_eq!(
        blob.to_bytes(SIZE as usize).await.expect("the blob").len() as u64,
        SIZE
    );

    let recorder = observed.recorder;
    let bytes = |name: &str, method: &str, direction: &str| {
        recorder.counter(
            name,
            &[
                ("grpc_method", method),
                ("grpc_service", LAB),
                ("direction", direction),
            ],
        )
    };
    let digests = observed.spans.wait_closed("lab.v1.Lab/Digest", 1).await;
    let fetches = observed.spans.wait_closed("lab.v1.Lab/Fetch", 1).await;
    observed.wait_handled(LAB, "Fetch", "OK", 1).await;
    observed.wait_handled(LAB, "Digest", "OK", 1).await;

    assert_eq!(bytes(names::BLOB_RAW_BYTES, "Digest", "received"), SIZE);
    let wire = bytes(names::BLOB_WIRE_BYTES, "Digest", "received");
    assert!(wire > 0 && wire < SIZE, "{wire} wire bytes received");
    assert_eq!(bytes(names::BLOB_RAW_BYTES, "Digest", "sent"), 0);
    assert_eq!(
        digests[0].get("steadfast.blob.raw_bytes"),
        Some(&*SIZE.to_string())
    );
    assert_eq!(
        digests[0].get("steadfast.blob.wire_bytes"),
        Some(&*wire.to_string())
    );

    assert_eq!(bytes(names::BLOB_RAW_BYTES, "Fetch", "sent"), SIZE);
    assert_eq!(
        bytes(names::BLOB_WIRE_BYTES, "Fetch", "sent"),
        wire_received.wire_bytes()
    );
    assert_eq!(bytes(names::BLOB_RAW_BYTES, "Fetch", "received"), 0);
    assert_eq!(
        fetches[0].get("steadfast.blob.raw_bytes"),
        Some(&*SIZE.to_string())
    );
}

#[tokio::test]
async fn dispatch_calls_are_counted_by_registered_function() {
    use steadfast::dispatch::{DispatchClient, DispatchServer};
    use steadfast_examples::model::{ModelServer, ModelService};

    let observing = observe();
    let (spans, recorder) = (&observing.spans, observing.metrics);
    let dispatch = DispatchServer::new()
        .mount(ModelServer::new(ModelService::new("model")))
        .expect("mounts");
    let server = Server::builder().add_service(dispatch);
    let server = Production::start(server).await;
    let addr = server.addr();
    let mut client = DispatchClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let (greeting, _): (String, _) = client
        .call("hello", &serde_json::json!({ "name": "Ada" }), None)
        .await
        .expect("hello");
    assert!(greeting.contains("Ada"), "{greeting}");
    let unknown = client
        .call::<_, String>("made_up_function", &serde_json::json!({}), None)
        .await
        .expect_err("no such function");
    assert_eq!(unknown.code(), Code::Unimplemented);

    let closed = spans.wait_closed("steadfast.v1.Dispatch/Call", 2).await;
    let funcs: Vec<_> = closed.iter().map(|s| s.get("steadfast.func")).collect();
    assert!(
        funcs.contains(&Some("hello")) && funcs.contains(&None),
        "{funcs:?}"
    );
    let calls = |func: &str, code: &str| {
        recorder.counter(
            names::DISPATCH_CALLS,
            &[("func", func), ("grpc_code", code)],
        )
    };
    wait::until("both dispatch calls counted", DEADLINE, || {
        let n = calls("hello", "OK") + calls("other", "Unimplemented");
        async move { n == 2 }
    })
    .await;
    assert!(!recorder.dump().contains("made_up"), "{}", recorder.dump());
    // The grpc_* series keep go-grpc-prometheus's labels only.
    assert_eq!(
        recorder.counter(
            names::SERVER_STARTED,
            &[
                ("grpc_service", "steadfast.v1.Dispatch"),
                ("grpc_method", "Call")
            ]
        ),
        2
    );
}
