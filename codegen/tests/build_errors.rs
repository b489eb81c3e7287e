//! Build failures name the file and position, or the method, and say what is
//! wrong — never a panic.

mod support;

use std::time::Duration;

use steadfast_build::configure;

const GOOD_HEAD: &str =
    "syntax = \"proto3\";\npackage lab.v1;\nimport \"steadfast/v1/options.proto\";\n";

fn lab(method_option: &str) -> String {
    format!(
        "{GOOD_HEAD}service Lab {{\n  rpc Sleep(Req) returns (Rep) {{ {method_option} }}\n  rpc Other(Req) returns (Rep);\n}}\nmessage Req {{}}\nmessage Rep {{}}\n"
    )
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let dir = support::protos(&[(
        "bad.proto",
        "syntax = \"proto3\";\npackage x;\nmessage Foo {\n  int32 id = 1\n}\n",
    )]);
    let err = support::compile_err(dir.path(), "bad.proto", configure());
    assert!(err.starts_with("bad.proto:5:1: "), "{err}");
    assert!(err.contains("expected ';'"), "{err}");
}

#[test]
fn an_unknown_type_names_file_and_position() {
    let dir = support::protos(&[(
        "t.proto",
        "syntax = \"proto3\";\npackage x;\nmessage Foo {\n  Missing m = 1;\n}\n",
    )]);
    let err = support::compile_err(dir.path(), "t.proto", configure());
    assert!(err.starts_with("t.proto:4:3: "), "{err}");
    assert!(err.contains("Missing"), "{err}");
}

#[test]
fn a_missing_file_says_so() {
    let dir = support::protos(&[]);
    let err = support::compile_err(dir.path(), "nope.proto", configure());
    assert!(err.contains("nope.proto"), "{err}");
}

#[test]
fn a_too_small_heartbeat_names_the_method() {
    let dir = support::protos(&[(
        "lab.proto",
        &lab("option (steadfast.v1.method) = { heartbeat_ms: 5 };"),
    )]);
    let err = support::compile_err(dir.path(), "lab.proto", configure());
    assert_eq!(
        err,
        "lab.v1.Lab/Sleep: heartbeat_ms = 5 is too small: use 0 (off) or at least 10"
    );
}

#[test]
fn a_too_large_heartbeat_names_the_method() {
    let dir = support::protos(&[(
        "lab.proto",
        &lab("option (steadfast.v1.method) = { heartbeat_ms: 3600001 };"),
    )]);
    let err = support::compile_err(dir.path(), "lab.proto", configure());
    assert!(
        err.starts_with("lab.v1.Lab/Sleep: heartbeat_ms = 3600001 is too large"),
        "{err}"
    );
}

/// Each retry policy out of range fails the build naming the method and the field.
#[test]
fn a_bad_retry_policy_names_the_method_and_the_field() {
    let cases = [
        (
            "max_attempts: 1",
            "lab.v1.Lab/Sleep: retry.max_attempts must be at least 2, got 1",
        ),
        (
            "retryable_status_codes: [\"UNAVAILABLE\", \"SOMETIMES\"]",
            "lab.v1.Lab/Sleep: retry.retryable_status_codes has `SOMETIMES`, which is not a gRPC status code",
        ),
        (
            "retryable_status_codes: [\"OK\"]",
            "lab.v1.Lab/Sleep: retry.retryable_status_codes must not contain OK",
        ),
        (
            "backoff_multiplier: -1",
            "lab.v1.Lab/Sleep: retry.backoff_multiplier must be a finite number greater than 0, got -1",
        ),
    ];
    for (policy, expected) in cases {
        let dir = support::protos(&[(
            "lab.proto",
            &lab(&format!(
                "option (steadfast.v1.method) = {{ retry: {{ {policy} }} }};"
            )),
        )]);
        let err = support::compile_err(dir.path(), "lab.proto", configure());
        assert!(err.starts_with(expected), "{policy}: {err}");
    }
}

#[test]
fn a_bad_service_retry_default_names_each_method() {
    let proto = format!(
        "{GOOD_HEAD}service Lab {{\n  option (steadfast.v1.service) = {{ retry: {{ max_attempts: 1 }} }};\n  rpc Sleep(Req) returns (Rep);\n}}\nmessage Req {{}}\nmessage Rep {{}}\n"
    );
    let dir = support::protos(&[("lab.proto", &proto)]);
    let err = support::compile_err(dir.path(), "lab.proto", configure());
    assert_eq!(
        err,
        "lab.v1.Lab/Sleep: retry.max_attempts must be at least 2, got 1"
    );
}

#[test]
fn a_bad_builder_retry_policy_is_refused() {
    let cases = [
        (
            steadfast_build::RetryPolicy::new().initial_backoff(Duration::ZERO),
            "lab.v1.Lab/Sleep: retry.initial_backoff_ms must be greater than 0",
        ),
        (
            steadfast_build::RetryPolicy::new().max_backoff(Duration::from_micros(1500)),
            "lab.v1.Lab/Sleep: retry.max_backoff_ms must be whole milliseconds, got 1.5ms",
        ),
        (
            steadfast_build::RetryPolicy::new().attempt_limit(0),
            "lab.v1.Lab/Sleep: retry.attempt_limit must be at least 1, got 0",
        ),
        (
            steadfast_build::RetryPolicy::new().retryable_codes(["unavailable", "nope"]),
            "lab.v1.Lab/Sleep: retry.retryable_status_codes has `nope`",
        ),
    ];
    for (policy, expected) in cases {
        let dir = support::protos(&[("lab.proto", &lab(""))]);
        let err = support::compile_err(
            dir.path(),
            "lab.proto",
            configure().retry("lab.v1.Lab/Sleep", policy.clone()),
        );
        assert!(err.starts_with(expected), "{policy:?}: {err}");
    }
}

#[test]
fn a_retry_setting_for_an_unknown_method_fails_with_its_name() {
    let dir = support::protos(&[("lab.proto", &lab(""))]);
    let err = support::compile_err(
        dir.path(),
        "lab.proto",
        configure().idempotent("lab.v1.Lab/Slep"),
    );
    assert!(err.contains("lab.v1.Lab/Slep"), "{err}");
}

/// A service whose methods stream, for the blob options that refuse them.
fn streams(service_option: &str, method_option: &str) -> String {
    format!(
        "{GOOD_HEAD}service Pipes {{\n  {service_option}\n  rpc Up(stream Req) returns (Rep) {{ {method_option} }}\n  rpc Down(Req) returns (stream Rep);\n  rpc Unary(Req) returns (Rep);\n}}\nmessage Req {{}}\nmessage Rep {{}}\n"
    )
}

#[test]
fn a_blob_on_a_streaming_method_is_refused_naming_the_method_and_why() {
    let dir = support::protos(&[(
        "pipes.proto",
        &streams("", "option (steadfast.v1.method) = { request_blob: true };"),
    )]);
    let err = support::compile_err(dir.path(), "pipes.proto", configure());
    assert_eq!(
        err,
        "lab.v1.Pipes/Up: request_blob is only for unary methods, but `Up` streams its request: \
         a blob's chunks travel in the stream that carries the method's one request or reply, and \
         a streaming method uses its streams for its own messages; remove the option from this method"
    );
}

#[test]
fn a_service_blob_default_is_refused_on_its_streaming_methods_with_the_way_out() {
    let dir = support::protos(&[(
        "pipes.proto",
        &streams(
            "option (steadfast.v1.service) = { response_blob: true };",
            "option (steadfast.v1.method) = { response_blob: false };",
        ),
    )]);
    // `Up` turned the default off; `Down` did not.
    let err = support::compile_err(dir.path(), "pipes.proto", configure());
    assert!(
        err.starts_with(
            "lab.v1.Pipes/Down: response_blob is only for unary methods, but `Down` streams its response: "
        ),
        "{err}"
    );
    assert!(
        err.ends_with(
            " (a default of the service's `option (steadfast.v1.service)`); set `response_blob: false` on this method"
        ),
        "{err}"
    );
}

#[test]
fn a_builder_blob_on_a_streaming_method_is_refused_naming_the_setting() {
    let dir = support::protos(&[("pipes.proto", &streams("", ""))]);
    let err = support::compile_err(
        dir.path(),
        "pipes.proto",
        configure().request_blob("lab.v1.Pipes"),
    );
    assert!(
        err.starts_with("lab.v1.Pipes/Up: request_blob is only for unary methods, but `Up` streams its request: "),
        "{err}"
    );
    assert!(
        err.ends_with(
            " (set by the builder's `.request_blob(\"lab.v1.Pipes\")`); target only unary methods"
        ),
        "{err}"
    );
    // The same setting on the unary method alone is fine.
    let out = tempfile::tempdir().expect("out");
    configure()
        .request_blob("lab.v1.Pipes/Unary")
        .response_blob("lab.v1.Pipes.Unary")
        .emit_rerun_if_changed(false)
        .write_wire_protos(&[dir.path().join("pipes.proto")], &[dir.path()], out.path())
        .expect("a unary method takes blobs");
}

#[test]
fn a_blob_setting_for_an_unknown_method_fails_with_its_name() {
    let dir = support::protos(&[("lab.proto", &lab(""))]);
    let err = support::compile_err(
        dir.path(),
        "lab.proto",
        configure().response_blob("lab.v1.Lab/Nope"),
    );
    assert!(
        err.contains("`lab.v1.Lab/Nope`: no such method or service"),
        "{err}"
    );
}

#[test]
fn an_upload_name_already_taken_is_refused() {
    let source = lab("option (steadfast.v1.method) = { request_blob: true };")
        + "message LabSleepUpload {}\n";
    let dir = support::protos(&[("lab.proto", &source)]);
    let err = support::compile_err(dir.path(), "lab.proto", configure());
    assert_eq!(
        err,
        "lab.v1.Lab/Sleep: steadfast would define message `LabSleepUpload` (the wire upload of `lab.v1.Lab/Sleep`), but message `LabSleepUpload` (lab.proto:10:1) already defines `LabSleepUpload` in package `lab.v1`; rename message `LabSleepUpload`"
    );
}

#[test]
fn an_option_of_the_wrong_type_is_a_proto_error() {
    let dir = support::protos(&[(
        "lab.proto",
        &lab("option (steadfast.v1.method) = { heartbeat_ms: \"fast\" };"),
    )]);
    let err = support::compile_err(dir.path(), "lab.proto", configure());
    assert!(err.starts_with("lab.proto:5:"), "{err}");
}

#[test]
fn a_setting_for_an_unknown_method_fails_with_its_name() {
    let dir = support::protos(&[("lab.proto", &lab(""))]);
    let err = support::compile_err(
        dir.path(),
        "lab.proto",
        configure().heartbeat("lab.v1.Lab/Nope", Duration::from_millis(500)),
    );
    assert!(
        err.contains("`lab.v1.Lab/Nope`: no such method or service"),
        "{err}"
    );
    assert!(
        err.contains("lab.v1.Lab/Sleep") && err.contains("lab.v1.Lab/Other"),
        "lists known methods: {err}"
    );
}

#[test]
fn a_setting_for_an_unknown_service_fails_with_its_name() {
    let dir = support::protos(&[("lab.proto", &lab(""))]);
    let err = support::compile_err(
        dir.path(),
        "lab.proto",
        configure().heartbeat("lab.v2.Lab", Duration::from_millis(500)),
    );
    assert!(err.contains("`lab.v2.Lab`"), "{err}");
}

#[test]
fn a_builder_heartbeat_too_small_is_refused() {
    let dir = support::protos(&[("lab.proto", &lab(""))]);
    let err = support::compile_err(
        dir.path(),
        "lab.proto",
        configure().heartbeat("lab.v1.Lab.Sleep", Duration::from_millis(3)),
    );
    assert_eq!(
        err,
        "lab.v1.Lab/Sleep: heartbeat_ms = 3 is too small: use 0 (off) or at least 10"
    );
}

#[test]
fn a_frame_name_already_taken_is_refused() {
    let source =
        lab("option (steadfast.v1.method) = { heartbeat_ms: 100 };") + "message LabSleepFrame {}\n";
    let dir = support::protos(&[("lab.proto", &source)]);
    let err = support::compile_err(dir.path(), "lab.proto", configure());
    assert!(
        err.starts_with(
            "lab.v1.Lab/Sleep: steadfast would define message `LabSleepFrame` (the wire frames of `lab.v1.Lab/Sleep`), but message `LabSleepFrame` (lab.proto:10:1) already defines `LabSleepFrame` in package `lab.v1`; rename message `LabSleepFrame`"
        ),
        "{err}"
    );
}

#[test]
fn no_out_dir_outside_a_build_script_is_an_error() {
    if std::env::var_os("OUT_DIR").is_some() {
        return; // cargo sets OUT_DIR for test binaries of crates with a build script; this crate has none
    }
    let dir = support::protos(&[("lab.proto", &lab(""))]);
    let err = configure()
        .emit_rerun_if_changed(false)
        .compile_protos(&[dir.path().join("lab.proto")], &[dir.path().to_path_buf()])
        .expect_err("no OUT_DIR");
    assert!(err.to_string().contains("OUT_DIR"), "{err}");
}

/// protox (0.9, and 0.10 too) parses no protobuf editions; the error says so
/// plainly instead of "expected 'enum', …, but found 'edition'".
#[test]
fn an_editions_file_is_refused_plainly() {
    for edition in ["2023", "2024"] {
        let source = format!(
            "// The lab.\nedition = \"{edition}\";\npackage lab.v1;\nimport \"steadfast/v1/options.proto\";\n\
             service Lab {{\n  rpc Sleep(Req) returns (Rep) {{ option (steadfast.v1.method) = {{ heartbeat_ms: 500 }}; }}\n}}\n\
             message Req {{}}\nmessage Rep {{}}\n"
        );
        let dir = support::protos(&[("lab/v1/lab.proto", &source)]);
        let out = tempfile::tempdir().expect("out dir");
        let err = configure()
            .out_dir(out.path())
            .emit_rerun_if_changed(false)
            .compile_protos(&[dir.path().join("lab/v1/lab.proto")], &[dir.path()])
            .expect_err("editions are not supported");
        let steadfast_build::Error::Proto { location, message } = &err else {
            panic!("expected Error::Proto, got {err:?}");
        };
        assert_eq!(location.to_string(), "lab/v1/lab.proto:2:1");
        assert_eq!(
            message,
            &format!(
                "editions (edition = \"{edition}\") are not supported yet by steadfast-build; \
                 use syntax = \"proto3\" or \"proto2\""
            )
        );
    }
}

#[test]
fn other_syntax_errors_keep_the_parser_message() {
    let dir = support::protos(&[(
        "e.proto",
        "syntax = \"proto3\";\npackage x;\nmessage M {\n  string edition = 1\n}\n",
    )]);
    let err = support::compile_err(dir.path(), "e.proto", configure());
    assert!(err.starts_with("e.proto:5:1: "), "{err}");
    assert!(
        err.contains("expected ';'") && !err.contains("editions"),
        "{err}"
    );
}

#[test]
fn an_rpc_named_like_a_typed_client_method_is_refused() {
    // `ConnectLazy` becomes `connect_lazy`: the typed client's constructor. In a
    // rewritten service (here through its plain sibling) it is refused by name;
    // in a service left to tonic it is tonic's business.
    let proto = format!(
        "{GOOD_HEAD}service Lab {{\n  rpc Sleep(Req) returns (Rep) {{ option (steadfast.v1.method) = {{ heartbeat_ms: 500 }}; }}\n  rpc ConnectLazy(Req) returns (Rep);\n}}\nmessage Req {{}}\nmessage Rep {{}}\n"
    );
    let dir = support::protos(&[("lab.proto", &proto)]);
    let err = support::compile_err(dir.path(), "lab.proto", configure());
    assert!(
        err.starts_with(
            "lab.v1.Lab/ConnectLazy: rpc `ConnectLazy` would be the typed client's method `connect_lazy`"
        ),
        "{err}"
    );
    assert!(err.ends_with("rename the rpc"), "{err}");
}

#[test]
fn an_rpc_named_like_a_generated_session_method_is_refused() {
    // `Feed` streams its requests, so the typed client gets `feed_session`,
    // which `FeedSession` would be too.
    let proto = format!(
        "{GOOD_HEAD}service Lab {{\n  option (steadfast.v1.service) = {{ retry: {{ max_attempts: 3 }} }};\n  rpc Feed(stream Req) returns (Rep);\n  rpc FeedSession(Req) returns (Rep);\n}}\nmessage Req {{}}\nmessage Rep {{}}\n"
    );
    let dir = support::protos(&[("lab.proto", &proto)]);
    let err = support::compile_err(dir.path(), "lab.proto", configure());
    assert!(
        err.starts_with(
            "lab.v1.Lab/FeedSession: rpcs `Feed` and `FeedSession` would both give the typed client a method `feed_session`"
        ),
        "{err}"
    );
}

#[test]
fn an_rpc_named_like_a_generated_resuming_method_is_refused() {
    let proto = format!(
        "{GOOD_HEAD}service Lab {{\n  option (steadfast.v1.service) = {{ retry: {{ max_attempts: 3 }} }};\n  rpc Watch(Req) returns (stream Rep);\n  rpc WatchResuming(Req) returns (Rep);\n}}\nmessage Req {{}}\nmessage Rep {{}}\n"
    );
    let dir = support::protos(&[("lab.proto", &proto)]);
    let err = support::compile_err(dir.path(), "lab.proto", configure());
    assert!(
        err.starts_with(
            "lab.v1.Lab/WatchResuming: rpcs `Watch` and `WatchResuming` would both give the typed client a method `watch_resuming`"
        ),
        "{err}"
    );
}
