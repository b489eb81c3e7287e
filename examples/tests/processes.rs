//! The example binaries as a user runs them, and other languages calling a
//! steadfast server through the emitted wire protos (protoc, Python grpcio).

mod common;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sha2::{Digest, Sha256};
use steadfast_examples::{content, lab::hex};
use steadfast_tests::{
    process::{ChildGuard, spawn_server},
    tools,
};

const LAB_SERVER: &str = env!("CARGO_BIN_EXE_lab-server");
const LAB_CLIENT: &str = env!("CARGO_BIN_EXE_lab-client");
const MODEL_SERVER: &str = env!("CARGO_BIN_EXE_model-server");
const MODEL_CLIENT: &str = env!("CARGO_BIN_EXE_model-client");

/// How long a server may take to announce its address.
const SERVER_START: Duration = Duration::from_secs(10);

/// Starts `lab-server --addr 127.0.0.1:0` and reads the address it printed.
fn lab_server(name: &str) -> (ChildGuard, SocketAddr) {
    lab_server_with(name, &[])
}

/// Like [`lab_server`], with more arguments.
fn lab_server_with(name: &str, args: &[&str]) -> (ChildGuard, SocketAddr) {
    spawn_server(
        Command::new(LAB_SERVER)
            .args(["--addr", "127.0.0.1:0", "--name", name])
            .args(args)
            .stderr(Stdio::null()),
        &format!("lab-server {name}"),
        SERVER_START,
    )
    .expect("lab-server starts")
}

/// Starts `model-server --addr 127.0.0.1:0 --name NAME` and reads the address it
/// printed.
fn model_server(name: &str) -> (ChildGuard, SocketAddr) {
    spawn_server(
        Command::new(MODEL_SERVER)
            .args(["--addr", "127.0.0.1:0", "--name", name])
            .stderr(Stdio::null()),
        &format!("model-server {name}"),
        SERVER_START,
    )
    .expect("model-server starts")
}

fn run(command: &mut Command) -> (bool, String, String) {
    let out = command.output().expect("command runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lab_client_prints_progress_then_the_reply() {
    let (_server, addr) = lab_server("lab-1");
    let url = format!("http://{addr}");
    let (ok, stdout, stderr) =
        run(Command::new(LAB_CLIENT).args(["--addr", &url, "sleep", "1200"]));
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.len() >= 3,
        "two heartbeats and a reply expected:\n{stdout}"
    );
    let (reply, heartbeats) = lines.split_last().expect("lines");
    assert!(reply.starts_with("reply: slept 12"), "{stdout}");
    for (i, line) in heartbeats.iter().enumerate() {
        assert!(
            line.starts_with(&format!("heartbeat #{} at ", i + 1)),
            "{stdout}"
        );
        assert!(
            line.contains("% (slept "),
            "progress and note shown: {line}"
        );
    }

    let (ok, stdout, _) = run(Command::new(LAB_CLIENT).args(["--addr", &url, "who-am-i"]));
    assert!(ok);
    assert_eq!(stdout.trim(), "lab-1");
}

#[test]
fn lab_client_reports_a_refused_call_and_exits_non_zero() {
    let (_server, addr) = lab_server("lab-2");
    let (ok, _, stderr) = run(Command::new(LAB_CLIENT).args([
        "--addr",
        &format!("http://{addr}"),
        "sleep",
        "99999999",
    ]));
    assert!(!ok);
    assert!(
        stderr.contains("Client specified an invalid argument") && stderr.contains("maximum"),
        "{stderr}"
    );
}

/// Sizes for the blob scenarios: more than a few chunks and blocks, and not a
/// multiple of either, so the last short chunk is exercised.
const BLOB_BYTES: u64 = 5 * 1024 * 1024 + 12_345;

#[test]
fn lab_client_digest_uploads_a_file_and_prints_its_size_and_sha256() {
    let (_server, addr) = lab_server("lab-digest");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("upload.bin");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut content::Content::new(BLOB_BYTES, 11), &mut bytes)
        .expect("generate");
    std::fs::write(&file, &bytes).expect("write the file");
    let expected = hex(&Sha256::digest(&bytes));

    let (ok, stdout, stderr) = run(Command::new(LAB_CLIENT)
        .args(["--addr", &format!("http://{addr}"), "digest"])
        .arg(&file));
    assert!(ok, "{stderr}");
    assert_eq!(stdout, format!("{BLOB_BYTES} {expected}\n"), "{stderr}");
}

#[test]
fn lab_client_digest_of_a_missing_file_names_the_file_and_exits_non_zero() {
    let (_server, addr) = lab_server("lab-digest-missing");
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("missing.bin");
    let (ok, stdout, stderr) = run(Command::new(LAB_CLIENT)
        .args(["--addr", &format!("http://{addr}"), "digest"])
        .arg(&missing));
    assert!(!ok, "{stdout}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(&missing.display().to_string()),
        "{stderr}"
    );
}

#[test]
fn lab_client_fetch_writes_the_generated_bytes_to_a_file() {
    let (_server, addr) = lab_server("lab-fetch");
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("fetched.bin");
    let (ok, stdout, stderr) = run(Command::new(LAB_CLIENT)
        .args([
            "--addr",
            &format!("http://{addr}"),
            "fetch",
            &BLOB_BYTES.to_string(),
            "12",
            "--out",
        ])
        .arg(&out));
    assert!(ok, "{stderr}");
    assert_eq!(stdout, format!("{BLOB_BYTES}\n"));
    let fetched = std::fs::read(&out).expect("the file was written");
    assert_eq!(fetched.len() as u64, BLOB_BYTES);
    assert_eq!(
        hex(&Sha256::digest(&fetched)),
        content::sha256_hex(BLOB_BYTES, 12),
        "the bytes are the content generated from seed 12"
    );
}

#[cfg(unix)]
#[test]
fn lab_client_fetch_into_a_symlink_to_dev_null_writes_through_and_removes_nothing() {
    let (_server, addr) = lab_server("lab-fetch-null");
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("null");
    std::os::unix::fs::symlink("/dev/null", &out).expect("linked");
    let (ok, stdout, stderr) = run(Command::new(LAB_CLIENT)
        .args([
            "--addr",
            &format!("http://{addr}"),
            "fetch",
            &BLOB_BYTES.to_string(),
            "12",
            "--out",
        ])
        .arg(&out));
    assert!(ok, "{stderr}");
    assert_eq!(stdout, format!("{BLOB_BYTES}\n"));
    let link = std::fs::symlink_metadata(&out).expect("the link is still there");
    assert!(link.file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(&out).expect("read"),
        std::path::Path::new("/dev/null")
    );
    assert!(
        std::fs::metadata("/dev/null").is_ok(),
        "/dev/null is still there"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("listed")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["null"], "nothing else written beside it");
}

/// A process's peak resident memory so far (`VmHWM` in `/proc/PID/status`), in
/// bytes.
#[cfg(target_os = "linux")]
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM of the server");
    kib * 1024
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_is_refused_at_the_servers_limit_in_bounded_memory() {
    use steadfast::BlobSource;
    use steadfast_examples::proto::lab::v1::{DigestRequest, WhoAmIRequest, lab_client::LabClient};
    use tokio::io::AsyncReadExt;

    let (server, addr) = lab_server_with("lab-bomb", &["--max-blob-mib", "1024"]);
    let mut client = LabClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    client.who_am_i(WhoAmIRequest {}).await.expect("who am i");
    let before = peak_memory(server.id());

    // 10 GiB of zeros, size not declared: only the bytes it decompresses to can
    // tell the server it is too big.
    let bomb = BlobSource::from_reader(tokio::io::repeat(0).take(10 << 30));
    let progress = bomb.progress();
    let status = client
        .digest(DigestRequest::default(), bomb)
        .await
        .expect_err("over the server's limit of 1 GiB");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("limit of 1073741824"),
        "{status:?}"
    );
    let after = peak_memory(server.id());
    // The server decompressed 1 GiB. What it may hold for that: zstd's window
    // (2 MiB for a level-3 sender) and its context, a block of output
    // (`BLOCK_BYTES`, 256 KiB) on its way to the handler, Digest's read buffer,
    // the chunks tonic buffers under HTTP/2 flow control (a few 128 KiB chunks),
    // and the stacks and malloc arenas of the blocking threads it starts for the
    // first time (a few MiB); about 5 MiB in all, measured. 32 MiB leaves room
    // for that and is 1/32 of what a server that kept the output would hold.
    let bound = 32 << 20;
    assert!(
        after - before < bound,
        "the server's peak memory grew by {} MiB (from {} MiB)",
        (after - before) >> 20,
        before >> 20
    );
    // A bomb: one chunk (128 KiB) of compressed zeros stands for GiBs.
    assert!(
        progress.wire_bytes() < 1 << 20,
        "{} bytes on the wire",
        progress.wire_bytes()
    );

    // The server serves the next upload.
    let reply = client
        .digest(
            DigestRequest::default(),
            BlobSource::from_reader(content::reader(BLOB_BYTES, 13)),
        )
        .await
        .expect("a digest after the bomb")
        .into_inner();
    assert_eq!(reply.size, BLOB_BYTES);
    assert_eq!(reply.sha256_hex, content::sha256_hex(BLOB_BYTES, 13));
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn lab_client_names_the_cause_when_nothing_listens() {
    let url = format!("http://127.0.0.1:{}", dead_port());
    let (ok, _, stderr) = run(Command::new(LAB_CLIENT).args(["--addr", &url, "sleep", "100"]));
    assert!(!ok, "{stderr}");
    assert!(
        stderr.starts_with("error: transport error: ") && stderr.contains("refused"),
        "the cause is shown: {stderr}"
    );
}

#[test]
fn lab_client_names_the_cause_of_a_bad_address() {
    let (ok, _, stderr) = run(Command::new(LAB_CLIENT).args(["--addr", "notaurl", "sleep", "100"]));
    assert!(!ok, "{stderr}");
    assert!(
        stderr.starts_with("error: transport error: ") && stderr.contains("invalid"),
        "the cause is shown: {stderr}"
    );
}

/// Sends SIGTERM to `server` and checks that it exits with success within 10 s.
fn stops_cleanly_on_sigterm(mut server: ChildGuard, what: &str) {
    let status = server
        .terminate(Duration::from_secs(10))
        .unwrap_or_else(|err| panic!("{what}: {err}"));
    assert!(status.success(), "{what}: {status}");
}

#[test]
fn lab_server_stops_cleanly_on_sigterm() {
    stops_cleanly_on_sigterm(lab_server("lab-3").0, "lab-server");
}

#[test]
fn model_server_stops_cleanly_on_sigterm() {
    stops_cleanly_on_sigterm(model_server("model-term").0, "model-server");
}

/// What a caller of a generated client (or of the dispatch client) gets when the
/// server's process dies during the call: a lost connection, `UNAVAILABLE`.
fn assert_connection_lost(status: &tonic::Status) {
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with("connection lost: "),
        "{status:?}"
    );
}

/// A flag set by the call's first heartbeat, and the options that set it.
fn first_heartbeat() -> (steadfast::CallOptions, Arc<AtomicBool>) {
    let beat = Arc::new(AtomicBool::new(false));
    let options = steadfast::CallOptions::new().on_progress({
        let beat = Arc::clone(&beat);
        move |_| beat.store(true, Ordering::SeqCst)
    });
    (options, beat)
}

#[tokio::test]
async fn a_lab_server_killed_during_calls_fails_them_with_unavailable() {
    use steadfast_examples::proto::lab::v1::{SleepRequest, TicksRequest, lab_client::LabClient};

    let (mut server, addr) = lab_server("lab-killed");
    let mut client = LabClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let (options, beat) = first_heartbeat();
    let mut request = tonic::Request::new(SleepRequest { millis: 30_000 });
    options.attach(&mut request);
    let sleep = tokio::spawn({
        let mut client = client.clone();
        async move { client.sleep(request).await }
    });
    let mut ticks = client
        .ticks(TicksRequest {
            count: 1000,
            gap_ms: 100,
        })
        .await
        .expect("the stream opens")
        .into_inner();
    ticks.message().await.expect("a first tick");
    steadfast_tests::wait::until("a first heartbeat", SERVER_START, || async {
        beat.load(Ordering::SeqCst)
    })
    .await;

    server.0.kill().expect("SIGKILL");
    server.0.wait().expect("reaped");

    let status = tokio::time::timeout(SERVER_START, sleep)
        .await
        .expect("the call ends")
        .expect("join")
        .expect_err("the server died");
    assert_connection_lost(&status);
    // Ticks already on their way may come first.
    let status = tokio::time::timeout(SERVER_START, async {
        loop {
            match ticks.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the stream of a dead server must not end like a whole one"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream ends");
    assert_connection_lost(&status);
}

#[tokio::test]
async fn a_model_server_killed_during_a_dispatch_call_fails_it_with_unavailable() {
    use steadfast_examples::model::{ModelClient, PredictParams};

    let (mut server, addr) = model_server("model-killed");
    let mut client = ModelClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let (options, beat) = first_heartbeat();
    let mut request = tonic::Request::new(PredictParams { delay_ms: 30_000 });
    options.attach(&mut request);
    let predict = tokio::spawn(async move {
        client
            .predict(request, steadfast::BlobSource::from(b"input".to_vec()))
            .await
            .map(drop)
    });
    steadfast_tests::wait::until("a first heartbeat", SERVER_START, || async {
        beat.load(Ordering::SeqCst)
    })
    .await;

    server.0.kill().expect("SIGKILL");
    server.0.wait().expect("reaped");

    let status = tokio::time::timeout(SERVER_START, predict)
        .await
        .expect("the call ends")
        .expect("join")
        .expect_err("the server died");
    assert_connection_lost(&status);
}

#[test]
fn the_wire_protos_compile_with_protoc() {
    let Some(protoc) = tools::require("protoc") else {
        return;
    };
    let wire = common::wire_protos(&["lab/v1/lab.proto"]);
    let out = tempfile::tempdir().expect("dir");
    let (ok, _, stderr) = run(Command::new(protoc)
        .arg("-I")
        .arg(wire.path())
        .arg(format!("--python_out={}", out.path().display()))
        .arg(format!(
            "--descriptor_set_out={}",
            out.path().join("set.pb").display()
        ))
        .args(LAB_WIRE_FILES));
    assert!(ok, "protoc failed:\n{stderr}");
    assert!(out.path().join("lab/v1/lab_pb2.py").exists());
}

/// The wire files of lab.proto, as grpcio-tools compiles them.
const LAB_WIRE_FILES: [&str; 2] = ["lab/v1/lab.proto", "steadfast/v1/frame.proto"];

/// Python modules generated by grpcio-tools from the wire protos of lab.proto,
/// and the command line of the client `script` (in examples/python) up to its
/// own arguments.
fn python_client(python: &Path, script: &str) -> (tempfile::TempDir, Command) {
    python_client_for(
        python,
        script,
        &common::wire_protos(&["lab/v1/lab.proto"]),
        &LAB_WIRE_FILES,
    )
}

/// Like [`python_client`], with the modules generated from `files` in `wire`.
fn python_client_for(
    python: &Path,
    script: &str,
    wire: &tempfile::TempDir,
    files: &[&str],
) -> (tempfile::TempDir, Command) {
    let generated = tempfile::tempdir().expect("dir");
    let (ok, _, stderr) = run(Command::new(python)
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(wire.path())
        .arg(format!("--python_out={}", generated.path().display()))
        .arg(format!("--grpc_python_out={}", generated.path().display()))
        .args(files));
    assert!(ok, "grpc_tools.protoc failed:\n{stderr}");
    let script: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let mut command = Command::new(python);
    command.arg(&script).arg("--gen").arg(generated.path());
    (generated, command)
}

#[test]
fn a_python_grpcio_client_gets_deadline_exceeded_past_its_deadline() {
    let Some(python) = tools::python_with_grpc() else {
        return;
    };
    let (_generated, mut command) = python_client(&python, "sleep_client.py");
    let (_server, addr) = lab_server("lab-py-deadline");
    let (ok, stdout, stderr) = run(command.args([
        "--addr",
        &addr.to_string(),
        "--millis",
        "3000",
        "--timeout",
        "0.5",
    ]));
    assert!(!ok, "the call outlived its deadline:\n{stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().last(),
        Some("status DEADLINE_EXCEEDED"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn a_python_grpcio_client_sees_heartbeats_then_the_reply() {
    let Some(python) = tools::python_with_grpc() else {
        return;
    };
    let (_generated, mut command) = python_client(&python, "sleep_client.py");
    let (_server, addr) = lab_server("lab-py");
    let (ok, stdout, stderr) = run(command.args(["--addr", &addr.to_string(), "--millis", "1500"]));
    assert!(ok, "python client failed:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let (reply, heartbeats) = lines.split_last().expect("output");
    assert!(reply.starts_with("reply slept_ms=15"), "{stdout}");
    assert!(
        heartbeats.len() >= 2,
        "heartbeats before the reply:\n{stdout}"
    );
    for (i, line) in heartbeats.iter().enumerate() {
        assert!(
            line.starts_with(&format!("heartbeat seq={} ", i + 1)),
            "{stdout}"
        );
    }
}

#[test]
fn a_python_grpcio_client_uploads_files_to_digest_and_gets_their_sha256() {
    let Some(python) = tools::python_with_grpc() else {
        return;
    };
    let (_generated, command) = python_client(&python, "digest_client.py");
    let (_server, addr) = lab_server("lab-py-digest");
    let dir = tempfile::tempdir().expect("dir");
    // Empty; under one chunk; many chunks, with server work long enough for
    // heartbeats (Digest's interval is 1 s) before the reply.
    for (size, extra_millis) in [(0, 0), (1000, 0), (5 << 20, 2500)] {
        let file = dir.path().join(format!("upload-{size}.bin"));
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut content::Content::new(size, 5), &mut bytes)
            .expect("generate");
        std::fs::write(&file, &bytes).expect("write the file");
        let mut command = clone_command(&command);
        let (ok, stdout, stderr) = run(command
            .args(["--addr", &addr.to_string()])
            .args(["--extra-millis", &extra_millis.to_string()])
            .arg(&file));
        assert!(
            ok,
            "python client failed for {size} bytes:\n{stdout}\n{stderr}"
        );
        let lines: Vec<&str> = stdout.lines().collect();
        let (reply, heartbeats) = lines.split_last().expect("output");
        assert_eq!(
            *reply,
            format!("size={size} sha256={}", hex(&Sha256::digest(&bytes))),
            "{stdout}\n{stderr}"
        );
        if extra_millis > 0 {
            assert!(
                !heartbeats.is_empty(),
                "heartbeats before the reply:\n{stdout}"
            );
        }
        for (i, line) in heartbeats.iter().enumerate() {
            assert_eq!(*line, format!("heartbeat seq={}", i + 1), "{stdout}");
        }
    }

    // A zstd frame without its content checksum is refused, and the server
    // goes on serving.
    let file = dir.path().join("upload-1000.bin");
    let (ok, stdout, stderr) = run(clone_command(&command)
        .args(["--addr", &addr.to_string(), "--no-checksum"])
        .arg(&file));
    assert!(!ok, "an unverifiable blob was accepted:\n{stdout}");
    assert!(
        stdout.starts_with("status INVALID_ARGUMENT") && stdout.contains("checksum"),
        "{stdout}\n{stderr}"
    );
    let (ok, stdout, stderr) = run(clone_command(&command)
        .args(["--addr", &addr.to_string()])
        .arg(&file));
    assert!(ok && stdout.starts_with("size=1000 "), "{stdout}\n{stderr}");
}

/// A new `Command` with the program and arguments of `command`.
fn clone_command(command: &Command) -> Command {
    let mut clone = Command::new(command.get_program());
    clone.args(command.get_args());
    clone
}

/// Writes `size` bytes of generated content to `dir/name`; returns the path and
/// the bytes.
fn content_file(dir: &Path, name: &str, size: u64, seed: u64) -> (PathBuf, Vec<u8>) {
    let file = dir.join(name);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut content::Content::new(size, seed), &mut bytes)
        .expect("generate");
    std::fs::write(&file, &bytes).expect("write the file");
    (file, bytes)
}

#[test]
fn a_python_grpcio_client_calls_hello_and_predict_by_name_with_json_params_and_a_zstd_blob() {
    let Some(python) = tools::python_with_grpc() else {
        return;
    };
    let wire = common::wire_protos(&["steadfast/v1/dispatch.proto"]);
    let (_generated, command) = python_client_for(
        &python,
        "model_client.py",
        &wire,
        &["steadfast/v1/dispatch.proto", "steadfast/v1/frame.proto"],
    );
    let (_server, addr) = model_server("model-py");
    let addr = addr.to_string();

    let (ok, stdout, stderr) = run(clone_command(&command).args(["--addr", &addr, "hello", "Ada"]));
    assert!(ok, "{stdout}\n{stderr}");
    assert_eq!(stdout, "hello, Ada from model-py\n", "{stderr}");

    // Many chunks, then 1.5 s of work: heartbeats (every 500 ms) before the result.
    let dir = tempfile::tempdir().expect("dir");
    let (file, bytes) = content_file(dir.path(), "input.bin", BLOB_BYTES, 7);
    let (ok, stdout, stderr) = run(clone_command(&command)
        .args(["--addr", &addr, "predict", "--delay-ms", "1500"])
        .arg(&file));
    assert!(ok, "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let (result, heartbeats) = lines.split_last().expect("output");
    assert_eq!(
        *result,
        format!(
            "size={BLOB_BYTES} sha256={} served_by=model-py",
            hex(&Sha256::digest(&bytes))
        ),
        "{stdout}\n{stderr}"
    );
    assert!(
        heartbeats.len() >= 2,
        "heartbeats before the result:\n{stdout}"
    );
    for (i, line) in heartbeats.iter().enumerate() {
        assert!(
            line.starts_with(&format!("heartbeat seq={} ", i + 1)) && line.contains(" progress="),
            "{stdout}"
        );
    }

    // An unknown x-func-name: UNIMPLEMENTED, naming the functions there are.
    let (ok, stdout, stderr) =
        run(clone_command(&command).args(["--addr", &addr, "--func", "no-such", "hello", "Ada"]));
    assert!(!ok, "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "status UNIMPLEMENTED no function named `no-such`; this server has echo_blob, hello, predict\n",
        "{stderr}"
    );
}

#[test]
fn model_client_predict_uploads_a_file_shows_the_heartbeats_and_prints_the_prediction() {
    let (_server, addr) = model_server("model-cli");
    let url = format!("http://{addr}");
    let dir = tempfile::tempdir().expect("dir");
    let (file, bytes) = content_file(dir.path(), "input.bin", BLOB_BYTES, 8);
    let (ok, stdout, stderr) = run(Command::new(MODEL_CLIENT)
        .args(["--addr", &url, "predict", "--delay-ms", "1200"])
        .arg(&file));
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "size={BLOB_BYTES} sha256={} served_by=model-cli\n",
            hex(&Sha256::digest(&bytes))
        ),
        "{stderr}"
    );
    // stderr is no terminal: no bars, a line per heartbeat instead, with the
    // server's progress (reading the input, then working).
    let heartbeats: Vec<&str> = stderr.lines().collect();
    assert!(heartbeats.len() >= 2, "{stderr}");
    for (i, line) in heartbeats.iter().enumerate() {
        assert!(
            line.starts_with(&format!("heartbeat #{} at ", i + 1))
                && (line.contains("% (read ") || line.contains("% (worked ")),
            "{stderr}"
        );
    }
}

#[test]
fn model_client_echo_blob_writes_back_what_it_sent() {
    let (_server, addr) = model_server("model-echo");
    let dir = tempfile::tempdir().expect("dir");
    let (file, bytes) = content_file(dir.path(), "input.bin", BLOB_BYTES, 9);
    let out = dir.path().join("echoed.bin");
    let (ok, stdout, stderr) = run(Command::new(MODEL_CLIENT)
        .args(["--addr", &format!("http://{addr}"), "echo-blob"])
        .arg(&file)
        .arg("--out")
        .arg(&out));
    assert!(ok, "{stderr}");
    assert_eq!(stdout, format!("size={BLOB_BYTES}\n"));
    assert!(
        std::fs::read(&out).expect("written") == bytes,
        "the same bytes came back"
    );
}

#[test]
fn model_client_refuses_work_past_its_deadline_with_deadline_exceeded() {
    let (_server, addr) = model_server("model-deadline");
    let dir = tempfile::tempdir().expect("dir");
    let (file, _) = content_file(dir.path(), "input.bin", 1000, 10);
    let (ok, stdout, stderr) = run(Command::new(MODEL_CLIENT)
        .args(["--addr", &format!("http://{addr}"), "--timeout-ms", "2000"])
        .args(["predict", "--delay-ms", "60000"])
        .arg(&file));
    assert!(!ok, "{stdout}");
    // The server refuses at once (the work would end after the deadline), and
    // says why; not the client's own timeout.
    assert!(
        stderr.contains("(DeadlineExceeded): the work takes 60000 ms"),
        "{stderr}"
    );
}

/// Python modules generated by grpcio-tools from lab.proto *as written* (what
/// a service's existing Python callers were built from, steadfast options and
/// all), and the command line of `original_client.py` up to its own arguments.
fn original_python_client(python: &Path) -> (tempfile::TempDir, Command) {
    let generated = tempfile::tempdir().expect("dir");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (ok, _, stderr) = run(Command::new(python)
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(examples.join("proto"))
        .arg("-I")
        .arg(examples.join("../proto"))
        .arg(format!("--python_out={}", generated.path().display()))
        .arg(format!("--grpc_python_out={}", generated.path().display()))
        .args(["lab/v1/lab.proto", "steadfast/v1/options.proto"]));
    assert!(ok, "grpc_tools.protoc failed:\n{stderr}");
    let mut command = Command::new(python);
    command
        .arg(examples.join("python/original_client.py"))
        .arg("--gen")
        .arg(generated.path());
    (generated, command)
}

#[test]
fn a_python_client_of_the_original_proto_gets_plain_answers_and_a_clear_refusal_of_blobs() {
    let Some(python) = tools::python_with_grpc() else {
        return;
    };
    let (_generated, command) = original_python_client(&python);
    let (_server, addr) = lab_server("lab-py-original");
    let addr = addr.to_string();
    let call = |args: &[&str]| {
        let mut command = clone_command(&command);
        run(command.args(["--addr", &addr]).args(args))
    };

    // Unary heartbeat method: the plain reply, short and longer than its 500 ms
    // interval (a frame decoded as the reply said `slept_ms=0`; a long call hung).
    for (millis, range) in [("100", 100..1000), ("1200", 1200..5000)] {
        let (ok, stdout, stderr) = call(&["sleep", millis]);
        assert!(ok, "sleep {millis} failed:\n{stdout}\n{stderr}");
        let slept: u64 = stdout
            .trim()
            .strip_prefix("reply slept_ms=")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a reply: {stdout}"));
        assert!(range.contains(&slept), "sleep {millis}: {stdout}");
    }

    // Server-streaming heartbeat method with gaps longer than its interval: the
    // ticks, and nothing else.
    let (ok, stdout, stderr) = call(&["ticks", "3", "700"]);
    assert!(ok, "ticks failed:\n{stdout}\n{stderr}");
    assert_eq!(stdout, "tick n=1\ntick n=2\ntick n=3\n", "{stderr}");

    // Client-streaming and bidi heartbeat methods, the client silent for longer
    // than the interval between its messages.
    let (ok, stdout, stderr) = call(&["count", "3", "700"]);
    assert!(ok, "count failed:\n{stdout}\n{stderr}");
    assert_eq!(stdout, "reply count=3 sum=6\n", "{stderr}");
    let (ok, stdout, stderr) = call(&["echo", "3", "700"]);
    assert!(ok, "echo failed:\n{stdout}\n{stderr}");
    assert_eq!(stdout, "tick n=1\ntick n=2\ntick n=3\n", "{stderr}");

    // The deadline still holds.
    let (ok, stdout, _) = call(&["--timeout", "0.5", "sleep", "3000"]);
    assert!(!ok);
    assert!(stdout.starts_with("status DEADLINE_EXCEEDED"), "{stdout}");

    // Blob methods: a refusal that says why and what to do.
    for (command, method) in [("digest", "Digest"), ("fetch", "Fetch")] {
        let (ok, stdout, _) = call(&[command]);
        assert!(!ok, "{command} answered: {stdout}");
        assert!(
            stdout.starts_with(&format!(
                "status FAILED_PRECONDITION: lab.v1.Lab/{method} carries a blob"
            )),
            "{stdout}"
        );
        assert!(stdout.contains("steadfast-framing: v1"), "{stdout}");
    }
}
