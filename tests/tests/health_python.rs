//! gRPC's own Python health client (grpcio-health-checking) against
//! steadfast's health service: `tests/python/health_client.py` checks, lists
//! and watches while this test, told by the script's stdout, registers a name
//! and begins the drain through the synchronous `HealthHandle`.

use std::io::{BufRead, BufReader, Lines, Read};
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use steadfast::server::health::HealthHandle;
use steadfast_tests::process::ChildGuard;
use steadfast_tests::{serve, tools, wait};
use tonic::transport::Server;

/// How long the script may take to exit once it said `ok`.
const EXIT: Duration = Duration::from_secs(10);

/// The script's next line on stdout, which must be `expected`; on anything
/// else, fails with the script's stderr. The script's own deadlines bound the
/// wait: every call it makes has one.
fn expect_line(lines: &mut Lines<BufReader<ChildStdout>>, child: &mut ChildGuard, expected: &str) {
    match lines.next() {
        Some(Ok(line)) if line == expected => {}
        other => {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.0.stderr.take() {
                let _ = child.0.kill();
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("health_client.py said {other:?}, not {expected:?}; its stderr:\n{stderr}");
        }
    }
}

#[test]
fn grpcio_health_checking_sees_not_found_service_unknown_kept_open_and_the_drain() {
    let Some(python) = tools::python_with_grpc() else {
        return;
    };
    // The server runs on the runtime's workers; this thread talks to the
    // script and acts on the handle, which needs no runtime.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let health = HealthHandle::new();
    health.mark_listening();
    let addr = runtime.block_on(serve::spawn(
        Server::builder().add_service(health.service()),
    ));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/health_client.py");
    let mut child = ChildGuard::spawn(
        Command::new(python)
            .arg(script)
            .args(["--addr", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("start health_client.py");
    let mut lines = BufReader::new(child.0.stdout.take().expect("piped stdout")).lines();

    expect_line(&mut lines, &mut child, "watching my.pkg.Late");
    health.register("my.pkg.Late");
    expect_line(&mut lines, &mut child, "watching the server");
    health.drain();
    expect_line(&mut lines, &mut child, "ok");

    let give_up = Instant::now() + EXIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("the script's status") {
            break status;
        }
        assert!(
            Instant::now() < give_up,
            "health_client.py still running {EXIT:?} after ok"
        );
        std::thread::sleep(wait::POLL_INTERVAL);
    };
    assert!(status.success(), "health_client.py exited with {status}");
}
