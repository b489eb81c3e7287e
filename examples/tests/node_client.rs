//! Node calling steadfast servers through the emitted wire protos:
//! `examples/node/steadfast_client.js` (@grpc/grpc-js) against a real
//! lab-server and model-server, as its README tells a user to run it.
//!
//! Needs `node` and `npm` (the missing-tool policy of `steadfast_tests::tools`);
//! the script's packages are installed with `npm ci` from its lock file into
//! `examples/node/node_modules` (git-ignored) when they are missing or older
//! than the lock file.

mod common;

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use steadfast_tests::{
    process::{ChildGuard, spawn_server},
    tools,
};

const LAB_SERVER: &str = env!("CARGO_BIN_EXE_lab-server");
const MODEL_SERVER: &str = env!("CARGO_BIN_EXE_model-server");

/// How long a server may take to announce its address.
const SERVER_START: Duration = Duration::from_secs(10);

/// Starts `PROGRAM --addr 127.0.0.1:0 --name NAME` (`what` is `lab-server` or
/// `model-server`) and reads the address it printed.
fn server(program: &str, what: &str, name: &str) -> (ChildGuard, SocketAddr) {
    spawn_server(
        Command::new(program)
            .args(["--addr", "127.0.0.1:0", "--name", name])
            .stderr(Stdio::null()),
        &format!("{what} {name}"),
        SERVER_START,
    )
    .unwrap_or_else(|e| panic!("{what} starts: {e}"))
}

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Serializes `npm ci` between the tests of this binary: it empties
/// node_modules before filling it.
static NPM: Mutex<()> = Mutex::new(());

/// Runs `npm ci` in examples/node unless its node_modules holds what the lock
/// file says (npm's record of the install, `.package-lock.json`, is newer).
fn npm_ci(npm: &Path) {
    let _one_at_a_time = NPM.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = node_dir();
    let modified = |path: PathBuf| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    let installed = modified(dir.join("node_modules/.package-lock.json"));
    let locked = modified(dir.join("package-lock.json")).expect("examples/node/package-lock.json");
    if installed.is_some_and(|installed| installed >= locked) {
        return;
    }
    // --ignore-scripts: none of the packages needs one (protobufjs's only
    // prints a version notice); @node-rs/xxhash comes as a prebuilt binary.
    let out = Command::new(npm)
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("npm runs");
    assert!(
        out.status.success(),
        "npm ci in {} failed:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `node examples/node/steadfast_client.js --protos WIRE`, its packages
/// installed, with the wire protos it reads (keep them while it runs); `None`
/// when node or npm is missing (and not in CI).
fn node_client() -> Option<(tempfile::TempDir, Command)> {
    let node = tools::require("node")?;
    let npm = tools::require("npm")?;
    npm_ci(&npm);
    let wire = common::wire_protos(&["lab/v1/lab.proto", "steadfast/v1/dispatch.proto"]);
    let mut command = Command::new(node);
    command
        .arg(node_dir().join("steadfast_client.js"))
        .arg("--protos")
        .arg(wire.path())
        .stdin(Stdio::null());
    Some((wire, command))
}

fn run(command: &mut Command) -> (bool, String, String) {
    let out = command.output().expect("node runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that `lines` are `LABEL: heartbeat seq=1 ...`, `seq=2`, ... and
/// that there are at least `at_least` of them.
fn assert_heartbeats(lines: &[&str], label: &str, at_least: usize, stdout: &str) {
    let beats: Vec<&&str> = lines
        .iter()
        .filter(|line| line.starts_with(&format!("{label}: heartbeat ")))
        .collect();
    assert!(
        beats.len() >= at_least,
        "{label}: {at_least} heartbeats expected:\n{stdout}"
    );
    for (i, line) in beats.iter().enumerate() {
        assert!(
            line.starts_with(&format!("{label}: heartbeat seq={} elapsed_ms=", i + 1))
                && line.contains(" progress="),
            "{stdout}"
        );
    }
}

#[test]
fn a_node_grpc_js_client_sees_heartbeats_uploads_a_raw_blob_with_its_xxh3_and_dispatches_by_name() {
    let Some((_wire, mut command)) = node_client() else {
        return;
    };
    let (_lab, lab) = server(LAB_SERVER, "lab-server", "lab-node");
    let (_model, model) = server(MODEL_SERVER, "model-server", "model-node");
    let (ok, stdout, stderr) = run(command
        .args(["--lab-addr", &lab.to_string()])
        .args(["--model-addr", &model.to_string()]));
    assert!(ok, "the node client failed:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();

    // Sleep 2500 ms, heartbeats every 500 ms with the handler's progress.
    assert_heartbeats(&lines, "sleep", 3, &stdout);
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("sleep: reply slept_ms=25")),
        "{stdout}"
    );
    // A CODEC_NONE upload of 2 MiB and more (many chunks) with its XXH3-64,
    // then 1.5 s of work: a heartbeat (every second), and the server's
    // sha256 is the client's.
    assert_heartbeats(&lines, "digest", 1, &stdout);
    assert!(lines.contains(&"digest: sha256 matches"), "{stdout}");
    // CODEC_ZSTD where this Node has zstd in zlib; a visible skip where not.
    assert!(
        lines.contains(&"digest-zstd: sha256 matches")
            || lines
                .iter()
                .any(|line| line.starts_with("digest-zstd: skipped: Node v")),
        "{stdout}"
    );
    // Dispatch by x-func-name, JSON params and result; an unknown name lists
    // the known ones.
    assert!(
        lines.contains(&r#"dispatch hello: "hello, Ada from model-node""#),
        "{stdout}"
    );
    assert!(
        lines.contains(
            &"dispatch no-such: status UNIMPLEMENTED no function named `no-such`; \
              this server has echo_blob, hello, predict"
        ),
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"all checks passed"), "{stdout}");
}

#[test]
fn a_node_client_past_its_deadline_gets_deadline_exceeded_and_exits_non_zero() {
    let Some((_wire, mut command)) = node_client() else {
        return;
    };
    let (_lab, lab) = server(LAB_SERVER, "lab-server", "lab-node-deadline");
    let (ok, stdout, stderr) = run(command.args([
        "--lab-addr",
        &lab.to_string(),
        "--only",
        "sleep",
        "--sleep-deadline-ms",
        "1200",
    ]));
    assert!(!ok, "the call outlived its deadline:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("\nFAIL sleep: status DEADLINE_EXCEEDED "),
        "{stdout}\n{stderr}"
    );
    assert_eq!(stdout.lines().last(), Some("1 check(s) failed"), "{stdout}");
}

#[test]
fn a_node_client_cancels_a_call_whose_server_stops_mid_call_with_unavailable_within_its_liveness_window()
 {
    let Some((_wire, mut command)) = node_client() else {
        return;
    };
    let (lab_server, lab) = server(LAB_SERVER, "lab-server", "lab-node-hung");
    let mut client = ChildGuard::spawn(
        command
            .args(["--lab-addr", &lab.to_string(), "--only", "sleep"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .expect("node starts");
    let mut stdout = BufReader::new(client.0.stdout.take().expect("piped"));
    let mut seen = String::new();
    // The server is alive: its first heartbeat came. Then it hangs (SIGSTOP:
    // its kernel keeps the connection open, nothing is sent on it).
    while !seen.contains("sleep: heartbeat seq=1 ") {
        let read = stdout
            .read_line(&mut seen)
            .expect("read the client's output");
        assert!(read > 0, "the client ended before a heartbeat:\n{seen}");
    }
    let stop = Command::new("kill")
        .args(["-STOP", &lab_server.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stop.success(), "kill -STOP {}", lab_server.id());
    let stopped = Instant::now();
    std::io::Read::read_to_string(&mut stdout, &mut seen).expect("read the client's output");
    let status = client.0.wait().expect("the client exits");
    // The window is 1.5 s (3 x 500 ms); the call's deadline is 20 s. A
    // generous bound that still tells the two apart.
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "the client took {:?} to give up:\n{seen}",
        stopped.elapsed()
    );
    assert!(!status.success(), "{seen}");
    assert!(
        seen.contains(
            "\nFAIL sleep: status UNAVAILABLE no frame within 1500 ms \
             (3 x the 500 ms heartbeat interval)\n"
        ),
        "{seen}"
    );
    // The guards kill the stopped server (SIGKILL needs no SIGCONT).
}
