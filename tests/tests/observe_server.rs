//! Scenarios of seeing every call on `steadfast::server::Server`: one
//! `rpc.server` span per call for its whole life (a heartbeat call's span
//! lasts as long as the call), its status whatever way the call ends (OK, an
//! error after the headers, a client's cancel, the drain's cut), the caller's
//! trace continued, and go-grpc-prometheus's metrics with bounded labels.
//!
//! Each test runs on a current-thread runtime, so the span layer and the
//! metrics recorder it installs for its thread see its server's calls and no
//! other test's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use steadfast::observe::names;
use steadfast::server::{Server, Shutdown};
use steadfast_examples::WIRE_DESCRIPTOR_SET;
use steadfast_examples::lab::LabService;
use steadfast_examples::proto::lab::v1::{
    Identity, SleepRequest, Tick, WhoAmIRequest, lab_client::LabClient, lab_server::LabServer,
};
use steadfast_tests::wait;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tracing::span;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Generous bound for anything to happen, so a hang fails the test instead of CI.
const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- metrics --

/// A recorder keeping every series by its name and sorted labels.
#[derive(Default)]
struct TestRecorder {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<String, Arc<Samples>>>,
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl metrics::HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value);
    }
}

/// `name{a=1,b=2}`, labels sorted.
fn series(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}={}", label.key(), label.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        Counter::from_arc(Arc::clone(counters.entry(series(key)).or_default()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut gauges = self.gauges.lock().unwrap_or_else(PoisonError::into_inner);
        Gauge::from_arc(Arc::clone(gauges.entry(series(key)).or_default()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self
            .histograms
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Histogram::from_arc(Arc::clone(histograms.entry(series(key)).or_default()))
    }
}

impl TestRecorder {
    /// The sum of the counters named `name` whose labels include `labels`.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters
            .iter()
            .filter(|(series, _)| matches(series, name, labels))
            .map(|(_, value)| value.load(Ordering::Relaxed))
            .sum()
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let gauges = self.gauges.lock().unwrap_or_else(PoisonError::into_inner);
        gauges
            .iter()
            .filter(|(series, _)| matches(series, name, labels))
            .map(|(_, value)| f64::from_bits(value.load(Ordering::Relaxed)))
            .sum()
    }

    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let histograms = self
            .histograms
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        histograms
            .iter()
            .filter(|(series, _)| matches(series, name, labels))
            .flat_map(|(_, samples)| {
                samples
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .collect()
    }

    fn dump(&self) -> String {
        format!(
            "{:?}",
            self.counters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .keys()
                .collect::<Vec<_>>()
        )
    }
}

fn matches(series: &str, name: &str, labels: &[(&str, &str)]) -> bool {
    let Some(rest) = series.strip_prefix(name).and_then(|r| r.strip_prefix('{')) else {
        return false;
    };
    let rest = rest.trim_end_matches('}');
    let have: Vec<&str> = rest.split(',').collect();
    labels
        .iter()
        .all(|(k, v)| have.contains(&format!("{k}={v}").as_str()))
}

// ------------------------------------------------------------------ spans --

/// A span as the layer saw it: its fields, when it opened and closed.
#[derive(Clone, Debug)]
struct SpanRecord {
    fields: HashMap<String, String>,
    opened: Instant,
    closed: Option<Instant>,
}

impl SpanRecord {
    fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

/// Records every `rpc.server` span.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<SpansInner>>);

#[derive(Default)]
struct SpansInner {
    open: HashMap<u64, SpanRecord>,
    all: Vec<SpanRecord>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S> tracing_subscriber::Layer<S> for Spans
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, _: Context<'_, S>) {
        if attrs.metadata().name() != "rpc.server" {
            return;
        }
        let mut record = SpanRecord {
            fields: HashMap::new(),
            opened: Instant::now(),
            closed: None,
        };
        attrs.record(&mut Fields(&mut record.fields));
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        inner.open.insert(id.into_u64(), record);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, _: Context<'_, S>) {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(record) = inner.open.get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut record.fields));
        }
    }

    fn on_close(&self, id: span::Id, _: Context<'_, S>) {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mut record) = inner.open.remove(&id.into_u64()) {
            record.closed = Some(Instant::now());
            inner.all.push(record);
        }
    }
}

impl Spans {
    fn closed(&self, method: &str) -> Vec<SpanRecord> {
        let inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .all
            .iter()
            .filter(|s| s.get("rpc.method") == Some(method))
            .cloned()
            .collect()
    }

    fn open(&self, method: &str) -> usize {
        let inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .open
            .values()
            .filter(|s| s.get("rpc.method") == Some(method))
            .count()
    }

    /// Waits until `n` spans of `method` have closed; returns them.
    async fn wait_closed(&self, method: &str, n: usize) -> Vec<SpanRecord> {
        let what = format!("{n} closed spans of {method}");
        wait::until_some(&what, DEADLINE, || {
            let closed = self.closed(method);
            async move { (closed.len() >= n).then_some(closed) }
        })
        .await
    }

    async fn wait_open(&self, method: &str) {
        let what = format!("an open span of {method}");
        wait::until(&what, DEADLINE, || {
            let open = self.open(method);
            async move { open >= 1 }
        })
        .await;
    }
}

// ------------------------------------------------------------------ setup --

/// A lab server (with its descriptors) observed by a span layer and a
/// recorder installed for this thread.
struct Observed {
    addr: SocketAddr,
    shutdown: Shutdown,
    spans: Spans,
    recorder: &'static TestRecorder,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _tracing: tracing::subscriber::DefaultGuard,
    _metrics: metrics::LocalRecorderGuard<'static>,
}

impl Observed {
    async fn start(configure: impl FnOnce(Server) -> Server) -> Observed {
        let spans = Spans::default();
        let tracing =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
        // Leaked: a few per test binary, and the guard borrows it for 'static.
        let recorder: &'static TestRecorder = Box::leak(Box::default());
        let metrics = metrics::set_default_local_recorder(recorder);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let server = Server::builder()
            .add_service(LabServer::new(LabService::new("observed")))
            .file_descriptor_set(WIRE_DESCRIPTOR_SET)
            .expect("the lab's descriptors");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(configure(server).serve_with_shutdown(listener, shutdown.clone()));
        Observed {
            addr,
            shutdown,
            spans,
            recorder,
            task,
            _tracing: tracing,
            _metrics: metrics,
        }
    }

    async fn client(&self) -> LabClient<tonic::transport::Channel> {
        LabClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect")
    }

    async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
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
        Some(&*observed.addr.port().to_string())
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
    let observed =
        Observed::start(|server| server.drain_deadline(Duration::from_millis(300))).await;
    let mut client = observed.client().await;
    let call = tokio::spawn(async move { client.sleep(SleepRequest { millis: 60_000 }).await });
    observed.spans.wait_open("lab.v1.Lab/Sleep").await;
    assert_eq!(observed.recorder.gauge(names::SERVER_DRAINING, &[]), 0.0);
    observed.shutdown.trigger();

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
    tokio::time::timeout(DEADLINE, observed.task)
        .await
        .expect("serve returned")
        .expect("serve's task")
        .expect("serve");
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
    let spans = Spans::default();
    let _tracing =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let recorder: &'static TestRecorder = Box::leak(Box::default());
    let _metrics = metrics::set_default_local_recorder(recorder);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = Server::builder().add_service(LabServer::new(LabService::new("bare")));
    let _task = tokio::spawn(server.serve_until(listener, std::future::pending()));
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

    let spans = Spans::default();
    let _tracing =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let recorder: &'static TestRecorder = Box::leak(Box::default());
    let _metrics = metrics::set_default_local_recorder(recorder);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let dispatch = DispatchServer::new()
        .mount(ModelServer::new(ModelService::new("model")))
        .expect("mounts");
    let server = Server::builder().add_service(dispatch);
    let _task = tokio::spawn(server.serve_until(listener, std::future::pending()));
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
