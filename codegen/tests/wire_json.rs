//! The JSON written beside the wire protos, read back as a client in another
//! language reads it: the service config has gRFC A6's shape and grpcio
//! accepts it on a channel; the steadfast manifest has its documented shape.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use serde_json::Value;
use steadfast_tests::tools;

/// The `retry` golden case's proto, with its build.rs setting: idempotent
/// methods with the service's policy, their own and none, a heartbeat
/// method, a blob method, and methods that are not idempotent.
fn retry_case() -> (tempfile::TempDir, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/cases/retry");
    let out = tempfile::tempdir().expect("out dir");
    steadfast_build::configure()
        .retry(
            "retry.v1.Flaky/Tuned",
            steadfast_build::RetryPolicy::new()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(5))
                .retryable_codes(["ABORTED", "UNAVAILABLE"]),
        )
        .write_wire_protos(&[dir.join("retry.proto")], &[dir], out.path())
        .expect("wire protos written");
    let path = out.path().to_owned();
    (out, path)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// A proto3 JSON duration as gRPC parses it: seconds, up to 9 decimals, `s`.
fn is_duration(text: &str) -> bool {
    let Some(number) = text.strip_suffix('s') else {
        return false;
    };
    let (seconds, fraction) = number.split_once('.').unwrap_or((number, ""));
    !seconds.is_empty()
        && seconds.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() <= 9
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && number.parse::<f64>().is_ok_and(|s| s > 0.0)
}

const CODES: [&str; 16] = [
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

#[test]
fn the_service_config_has_the_a6_shape() {
    let (_out, dir) = retry_case();
    let config = read_json(&dir.join("service_config.json"));
    let top = config.as_object().expect("an object");
    assert_eq!(top.keys().collect::<Vec<_>>(), ["methodConfig"]);
    let entries = top["methodConfig"]
        .as_array()
        .expect("methodConfig: a list");
    let mut named = Vec::new();
    for entry in entries {
        let entry = entry.as_object().expect("a methodConfig entry: an object");
        assert_eq!(
            entry.keys().collect::<Vec<_>>(),
            ["name", "retryPolicy"],
            "{entry:?}"
        );
        for name in entry["name"].as_array().expect("name: a list") {
            let service = name["service"].as_str().expect("name.service");
            let method = name["method"].as_str().expect("name.method");
            named.push(format!("{service}/{method}"));
        }
        let policy = entry["retryPolicy"].as_object().expect("retryPolicy");
        let attempts = policy["maxAttempts"].as_u64().expect("maxAttempts");
        assert!((2..=5).contains(&attempts), "{policy:?}");
        for field in ["initialBackoff", "maxBackoff"] {
            let text = policy[field].as_str().expect("a duration string");
            assert!(is_duration(text), "{field}: {text}");
        }
        let multiplier = policy["backoffMultiplier"].as_f64().expect("a number");
        assert!(multiplier > 0.0);
        let codes = policy["retryableStatusCodes"].as_array().expect("codes");
        assert!(!codes.is_empty());
        for code in codes {
            assert!(
                CODES.contains(&code.as_str().expect("a code name")),
                "{code}"
            );
        }
    }
    // Each idempotent method once (gRPC refuses a name given twice); the
    // others (Write, Feed) not at all.
    assert_eq!(
        named,
        [
            "retry.v1.Flaky/Read",
            "retry.v1.Flaky/Watch",
            "retry.v1.Flaky/Tuned",
            "retry.v1.Flaky/Slow",
            "retry.v1.Flaky/Put"
        ]
    );
    let tuned = &entries[2]["retryPolicy"];
    assert_eq!(tuned["maxAttempts"], 3);
    assert_eq!(tuned["initialBackoff"], "0.005s");
    assert_eq!(
        tuned["retryableStatusCodes"],
        serde_json::json!(["ABORTED", "UNAVAILABLE"])
    );
}

#[test]
fn the_manifest_lists_each_method_with_frames_by_its_path() {
    let (_out, dir) = retry_case();
    let manifest = read_json(&dir.join("steadfast.json"));
    assert_eq!(manifest["version"], 1);
    assert_eq!(
        manifest["methods"],
        serde_json::json!({
            "/retry.v1.Flaky/Slow": {"heartbeat_ms": 50, "request_blob": false, "response_blob": false, "idempotent": true},
            "/retry.v1.Flaky/Put": {"heartbeat_ms": 0, "request_blob": true, "response_blob": false, "idempotent": true},
        })
    );
}

/// Starts a grpcio server on port 0 that answers `/retry.v1.Flaky/Read`,
/// then calls it once per config given (argv), on a channel made with
/// `grpc.service_config` and `grpc.enable_retries`; prints `ok` or the error
/// code per call. grpcio validates the config when it makes the channel and
/// fails every call of a channel whose config it refused.
const GRPCIO_CHECK: &str = r#"
import sys
from concurrent import futures
import grpc

server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
    "retry.v1.Flaky", {"Read": grpc.unary_unary_rpc_method_handler(lambda request, context: b"")}),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
for config in sys.argv[1:]:
    options = [("grpc.service_config", config), ("grpc.enable_retries", 1)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        try:
            channel.unary_unary("/retry.v1.Flaky/Read")(b"", timeout=10)
            print("ok")
        except grpc.RpcError as error:
            print(error.code().name, error.details())
server.stop(None)
"#;

#[test]
fn grpcio_accepts_the_service_config_on_a_channel() {
    let Some(python) = tools::python_with_grpc() else {
        return;
    };
    let (_out, dir) = retry_case();
    let config = std::fs::read_to_string(dir.join("service_config.json")).expect("read");
    let empty = "{\n  \"methodConfig\": []\n}\n";
    // A control: a retryPolicy without its required fields is refused, so an
    // `ok` above it means something.
    let refused =
        r#"{"methodConfig": [{"name": [{"service": "retry.v1.Flaky"}], "retryPolicy": {}}]}"#;
    let output = Command::new(python)
        .args(["-c", GRPCIO_CHECK, &config, empty, refused])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..2], ["ok", "ok"], "{stdout}\n{stderr}");
    assert!(
        lines[2].starts_with("INVALID_ARGUMENT") && lines[2].contains("retryPolicy"),
        "the control config was not refused: {stdout}\n{stderr}"
    );
}
