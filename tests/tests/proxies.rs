//! Behind every common proxy: the lab behind real HAProxy and real Caddy, each
//! running its shipped `examples/deploy/` config with a 1 s idle timeout
//! (HAProxy's `timeout server` and `timeout client`, Caddy's `read_timeout`),
//! and behind real nginx with a 1 s `grpc_read_timeout` (`client_max_body_size
//! 0`). Through each, a 3 s call with heartbeats passes, a plain 3 s call is
//! cut, and 64 MiB blobs go up and down.
//!
//! Where the proxies differ: HAProxy times out each call on its own, Caddy
//! times out reads of the whole upstream connection, so a silent call beside
//! a busy one passes Caddy. And what HAProxy users get wrong: `timeout tunnel`
//! does not time out gRPC calls, and a `server` line without `proto h2` fails
//! every call with 502.
//!
//! And while steadfast's production server drains behind each proxy (issue
//! 24): a call in flight completes with its heartbeats, and one that outlasts
//! the drain deadline ends `UNAVAILABLE` "the server is shutting down" (the
//! server's trailers pass every proxy unchanged).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use steadfast::server::{SHUTTING_DOWN, Server};
use steadfast::{BlobSource, CallOptions, Heartbeat};
use steadfast_examples::{
    content,
    lab::{LabService, RunningLab, Stats, hex},
    proto::lab::v1::{
        DigestRequest, FetchRequest, SleepReply, SleepRequest, WhoAmIRequest,
        lab_client::LabClient, lab_server::LabServer,
    },
};
use steadfast_tests::{
    caddy::Caddy,
    haproxy::{self, Haproxy},
    nginx::Nginx,
    serve::Production,
    tools, wait,
};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::{Code, Request, Status, transport::Channel};

/// The idle timeout of every proxy here.
const IDLE: Duration = Duration::from_secs(1);
/// Generous bound for a call to end, so a hang fails the test instead of CI.
const DEADLINE: Duration = Duration::from_secs(60);
/// The blobs' size: 64 MiB, of bytes that do not compress.
const BLOB: u64 = 64 << 20;
/// How soon a draining server's `serve` must return after its last call ended:
/// the promise is 100 ms; the slack is for a loaded CI machine.
const RETURNS_WITHIN: Duration = Duration::from_millis(500);

/// One real proxy in front of the lab.
enum Proxy {
    Haproxy(Haproxy),
    Caddy(Caddy),
    Nginx(Nginx),
}

impl Proxy {
    fn url(&self) -> String {
        match self {
            Proxy::Haproxy(haproxy) => haproxy.url(),
            Proxy::Caddy(caddy) => caddy.url(),
            Proxy::Nginx(nginx) => nginx.url(),
        }
    }

    fn log(&self) -> String {
        match self {
            Proxy::Haproxy(haproxy) => haproxy.log(),
            Proxy::Caddy(caddy) => caddy.log(),
            Proxy::Nginx(nginx) => nginx.error_log(),
        }
    }

    /// Whether the proxy's log shows that it cut a call for its idle timeout:
    /// HAProxy's termination state `sH` (server timeout waiting for the
    /// response's headers) with its 504, Caddy's read timeout with its 504,
    /// nginx's "upstream timed out".
    fn logged_a_timeout(&self) -> bool {
        let log = self.log();
        match self {
            Proxy::Haproxy(_) => log
                .lines()
                .any(|l| l.contains(" 504 ") && l.contains(" sH-")),
            Proxy::Caddy(_) => log
                .lines()
                .any(|l| l.contains("i/o timeout") && l.contains(r#""status":504"#)),
            Proxy::Nginx(_) => log.contains("upstream timed out"),
        }
    }
}

/// The lab behind one proxy with a 1 s idle timeout, and a client of the proxy.
/// The lab runs on tonic's server (`RunningLab`), or on steadfast's production
/// server for the drain scenarios (`DrainingLab`).
struct Rig<L = RunningLab> {
    lab: L,
    proxy: Proxy,
    client: LabClient<Channel>,
}

#[derive(Clone, Copy)]
enum Kind {
    Haproxy,
    Caddy,
    Nginx,
}

impl Kind {
    fn tool(self) -> &'static str {
        match self {
            Kind::Haproxy => "haproxy",
            Kind::Caddy => "caddy",
            Kind::Nginx => "nginx",
        }
    }
}

/// Starts the lab and `kind` in front of it; `None` (skipped) when the proxy is
/// not installed.
async fn behind(kind: Kind) -> Option<Rig> {
    let bin = tools::require(kind.tool())?;
    let lab = RunningLab::start("behind-a-proxy")
        .await
        .expect("lab server");
    let (proxy, client) = in_front_of(kind, bin, lab.addr()).await;
    Some(Rig { lab, proxy, client })
}

/// Starts `kind` (`bin`) in front of the lab at `upstream`, and a client of it
/// that has made one quick call through it.
async fn in_front_of(
    kind: Kind,
    bin: std::path::PathBuf,
    upstream: SocketAddr,
) -> (Proxy, LabClient<Channel>) {
    let tool = kind.tool();
    let proxy = tokio::task::spawn_blocking(move || match kind {
        Kind::Haproxy => Haproxy::start(&bin, upstream, IDLE).map(Proxy::Haproxy),
        Kind::Caddy => Caddy::start(&bin, upstream, IDLE).map(Proxy::Caddy),
        Kind::Nginx => Nginx::start(&bin, upstream, IDLE).map(Proxy::Nginx),
    })
    .await
    .expect("join")
    .unwrap_or_else(|err| panic!("{tool} starts: {err}"));
    let mut client = LabClient::connect(proxy.url()).await.expect("connect");
    let me = client
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap_or_else(|status| panic!("a quick call passes {tool}: {status}\n{}", proxy.log()))
        .into_inner();
    assert_eq!(me.name, "behind-a-proxy");
    (proxy, client)
}

/// A 3 s `Sleep` with heartbeats every 500 ms passes, with its progress.
async fn a_3s_heartbeat_call_passes(kind: Kind) {
    let Some(mut rig) = behind(kind).await else {
        return;
    };
    let (options, mut progress) = CallOptions::new().progress_watch();
    let mut request = Request::new(SleepRequest { millis: 3000 });
    options.attach(&mut request);
    let reply = tokio::time::timeout(DEADLINE, rig.client.sleep(request))
        .await
        .expect("the call ends")
        .unwrap_or_else(|status| {
            panic!(
                "heartbeats keep the call alive: {status}\n{}",
                rig.proxy.log()
            )
        })
        .into_inner();
    assert!(reply.slept_ms >= 3000, "slept {} ms", reply.slept_ms);
    let last = progress
        .borrow_and_update()
        .clone()
        .expect("heartbeats were observed");
    assert!(
        last.seq >= 4,
        "about 6 heartbeats in 3 s, last seq {}",
        last.seq
    );
    assert!(last.progress.is_some_and(|p| p > 0.5), "{last:?}");
    assert!(!rig.proxy.logged_a_timeout(), "{}", rig.proxy.log());
}

/// A plain 3 s `SleepPlain` is cut after about 1 s: the proxy answers 504,
/// which the client sees as `UNAVAILABLE` with the HTTP status in the message,
/// and what to change: heartbeats, or the proxy's timeout.
async fn a_plain_3s_call_is_cut(kind: Kind) {
    let Some(mut rig) = behind(kind).await else {
        return;
    };
    let started = Instant::now();
    let status = tokio::time::timeout(
        DEADLINE,
        rig.client.sleep_plain(SleepRequest { millis: 3000 }),
    )
    .await
    .expect("the call ends")
    .expect_err("a call silent for 3 s cannot pass a 1 s idle timeout");
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "cut at the idle timeout, not at the end of the sleep: {took:?}, {status}"
    );
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(
        status.message().contains("HTTP 504 Gateway Timeout"),
        "{status}"
    );
    let setting = match kind {
        Kind::Haproxy => "HAProxy `timeout server`",
        Kind::Caddy => "Caddy's `read_timeout`",
        Kind::Nginx => "nginx `grpc_read_timeout`",
    };
    for hint in [
        "silent for longer than the proxy's read timeout",
        "heartbeats",
        setting,
    ] {
        assert!(status.message().contains(hint), "{hint}: {status}");
    }
    // Not tonic's reading of the proxy's error page as gRPC.
    assert!(!status.message().contains("compression flag"), "{status}");
    wait::until("the proxy to log its timeout", DEADLINE, || async {
        rig.proxy.logged_a_timeout()
    })
    .await;
    // The handler ran: the proxy passed the call, then gave up on it.
    assert_eq!(
        rig.lab.stats().started(),
        1,
        "SleepPlain reached the server"
    );
}

/// A 64 MiB upload (`Digest`) passes and the server read every byte.
async fn a_64_mib_upload_passes(kind: Kind) {
    let Some(mut rig) = behind(kind).await else {
        return;
    };
    let source = BlobSource::from_reader(content::reader(BLOB, 64));
    let reply = tokio::time::timeout(
        DEADLINE,
        rig.client.digest(DigestRequest { extra_millis: 0 }, source),
    )
    .await
    .expect("the upload ends")
    .unwrap_or_else(|status| panic!("the upload passes: {status}\n{}", rig.proxy.log()))
    .into_inner();
    assert_eq!(reply.size, BLOB);
    assert_eq!(reply.sha256_hex, content::sha256_hex(BLOB, 64));
    assert!(!rig.proxy.logged_a_timeout(), "{}", rig.proxy.log());
}

/// A 64 MiB download (`Fetch`) passes, every byte as generated.
async fn a_64_mib_download_passes(kind: Kind) {
    let Some(mut rig) = behind(kind).await else {
        return;
    };
    let (size, sha256_hex) = tokio::time::timeout(DEADLINE, async {
        let (reply, mut blob) = rig
            .client
            .fetch(FetchRequest {
                size: BLOB,
                seed: 46,
            })
            .await?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0; 256 * 1024];
        let mut read = 0;
        loop {
            let n = blob
                .read(&mut buffer)
                .await
                .map_err(|error| steadfast::blob::status(&error))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            read += n as u64;
        }
        assert_eq!(
            reply.into_inner().size,
            BLOB,
            "the size the server promised"
        );
        Ok::<_, tonic::Status>((read, hex(&hasher.finalize())))
    })
    .await
    .expect("the download ends")
    .unwrap_or_else(|status| panic!("the download passes: {status}\n{}", rig.proxy.log()));
    assert_eq!(size, BLOB);
    assert_eq!(sha256_hex, content::sha256_hex(BLOB, 46));
    assert!(!rig.proxy.logged_a_timeout(), "{}", rig.proxy.log());
}

/// A 2 s `SleepPlain` beside a 3 s `Sleep` with heartbeats, on one client
/// connection: whether the proxy lets the silent call through tells whether
/// its idle timeout is per call or per upstream connection.
/// `None` (skipped) when the proxy is not installed.
async fn a_silent_call_beside_a_busy_one(kind: Kind) -> Option<Result<(), tonic::Status>> {
    let mut rig = behind(kind).await?;
    let mut busy = rig.client.clone();
    let (options, mut progress) = CallOptions::new().progress_watch();
    let mut request = Request::new(SleepRequest { millis: 3000 });
    options.attach(&mut request);
    let busy = tokio::spawn(async move { busy.sleep(request).await });
    tokio::time::timeout(DEADLINE, progress.changed())
        .await
        .expect("a first heartbeat in time")
        .expect("the heartbeat call is running");
    let silent = tokio::time::timeout(
        DEADLINE,
        rig.client.sleep_plain(SleepRequest { millis: 2000 }),
    )
    .await
    .expect("the silent call ends");
    tokio::time::timeout(DEADLINE, busy)
        .await
        .expect("the heartbeat call ends")
        .expect("join")
        .unwrap_or_else(|status| {
            panic!("the heartbeat call passes: {status}\n{}", rig.proxy.log())
        });
    Some(silent.map(drop))
}

/// The lab on steadfast's production server, which the test drains.
struct DrainingLab {
    server: Production,
    stats: Arc<Stats>,
}

/// Starts the lab on steadfast's production server with `drain_deadline`, and
/// `kind` in front of it; `None` (skipped) when the proxy is not installed.
async fn behind_a_draining_server(
    kind: Kind,
    drain_deadline: Duration,
) -> Option<Rig<DrainingLab>> {
    let bin = tools::require(kind.tool())?;
    let service = LabService::new("behind-a-proxy");
    let stats = service.stats();
    let server = Production::start(
        Server::builder()
            .add_service(LabServer::new(service))
            .drain_deadline(drain_deadline),
    )
    .await;
    let (proxy, client) = in_front_of(kind, bin, server.addr()).await;
    Some(Rig {
        lab: DrainingLab { server, stats },
        proxy,
        client,
    })
}

/// Waits for a heartbeat of the call that reports at least `fraction` done.
async fn heartbeat_past(progress: &mut watch::Receiver<Option<Heartbeat>>, fraction: f32) {
    tokio::time::timeout(
        DEADLINE,
        progress.wait_for(|last| {
            last.as_ref()
                .and_then(|heartbeat| heartbeat.progress)
                .is_some_and(|done| done >= fraction)
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("a heartbeat past {fraction} in time"))
    .expect("the call is running");
}

/// Starts a `Sleep` of `millis` with heartbeats through the proxy, and drains
/// the server once the call is 0.5 s in (by its heartbeats); the call, and the
/// watch of its heartbeats.
async fn drain_during_a_call(
    rig: &Rig<DrainingLab>,
    millis: u64,
) -> (
    JoinHandle<Result<tonic::Response<SleepReply>, Status>>,
    watch::Receiver<Option<Heartbeat>>,
) {
    let (options, mut progress) = CallOptions::new().progress_watch();
    let mut request = Request::new(SleepRequest { millis });
    options.attach(&mut request);
    let mut client = rig.client.clone();
    let call = tokio::spawn(async move { client.sleep(request).await });
    heartbeat_past(&mut progress, 500.0 / millis as f32).await;
    rig.lab.server.shutdown().trigger();
    (call, progress)
}

/// A 3 s `Sleep` with heartbeats through the proxy, and the server told to
/// drain 0.5 s into it, with a drain deadline of 20 s: the call completes with
/// its heartbeats, the proxy passing them while the server drains, and the
/// server's `serve` returns right after it.
async fn a_call_in_flight_completes_while_the_server_drains(kind: Kind) {
    let Some(mut rig) = behind_a_draining_server(kind, Duration::from_secs(20)).await else {
        return;
    };
    let (call, mut progress) = drain_during_a_call(&rig, 3000).await;
    // Past the trigger, heartbeats still pass, and the server still serves.
    heartbeat_past(&mut progress, 0.5).await;
    assert!(
        !rig.lab.server.has_returned(),
        "the server returned with a call in flight"
    );
    let reply = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("the call ends")
        .expect("join")
        .unwrap_or_else(|status| {
            panic!(
                "a call in flight completes during the drain: {status}\n{}",
                rig.proxy.log()
            )
        })
        .into_inner();
    assert!(reply.slept_ms >= 3000, "slept {} ms", reply.slept_ms);
    let last = progress.borrow().clone().expect("heartbeats were observed");
    assert!(
        last.seq >= 4,
        "about 6 heartbeats in 3 s, last seq {}",
        last.seq
    );
    assert_eq!(rig.lab.stats.finished(), 1, "the handler ran to its end");
    rig.lab.server.returned(RETURNS_WITHIN).await;
    assert!(!rig.proxy.logged_a_timeout(), "{}", rig.proxy.log());
}

/// A 60 s `Sleep` with heartbeats through the proxy, and the server told to
/// drain 0.5 s into it, with a drain deadline of 1.5 s: the call ends at the
/// deadline, and the server's `serve` returns right after it. What the client
/// sees, for the proxy's test to check.
async fn a_call_past_the_drain_deadline(kind: Kind) -> Option<Status> {
    let drain_deadline = Duration::from_millis(1500);
    let mut rig = behind_a_draining_server(kind, drain_deadline).await?;
    let (call, _progress) = drain_during_a_call(&rig, 60_000).await;
    let triggered = Instant::now();
    let status = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("the call ends")
        .expect("join")
        .expect_err("a call past the drain deadline fails");
    let took = triggered.elapsed();
    assert!(
        took >= drain_deadline && took < drain_deadline + Duration::from_secs(5),
        "ended at the drain deadline, not {took:?} after the trigger: {status}\n{}",
        rig.proxy.log()
    );
    rig.lab.server.returned(RETURNS_WITHIN).await;
    Some(status)
}

/// The client sees the server's own status through the proxy: `UNAVAILABLE`
/// "the server is shutting down", from the call's trailers.
fn assert_shutting_down(status: &Status) {
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), SHUTTING_DOWN, "{status:?}");
}

#[tokio::test]
async fn haproxy_with_a_1s_timeout_lets_a_3s_heartbeat_call_through() {
    a_3s_heartbeat_call_passes(Kind::Haproxy).await;
}

#[tokio::test]
async fn haproxy_with_a_1s_timeout_cuts_a_plain_3s_call_with_504() {
    a_plain_3s_call_is_cut(Kind::Haproxy).await;
}

#[tokio::test]
async fn haproxy_with_a_1s_timeout_passes_a_64_mib_upload() {
    a_64_mib_upload_passes(Kind::Haproxy).await;
}

#[tokio::test]
async fn haproxy_with_a_1s_timeout_passes_a_64_mib_download() {
    a_64_mib_download_passes(Kind::Haproxy).await;
}

#[tokio::test]
async fn haproxy_passes_a_call_in_flight_to_its_end_while_the_server_drains() {
    a_call_in_flight_completes_while_the_server_drains(Kind::Haproxy).await;
}

#[tokio::test]
async fn haproxy_passes_on_unavailable_shutting_down_for_a_call_past_the_drain_deadline() {
    if let Some(status) = a_call_past_the_drain_deadline(Kind::Haproxy).await {
        assert_shutting_down(&status);
    }
}

#[tokio::test]
async fn haproxy_times_out_each_call_even_beside_a_busy_one() {
    let Some(result) = a_silent_call_beside_a_busy_one(Kind::Haproxy).await else {
        return;
    };
    let status = result.expect_err("HAProxy's `timeout server` is per call");
    assert_eq!(status.code(), Code::Unavailable, "{status}");
}

/// The lab behind HAProxy running the shipped config with the test's addresses
/// and a 60 s timeout, as `edit` changes it, and a client of HAProxy.
async fn behind_haproxy_edited(
    edit: impl Fn(String) -> String + Send + 'static,
) -> Option<(RunningLab, Haproxy, LabClient<Channel>)> {
    let bin = tools::require("haproxy")?;
    let lab = RunningLab::start("behind-haproxy")
        .await
        .expect("lab server");
    let upstream = lab.addr();
    let haproxy = tokio::task::spawn_blocking(move || {
        Haproxy::start_with(&bin, |listen| {
            edit(haproxy::deploy_config(
                listen,
                upstream,
                Duration::from_secs(60),
            ))
        })
    })
    .await
    .expect("join")
    .expect("haproxy starts");
    let client = LabClient::connect(haproxy.url()).await.expect("connect");
    Some((lab, haproxy, client))
}

#[tokio::test]
async fn haproxy_timeout_tunnel_does_not_apply_to_a_grpc_call() {
    let Some((_lab, haproxy, mut client)) = behind_haproxy_edited(|config| {
        assert_eq!(config.matches("\n    mode http\n").count(), 1, "{config}");
        config.replace(
            "\n    mode http\n",
            "\n    mode http\n    timeout tunnel 1s\n",
        )
    })
    .await
    else {
        return;
    };
    let reply = tokio::time::timeout(DEADLINE, client.sleep_plain(SleepRequest { millis: 3000 }))
        .await
        .expect("the call ends")
        .unwrap_or_else(|status| {
            panic!(
                "only `timeout server` (60 s here) times out a call: {status}\n{}",
                haproxy.log()
            )
        })
        .into_inner();
    assert!(reply.slept_ms >= 3000, "slept {} ms", reply.slept_ms);
}

#[tokio::test]
async fn haproxy_without_proto_h2_on_the_server_line_fails_every_call_with_502() {
    let Some((_lab, haproxy, mut client)) = behind_haproxy_edited(|config| {
        let edited: String = config
            .lines()
            .map(|line| {
                if line.trim_start().starts_with("server ") {
                    format!("{}\n", line.replace(" proto h2", ""))
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        assert_ne!(edited, config, "the server line had `proto h2`");
        edited
    })
    .await
    else {
        return;
    };
    let status = tokio::time::timeout(DEADLINE, client.who_am_i(WhoAmIRequest {}))
        .await
        .expect("the call ends")
        .expect_err("HAProxy speaks HTTP/1.1 to the gRPC server");
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(
        status.message().contains("HTTP 502 Bad Gateway"),
        "{status}\n{}",
        haproxy.log()
    );
}

#[tokio::test]
async fn caddy_with_a_1s_read_timeout_lets_a_3s_heartbeat_call_through() {
    a_3s_heartbeat_call_passes(Kind::Caddy).await;
}

#[tokio::test]
async fn caddy_with_a_1s_read_timeout_cuts_a_plain_3s_call_with_504() {
    a_plain_3s_call_is_cut(Kind::Caddy).await;
}

#[tokio::test]
async fn caddy_with_a_1s_read_timeout_passes_a_64_mib_upload() {
    a_64_mib_upload_passes(Kind::Caddy).await;
}

#[tokio::test]
async fn caddy_with_a_1s_read_timeout_passes_a_64_mib_download() {
    a_64_mib_download_passes(Kind::Caddy).await;
}

#[tokio::test]
async fn caddy_passes_a_call_in_flight_to_its_end_while_the_server_drains() {
    a_call_in_flight_completes_while_the_server_drains(Kind::Caddy).await;
}

#[tokio::test]
async fn caddy_passes_on_unavailable_shutting_down_for_a_call_past_the_drain_deadline() {
    if let Some(status) = a_call_past_the_drain_deadline(Kind::Caddy).await {
        assert_shutting_down(&status);
    }
}

#[tokio::test]
async fn caddy_times_out_reads_of_the_upstream_connection_so_a_silent_call_beside_a_busy_one_passes()
 {
    let Some(result) = a_silent_call_beside_a_busy_one(Kind::Caddy).await else {
        return;
    };
    result.expect("the heartbeats keep the shared upstream connection busy");
}

#[tokio::test]
async fn nginx_with_a_1s_read_timeout_lets_a_3s_heartbeat_call_through() {
    a_3s_heartbeat_call_passes(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_with_a_1s_read_timeout_cuts_a_plain_3s_call_with_504() {
    a_plain_3s_call_is_cut(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_with_a_1s_read_timeout_passes_a_64_mib_upload() {
    a_64_mib_upload_passes(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_with_a_1s_read_timeout_passes_a_64_mib_download() {
    a_64_mib_download_passes(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_passes_a_call_in_flight_to_its_end_while_the_server_drains() {
    a_call_in_flight_completes_while_the_server_drains(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_passes_on_unavailable_shutting_down_for_a_call_past_the_drain_deadline() {
    if let Some(status) = a_call_past_the_drain_deadline(Kind::Nginx).await {
        assert_shutting_down(&status);
    }
}
