//! `lab-server --metrics-addr` as an operator scrapes it: after a heartbeat
//! call, a server stream, a failing call, a cancelled stream and a call of a
//! method nobody serves, `/metrics` holds go-grpc-prometheus's series with
//! their labels (`grpc_code` spelled as grpc-go spells it) and steadfast's own,
//! the unknown method under `other`; and a metrics port 0 is refused, since
//! the exporter would never say which port it got.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use steadfast::observe::{OTHER, go_code_name, names};
use steadfast_examples::proto::lab::v1::{
    Identity, SleepRequest, TicksRequest, WhoAmIRequest, lab_client::LabClient,
};
use steadfast_tests::process::{ChildGuard, spawn_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;

const LAB_SERVER: &str = env!("CARGO_BIN_EXE_lab-server");

/// How long the server may take to start, a call to be answered, and the
/// metrics to show what happened.
const PATIENCE: Duration = Duration::from_secs(10);

/// A series: the metric's name and its labels, in any order.
type Series = (String, BTreeMap<String, String>);

/// A free port for the exporter, which binds its address itself (and does
/// not say which port it got on port 0): another process could take it in
/// between, which is a risk this test takes.
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// `lab-server` on port 0 with its metrics on `metrics`.
fn lab_server(metrics: SocketAddr) -> (ChildGuard, SocketAddr) {
    spawn_server(
        Command::new(LAB_SERVER)
            .args(["--addr", "127.0.0.1:0", "--name", "metrics"])
            .args(["--metrics-addr", &metrics.to_string()])
            .stderr(Stdio::null()),
        "lab-server metrics",
        PATIENCE,
    )
    .expect("lab-server starts")
}

/// `GET /metrics` over plain HTTP/1.1: the status line and the body.
async fn scrape(metrics: SocketAddr) -> std::io::Result<(String, String)> {
    let mut stream = tokio::net::TcpStream::connect(metrics).await?;
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {metrics}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .map_err(|_| std::io::Error::other("no whole answer in time"))??;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let status = head.lines().next().unwrap_or_default().to_owned();
    let chunked = head
        .lines()
        .any(|line| line.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

/// Prometheus text as series and their values (comments skipped).
fn parse(text: &str) -> BTreeMap<Series, f64> {
    let mut series = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name_and_labels, value) = match line.rsplit_once(' ') {
            Some(split) => split,
            None => panic!("a sample without a value: {line:?}"),
        };
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("a sample's value: {line:?}"));
        let (name, labels) = match name_and_labels.split_once('{') {
            Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
            None => (name_and_labels, BTreeMap::new()),
        };
        series.insert((name.to_owned(), labels), value);
    }
    series
}

/// `a="x",b="y"` (values with `\"`, `\\` and `\n` escaped) as a map.
fn parse_labels(mut text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while let Some((key, rest)) = text.split_once("=\"") {
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let mut end = rest.len();
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                '"' => {
                    end = at + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_owned(), value);
        text = &rest[end..];
    }
    labels
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

/// What a scrape must hold: a series with exactly these labels, or (for
/// steadfast's own metrics, whose other labels this test does not pin) one
/// with at least these; and its least value.
struct Expect {
    name: &'static str,
    labels: BTreeMap<String, String>,
    exact: bool,
    at_least: f64,
}

impl Expect {
    fn exact(name: &'static str, pairs: &[(&str, &str)], at_least: f64) -> Expect {
        Expect {
            name,
            labels: labels(pairs),
            exact: true,
            at_least,
        }
    }

    fn with(name: &'static str, pairs: &[(&str, &str)], at_least: f64) -> Expect {
        Expect {
            exact: false,
            ..Expect::exact(name, pairs, at_least)
        }
    }

    fn met_by(&self, scraped: &BTreeMap<Series, f64>) -> bool {
        scraped.iter().any(|((name, labels), value)| {
            name == self.name
                && *value >= self.at_least
                && if self.exact {
                    *labels == self.labels
                } else {
                    self.labels
                        .iter()
                        .all(|(key, value)| labels.get(key) == Some(value))
                }
        })
    }
}

impl std::fmt::Debug for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(key, value)| format!("{key}=\"{value}\""))
            .collect();
        let more = if self.exact { "" } else { ",…" };
        write!(
            f,
            "{}{{{}{more}}} >= {}",
            self.name,
            labels.join(","),
            self.at_least
        )
    }
}

/// The calls of the scenario: a `Sleep` long enough for a heartbeat, a
/// `Ticks` stream read to its end, a `Sleep` refused (INVALID_ARGUMENT), a
/// `Ticks` stream dropped after its first tick (CANCELLED on the server), and
/// a method of a service nobody serves (UNIMPLEMENTED).
async fn make_calls(addr: SocketAddr) {
    let channel = tokio::time::timeout(
        PATIENCE,
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("an endpoint")
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    let mut client = LabClient::new(channel.clone());

    let slept = client
        .sleep(SleepRequest { millis: 700 })
        .await
        .expect("Sleep answers");
    assert!(slept.get_ref().slept_ms >= 700, "{slept:?}");

    let mut ticks = client
        .ticks(TicksRequest {
            count: 3,
            gap_ms: 10,
        })
        .await
        .expect("Ticks answers")
        .into_inner();
    let mut seen = 0;
    while ticks.message().await.expect("a tick").is_some() {
        seen += 1;
    }
    assert_eq!(seen, 3);

    let refused = client
        .sleep(SleepRequest { millis: u64::MAX })
        .await
        .expect_err("a sleep past the maximum is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);

    let mut slow = client
        .ticks(TicksRequest {
            count: 100,
            gap_ms: 1000,
        })
        .await
        .expect("Ticks answers")
        .into_inner();
    slow.message().await.expect("the first tick");
    drop(slow);

    let mut raw = tonic::client::Grpc::new(channel);
    raw.ready().await.expect("the channel is ready");
    let unknown = raw
        .unary(
            tonic::Request::new(WhoAmIRequest {}),
            PathAndQuery::from_static("/nope.v1.Nope/Nope"),
            tonic_prost::ProstCodec::<WhoAmIRequest, Identity>::default(),
        )
        .await
        .expect_err("nobody serves nope.v1.Nope");
    assert_eq!(unknown.code(), Code::Unimplemented);
}

#[tokio::test]
async fn lab_server_metrics_hold_each_call_by_method_type_and_code() {
    let metrics = free_port();
    let (_server, addr) = lab_server(metrics);
    make_calls(addr).await;

    let lab = ("grpc_service", "lab.v1.Lab");
    // A heartbeat method's type is its type on the wire: Sleep, unary in
    // lab.proto, streams its response frames.
    let sleep = [
        lab,
        ("grpc_method", "Sleep"),
        ("grpc_type", "server_stream"),
    ];
    let ticks = [
        lab,
        ("grpc_method", "Ticks"),
        ("grpc_type", "server_stream"),
    ];
    let with = |base: &[(&'static str, &'static str)], more: &[(&'static str, &'static str)]| {
        base.iter().chain(more).copied().collect::<Vec<_>>()
    };
    let ok = go_code_name(Code::Ok);
    let expected = [
        Expect::exact(names::SERVER_STARTED, &sleep, 2.0),
        Expect::exact(
            names::SERVER_HANDLED,
            &with(&sleep, &[("grpc_code", ok)]),
            1.0,
        ),
        Expect::exact(
            names::SERVER_HANDLED,
            &with(
                &sleep,
                &[("grpc_code", go_code_name(Code::InvalidArgument))],
            ),
            1.0,
        ),
        Expect::exact(
            "grpc_server_handling_seconds_bucket",
            &with(&sleep, &[("le", "3600")]),
            2.0,
        ),
        Expect::exact(names::SERVER_MSG_RECEIVED, &sleep, 2.0),
        Expect::exact(names::SERVER_MSG_SENT, &sleep, 1.0),
        Expect::exact(names::SERVER_STARTED, &ticks, 2.0),
        Expect::exact(
            names::SERVER_HANDLED,
            &with(&ticks, &[("grpc_code", ok)]),
            1.0,
        ),
        Expect::exact(
            names::SERVER_HANDLED,
            &with(&ticks, &[("grpc_code", go_code_name(Code::Cancelled))]),
            1.0,
        ),
        Expect::exact(names::SERVER_MSG_SENT, &ticks, 4.0),
        Expect::with(
            names::SERVER_HANDLED,
            &[
                ("grpc_service", OTHER),
                ("grpc_method", OTHER),
                ("grpc_code", go_code_name(Code::Unimplemented)),
            ],
            1.0,
        ),
        Expect::with(
            names::SERVER_HEARTBEATS,
            &[lab, ("grpc_method", "Sleep")],
            1.0,
        ),
        Expect::with(
            names::SERVER_IN_FLIGHT,
            &[lab, ("grpc_method", "Sleep")],
            0.0,
        ),
    ];

    // The cancelled stream ends on the server a little after the client let
    // go, and the exporter shows what was recorded when it is scraped.
    let give_up = Instant::now() + PATIENCE;
    let (missing, body) = loop {
        let (status, body) = scrape(metrics).await.expect("/metrics answers");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}\n{body}");
        let scraped = parse(&body);
        let missing: Vec<String> = expected
            .iter()
            .filter(|expect| !expect.met_by(&scraped))
            .map(|expect| format!("{expect:?}"))
            .collect();
        if missing.is_empty() || Instant::now() >= give_up {
            break (missing, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        missing.is_empty(),
        "series missing from /metrics:\n{}\nit served:\n{body}",
        missing.join("\n")
    );
}

#[test]
fn prometheus_text_parses_into_series_whatever_the_label_order() {
    let text = "# HELP x y\n# TYPE grpc_server_started_total counter\n\
                grpc_server_started_total{grpc_type=\"unary\",grpc_service=\"a.B\",grpc_method=\"C\"} 3\n\
                steadfast_server_draining 0\n\
                odd{v=\"a \\\"q\\\" ,b=\\\\\"} 1.5\n";
    let parsed = parse(text);
    let started = (
        names::SERVER_STARTED.to_owned(),
        labels(&[
            ("grpc_method", "C"),
            ("grpc_service", "a.B"),
            ("grpc_type", "unary"),
        ]),
    );
    assert_eq!(parsed.get(&started), Some(&3.0));
    let draining = (names::SERVER_DRAINING.to_owned(), BTreeMap::new());
    assert_eq!(parsed.get(&draining), Some(&0.0));
    let odd = ("odd".to_owned(), labels(&[("v", "a \"q\" ,b=\\")]));
    assert_eq!(parsed.get(&odd), Some(&1.5), "{parsed:?}");
}

#[tokio::test]
async fn the_metrics_endpoint_answers_with_prometheus_text_once_the_server_announces_itself() {
    let metrics = free_port();
    let (_server, _addr) = lab_server(metrics);
    let (status, body) = scrape(metrics).await.expect("/metrics answers");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}\n{body}");
    // Whatever it holds yet parses as Prometheus text.
    let _ = parse(&body);
}

#[test]
fn a_metrics_port_0_is_refused_with_a_reason() {
    let output = Command::new(LAB_SERVER)
        .args(["--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .output()
        .expect("lab-server runs");
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--metrics-addr"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "it announced a listening address: {output:?}"
    );
}
