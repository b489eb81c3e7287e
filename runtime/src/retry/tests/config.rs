//! ServiceConfig::from_json: valid configs (from grpc-go's and A6's examples),
//! name precedence, and an error naming the field for each invalid value.

use std::time::Duration;

use tonic::Code;

use crate::retry::{ConfigErrorKind, ServiceConfig};

const GRPC_GO_VALID: &str = r#"{
    "methodConfig": [{
      "name": [{"service": "foo"}],
      "retryPolicy": {
        "maxAttempts": 2,
        "initialBackoff": "2s",
        "maxBackoff": "10s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"]
      }
    }]
  }"#;

#[test]
fn grpc_gos_valid_retry_policy_parses() {
    let config = ServiceConfig::from_json(GRPC_GO_VALID).expect("valid");
    let policy = config.policy_for("foo", "Bar").expect("service-wide");
    assert_eq!(policy.max_attempts(), 2);
    assert_eq!(policy.initial_backoff(), Duration::from_secs(2));
    assert_eq!(policy.max_backoff(), Duration::from_secs(10));
    assert_eq!(policy.backoff_multiplier(), 2.0);
    assert_eq!(
        policy.retryable_codes().collect::<Vec<_>>(),
        [Code::Unavailable]
    );
    assert!(config.policy_for("other", "Bar").is_none());
    assert!(config.retry_throttle().is_none());
}

#[test]
fn a6s_example_with_throttling_other_fields_codes_as_numbers_and_a_cap() {
    let config = ServiceConfig::from_json(
        r#"{
          "loadBalancingPolicy": "round_robin",
          "methodConfig": [{
            "name": [{"service": "lab.v1.Lab", "method": "Sleep"}],
            "waitForReady": true,
            "timeout": "1.5s",
            "retryPolicy": {
              "maxAttempts": 9,
              "initialBackoff": ".1s",
              "maxBackoff": "1s",
              "backoffMultiplier": 1.5,
              "retryableStatusCodes": ["UNAVAILABLE", 10, "RESOURCE_EXHAUSTED"]
            }
          }],
          "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}
        }"#,
    )
    .expect("valid");
    let method = config.method_config("lab.v1.Lab", "Sleep").expect("exact");
    assert_eq!(method.timeout(), Some(Duration::from_millis(1500)));
    let policy = method.retry_policy().expect("has one");
    assert_eq!(policy.max_attempts(), 5, "9 capped at 5");
    assert_eq!(policy.initial_backoff(), Duration::from_millis(100));
    let codes: Vec<_> = policy.retryable_codes().collect();
    assert_eq!(
        codes,
        [Code::ResourceExhausted, Code::Aborted, Code::Unavailable]
    );
    let raised = policy.to_builder().attempt_limit(9).build().expect("valid");
    assert_eq!(raised.max_attempts(), 9);
    let throttle = config.retry_throttle().expect("configured");
    assert_eq!(throttle.tokens(), 10.0);
    assert!(config.method_config("lab.v1.Lab", "Other").is_none());
}

#[test]
fn the_exact_method_wins_over_the_service_which_wins_over_the_default() {
    let policy = |attempts: u32| {
        format!(
            r#"{{"maxAttempts": {attempts}, "initialBackoff": "1s", "maxBackoff": "1s",
                "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}"#
        )
    };
    let json = format!(
        r#"{{"methodConfig": [
            {{"name": [{{}}], "retryPolicy": {}}},
            {{"name": [{{"service": "s"}}, {{"service": "t", "method": ""}}], "retryPolicy": {}}},
            {{"name": [{{"service": "s", "method": "Exact"}}], "retryPolicy": {}}},
            {{"name": [{{"service": "s", "method": "NoRetry"}}], "timeout": "2s"}},
            {{"retryPolicy": {}}}
        ]}}"#,
        policy(2),
        policy(3),
        policy(4),
        policy(5)
    );
    let config = ServiceConfig::from_json(&json).expect("valid");
    let attempts = |service, method| config.policy_for(service, method).map(|p| p.max_attempts());
    assert_eq!(attempts("s", "Exact"), Some(4));
    assert_eq!(attempts("s", "Other"), Some(3));
    assert_eq!(
        attempts("t", "Any"),
        Some(3),
        "an empty method is service-wide"
    );
    assert_eq!(attempts("u", "Any"), Some(2), "the default entry");
    assert_eq!(
        attempts("s", "NoRetry"),
        None,
        "the exact entry has no retryPolicy"
    );
}

#[test]
fn durations_take_the_proto3_json_form() {
    let parse = super::super::config::parse_duration;
    assert_eq!(parse("0s"), Ok(Duration::ZERO));
    assert_eq!(parse(".1s"), Ok(Duration::from_millis(100)));
    assert_eq!(parse("1.s"), Ok(Duration::from_secs(1)));
    assert_eq!(parse("2.000000001s"), Ok(Duration::new(2, 1)));
    assert_eq!(
        parse("315576000000s"),
        Ok(Duration::from_secs(315_576_000_000))
    );
    for bad in [
        "",
        "s",
        ".s",
        "1",
        "1ms",
        "1.2.3s",
        "1.0000000001s",
        "+1s",
        " 1s",
        "1e3s",
        "315576000001s",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        parse("-1s"),
        Err("must not be negative, got \"-1s\"".into())
    );
}

/// A config whose one method has the retry policy `fields` (JSON members).
fn with_policy(fields: &str) -> String {
    format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "foo"}}], "retryPolicy": {{{fields}}}}}]}}"#
    )
}

const CODES: &str = r#""retryableStatusCodes": ["UNAVAILABLE"]"#;

#[test]
fn each_invalid_value_is_an_error_naming_its_field() {
    let at = "methodConfig[0].retryPolicy";
    let cases = [
        (
            with_policy(&format!(r#""maxAttempts": 1, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, {CODES}"#)),
            format!("{at}.maxAttempts: must be greater than 1, got 1"),
        ),
        (
            with_policy(&format!(r#""maxAttempts": -1, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, {CODES}"#)),
            format!("{at}.maxAttempts: must be greater than 1, got -1"),
        ),
        (
            with_policy(&format!(r#""initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, {CODES}"#)),
            format!("{at}.maxAttempts: required"),
        ),
        (
            with_policy(&format!(r#""maxAttempts": 2, "initialBackoff": "0s", "maxBackoff": "1s", "backoffMultiplier": 2, {CODES}"#)),
            format!("{at}.initialBackoff: must be greater than 0, got 0ns"),
        ),
        (
            with_policy(&format!(r#""maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "0s", "backoffMultiplier": 2, {CODES}"#)),
            format!("{at}.maxBackoff: must be greater than 0, got 0ns"),
        ),
        (
            with_policy(&format!(r#""maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 0, {CODES}"#)),
            format!("{at}.backoffMultiplier: must be a finite number greater than 0, got 0"),
        ),
        (
            with_policy(r#""maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": []"#),
            format!("{at}.retryableStatusCodes: must not be empty"),
        ),
        (
            r#"{"retryThrottling": {"maxTokens": 0, "tokenRatio": 0.1}}"#.into(),
            "retryThrottling.maxTokens: must be in (0, 1000], got 0".into(),
        ),
        (
            r#"{"retryThrottling": {"maxTokens": 1001, "tokenRatio": 0.1}}"#.into(),
            "retryThrottling.maxTokens: must be in (0, 1000], got 1001".into(),
        ),
        (
            r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": -0.1}}"#.into(),
            "retryThrottling.tokenRatio: must be a finite number of at least 0.001, got -0.1".into(),
        ),
        (
            r#"{"retryThrottling": {"maxTokens": 10}}"#.into(),
            "retryThrottling.tokenRatio: required".into(),
        ),
        (
            r#"{"methodConfig": [{"name": [{"method": "Bar"}]}]}"#.into(),
            "methodConfig[0].name[0]: a name with a method must have a service".into(),
        ),
        (
            r#"{"methodConfig": [{"name": [{"service": "a"}]}, {"name": [{"service": "b"}, {"service": "a", "method": ""}]}]}"#.into(),
            "methodConfig[1].name[1]: duplicate name, already given at methodConfig[0].name[0]".into(),
        ),
    ];
    for (json, message) in cases {
        let error = ServiceConfig::from_json(&json).expect_err(&message);
        assert_eq!(error.to_string(), message, "{json}");
    }
}

#[test]
fn malformed_json_values_name_their_field_too() {
    let cases = [
        (
            with_policy(
                r#""maxAttempts": 2, "initialBackoff": "100ms", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]"#,
            ),
            "methodConfig[0].retryPolicy.initialBackoff",
            "malformed duration \"100ms\"",
        ),
        (
            with_policy(
                r#""maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", "unavailable"]"#,
            ),
            "methodConfig[0].retryPolicy.retryableStatusCodes[1]",
            "unknown status code name \"unavailable\"",
        ),
        (
            with_policy(
                r#""maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": [17]"#,
            ),
            "methodConfig[0].retryPolicy.retryableStatusCodes[0]",
            "unknown status code 17",
        ),
        (
            with_policy(r#""maxAttempts": "2""#),
            "methodConfig[0].retryPolicy.maxAttempts",
            "invalid type: string \"2\"",
        ),
        (
            r#"{"methodConfig": {"name": []}}"#.into(),
            "methodConfig",
            "invalid type: map",
        ),
    ];
    for (json, path, message) in cases {
        let error = ServiceConfig::from_json(&json).expect_err(path);
        assert_eq!(error.path(), path, "{error}");
        assert!(matches!(error.kind(), ConfigErrorKind::Json(_)));
        assert!(
            error.to_string().starts_with(&format!("{path}: {message}")),
            "{error}"
        );
    }
    for not_json in ["", "{", "{} x", "[]"] {
        let error = ServiceConfig::from_json(not_json).expect_err(not_json);
        assert!(error.to_string().starts_with("service config: "), "{error}");
    }
}

#[test]
fn wait_for_ready_is_read_by_name_and_a_client_setting_wins() {
    let config = ServiceConfig::from_json(
        r#"{
          "methodConfig": [
            { "name": [{ "service": "lab.v1.Lab" }], "waitForReady": true },
            { "name": [{ "service": "lab.v1.Lab", "method": "Fast" }], "waitForReady": false },
            { "name": [{ "service": "other.Svc" }] }
          ]
        }"#,
    )
    .expect("valid");
    let waits = |service, method| {
        config
            .method_config(service, method)
            .and_then(|c| c.wait_for_ready())
    };
    assert_eq!(waits("lab.v1.Lab", "Sleep"), Some(true));
    assert_eq!(waits("lab.v1.Lab", "Fast"), Some(false));
    assert_eq!(waits("other.Svc", "Any"), None);
    let error = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "a"}], "waitForReady": "yes"}]}"#,
    )
    .expect_err("not a bool");
    assert_eq!(error.path(), "methodConfig[0].waitForReady");

    let mut retry = crate::retry::client::ClientRetry::default();
    assert!(
        !retry.wait_for_ready_for("lab.v1.Lab", "Sleep"),
        "off by default"
    );
    retry.set_service_config(&config);
    assert!(retry.wait_for_ready_for("lab.v1.Lab", "Sleep"));
    assert!(!retry.wait_for_ready_for("lab.v1.Lab", "Fast"));
    retry.set_wait_for_ready(true);
    assert!(
        retry.wait_for_ready_for("lab.v1.Lab", "Fast"),
        "the client's setting wins"
    );
    retry.disable();
    assert!(
        retry.wait_for_ready_for("other.Svc", "Any"),
        "kept without retries"
    );
}
