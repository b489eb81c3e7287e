//! `lab-server` draining on a real `SIGTERM`, as a process, with real
//! clients (issue 24): a heartbeat call that ends inside the drain gets OK, one
//! that outlasts it `UNAVAILABLE` "the server is shutting down" at the
//! deadline; connects are refused once the lame-duck window is over and
//! served during it; a grpcio health watcher sees SERVING, then NOT_SERVING,
//! then its call ends; the process exits 0 within a bound.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use steadfast::server::SHUTTING_DOWN;
use steadfast::server::health::pb::health_check_response::ServingStatus;
use steadfast::server::health::pb::{HealthCheckRequest, health_client::HealthClient};
use steadfast_examples::proto::lab::v1::{SleepRequest, WhoAmIRequest, lab_client::LabClient};
use steadfast_tests::process::{ChildGuard, spawn_server};
use steadfast_tests::{tools, wait};
use tonic::Code;

const LAB_SERVER: &str = env!("CARGO_BIN_EXE_lab-server");

/// How long the server may take to announce its address, and a client to
/// connect or be answered.
const START: Duration = Duration::from_secs(10);

/// Slack on top of a promised time, for a loaded CI machine.
const SLACK: Duration = Duration::from_secs(2);

/// Starts `lab-server --addr 127.0.0.1:0 --name NAME ARGS...`; its stderr goes
/// to the returned file, read when a test fails or at its end.
fn lab_server(name: &str, args: &[&str]) -> (ChildGuard, SocketAddr, tempfile::NamedTempFile) {
    let stderr = tempfile::NamedTempFile::new().expect("a file for the server's stderr");
    let (server, addr) = spawn_server(
        Command::new(LAB_SERVER)
            .args(["--addr", "127.0.0.1:0", "--name", name])
            .args(args)
            .stderr(stderr.reopen().expect("reopen the stderr file")),
        &format!("lab-server {name}"),
        START,
    )
    .expect("lab-server starts");
    (server, addr, stderr)
}

fn read(file: &tempfile::NamedTempFile) -> String {
    std::fs::read_to_string(file.path()).unwrap_or_default()
}

/// Sends `SIGTERM` to `server`.
fn sigterm(server: &ChildGuard) {
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {}: {status}", server.id());
}

/// Waits, polling, until `server` exits, at most `within`; its exit status.
async fn exited(server: &mut ChildGuard, within: Duration) -> Option<ExitStatus> {
    let give_up = tokio::time::Instant::now() + within;
    loop {
        if let Some(status) = server.0.try_wait().expect("the server's status") {
            return Some(status);
        }
        if tokio::time::Instant::now() >= give_up {
            return None;
        }
        tokio::time::sleep(wait::POLL_INTERVAL).await;
    }
}

/// Whether a TCP connect to `addr` is refused (not accepted, not left hanging).
async fn refused(addr: SocketAddr) -> bool {
    match tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await {
        Ok(Err(error)) => error.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

async fn lab_client(addr: SocketAddr) -> LabClient<tonic::transport::Channel> {
    tokio::time::timeout(START, LabClient::connect(format!("http://{addr}")))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// A `Sleep` call of `millis`, counting its heartbeats in `beats`.
fn sleep_call(
    client: &LabClient<tonic::transport::Channel>,
    millis: u64,
    beats: &Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<
    Result<tonic::Response<steadfast_examples::proto::lab::v1::SleepReply>, tonic::Status>,
> {
    let mut client = client.clone();
    let beats = Arc::clone(beats);
    let mut request = tonic::Request::new(SleepRequest { millis });
    steadfast::CallOptions::new()
        .on_progress(move |_| {
            beats.fetch_add(1, Ordering::SeqCst);
        })
        .attach(&mut request);
    tokio::spawn(async move { client.sleep(request).await })
}

#[tokio::test]
async fn sigterm_lets_a_short_heartbeat_call_finish_cuts_a_long_one_at_the_deadline_refuses_connects_and_exits_0()
 {
    let drain = Duration::from_secs(2);
    let (mut server, addr, stderr) = lab_server("drain", &["--drain-secs", "2"]);
    let client = lab_client(addr).await;
    let (short_beats, long_beats) = (Arc::default(), Arc::default());
    let short = sleep_call(&client, 1500, &short_beats);
    let long = sleep_call(&client, 10_000, &long_beats);
    wait::until("both calls beat", START, || {
        let beating =
            short_beats.load(Ordering::SeqCst) > 0 && long_beats.load(Ordering::SeqCst) > 0;
        async move { beating }
    })
    .await;

    sigterm(&server);
    let signalled = tokio::time::Instant::now();
    assert!(
        !short.is_finished(),
        "the short call ended before the SIGTERM"
    );

    // No lame-duck window: the listener closes at once.
    wait::until("a connect is refused", SLACK, || refused(addr)).await;

    let reply = tokio::time::timeout(START, short)
        .await
        .expect("the short call ended")
        .expect("its task");
    let reply = reply.expect("the call that ends inside the drain gets OK");
    assert!(reply.get_ref().slept_ms >= 1500, "{reply:?}");
    let beats_before = long_beats.load(Ordering::SeqCst);

    let status = tokio::time::timeout(drain + START, long)
        .await
        .expect("the long call ended")
        .expect("its task")
        .expect_err("the call that outlasts the drain fails");
    let cut = signalled.elapsed();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), SHUTTING_DOWN, "{status:?}");
    assert!(
        cut >= drain - Duration::from_millis(100) && cut < drain + SLACK,
        "cut {cut:?} after the SIGTERM, the drain deadline is {drain:?}"
    );
    assert!(
        long_beats.load(Ordering::SeqCst) > beats_before,
        "the long call kept beating through the drain"
    );

    let status = exited(&mut server, SLACK).await.unwrap_or_else(|| {
        panic!(
            "lab-server still running {:?} after SIGTERM",
            signalled.elapsed()
        )
    });
    assert!(
        status.success(),
        "lab-server exited with {status}:\n{}",
        read(&stderr)
    );
    assert!(
        signalled.elapsed() < drain + SLACK,
        "exited {:?} after SIGTERM",
        signalled.elapsed()
    );
    assert!(
        read(&stderr).contains("lab-server stopped"),
        "a clean stop:\n{}",
        read(&stderr)
    );
}

/// `Check(name)` on a connection of its own: in the lame-duck window, a new
/// connection's first call is served (GOAWAY follows it).
async fn check(addr: SocketAddr, name: &str) -> ServingStatus {
    let endpoint =
        tonic::transport::Channel::from_shared(format!("http://{addr}")).expect("a valid uri");
    let channel = tokio::time::timeout(START, endpoint.connect())
        .await
        .expect("connect in time")
        .expect("connect");
    let request = HealthCheckRequest {
        service: name.to_owned(),
    };
    tokio::time::timeout(START, HealthClient::new(channel).check(request))
        .await
        .expect("Check in time")
        .unwrap_or_else(|status| panic!("Check({name:?}): {status:?}"))
        .get_ref()
        .status()
}

#[tokio::test]
async fn during_the_lame_duck_window_a_new_connection_is_served_and_health_says_alive_not_ready() {
    let window = Duration::from_secs(2);
    let (mut server, addr, stderr) = lab_server(
        "lame-duck",
        &["--lame-duck-secs", "2", "--drain-secs", "10"],
    );
    for name in ["", "liveness", "readiness", "lab.v1.Lab"] {
        assert_eq!(check(addr, name).await, ServingStatus::Serving, "{name:?}");
    }

    sigterm(&server);
    let signalled = tokio::time::Instant::now();
    // A client that connects in the window (a kube-proxy that has not heard
    // yet) is served; health tells probes the process lives but takes no work.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let identity = lab_client(addr)
        .await
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("WhoAmI on a new connection in the lame-duck window");
    assert_eq!(identity.get_ref().name, "lame-duck");
    assert_eq!(check(addr, "liveness").await, ServingStatus::Serving);
    for name in ["", "readiness", "lab.v1.Lab"] {
        assert_eq!(
            check(addr, name).await,
            ServingStatus::NotServing,
            "{name:?}"
        );
    }
    assert!(
        signalled.elapsed() < window,
        "the checks took the whole window: {:?}",
        signalled.elapsed()
    );

    // After the window: refused.
    wait::until("a connect is refused", window + SLACK, || refused(addr)).await;
    assert!(
        signalled.elapsed() >= window - Duration::from_millis(100),
        "refused {:?} after SIGTERM, before the window's end",
        signalled.elapsed()
    );
    // No call left: the process exits at once, long before the drain deadline.
    let status = exited(&mut server, SLACK).await.unwrap_or_else(|| {
        panic!(
            "lab-server still running {:?} after SIGTERM",
            signalled.elapsed()
        )
    });
    assert!(
        status.success(),
        "lab-server exited with {status}:\n{}",
        read(&stderr)
    );
}

#[test]
fn a_grpcio_health_watcher_sees_serving_then_not_serving_at_sigterm_then_its_call_ends() {
    let Some(python) = tools::python_with_grpc() else {
        return;
    };
    // A long drain deadline: the process must not wait for it, the watcher
    // does not hold the drain.
    let (mut server, addr, stderr) = lab_server("watched", &["--drain-secs", "30"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/health_watch.py");
    let mut watcher = ChildGuard::spawn(
        Command::new(python)
            .arg(script)
            .args(["--addr", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("start health_watch.py");
    let mut lines = BufReader::new(watcher.0.stdout.take().expect("piped stdout")).lines();
    let mut expect = |expected: &str, watcher: &mut ChildGuard| match lines.next() {
        Some(Ok(line)) if line == expected => {}
        other => {
            let mut script_stderr = String::new();
            if let Some(mut pipe) = watcher.0.stderr.take() {
                let _ = watcher.0.kill();
                let _ = pipe.read_to_string(&mut script_stderr);
            }
            panic!(
                "health_watch.py said {other:?}, not {expected:?}; its stderr:\n{script_stderr}\n\
                 lab-server's stderr:\n{}",
                read(&stderr)
            );
        }
    };

    expect("serving", &mut watcher);
    sigterm(&server);
    let signalled = Instant::now();
    expect("not serving", &mut watcher);
    expect("ended", &mut watcher);
    assert!(
        signalled.elapsed() < SLACK,
        "the watcher heard the drain {:?} after SIGTERM",
        signalled.elapsed()
    );

    let give_up = Instant::now() + START;
    let (script, server_status) = loop {
        let script = watcher.0.try_wait().expect("the script's status");
        let server_status = server.0.try_wait().expect("the server's status");
        if let (Some(script), Some(server_status)) = (script, server_status) {
            break (script, server_status);
        }
        assert!(
            Instant::now() < give_up,
            "still running {START:?} after the watch ended: script {script:?}, lab-server {server_status:?}"
        );
        std::thread::sleep(wait::POLL_INTERVAL);
    };
    assert!(script.success(), "health_watch.py exited with {script}");
    assert!(
        server_status.success(),
        "lab-server exited with {server_status}:\n{}",
        read(&stderr)
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(30) / 2,
        "lab-server waited for its drain deadline: {:?}",
        signalled.elapsed()
    );
}
