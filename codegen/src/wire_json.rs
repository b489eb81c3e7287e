//! The two JSON files written beside the wire protos, for clients in other
//! languages: what the steadfast options said that the wire protos no longer
//! say. Both come from the [`Model`] the generator uses (the options as
//! resolved: a method's own, its service's defaults, build.rs settings); the
//! formats are documented in the crate docs ("Wire protos for other
//! languages"). Pure text, no I/O; a tiny JSON printer instead of a JSON crate
//! (a build dependency's build time is every user's).

use crate::{model::Model, options::RetryPlan};

/// The gRPC service config's file name in the wire protos' directory.
pub(crate) const SERVICE_CONFIG: &str = "service_config.json";
/// The steadfast manifest's file name in the wire protos' directory.
pub(crate) const MANIFEST: &str = "steadfast.json";

/// The gRPC service config (gRFC A6 `methodConfig`) of the model's methods:
/// one entry per `idempotent` method, with its retry policy (its own or its
/// service's, else the runtime's default). A method that is not idempotent
/// gets no entry, whatever its policy: steadfast retries it only when the
/// server never received the call, which gRPC clients do by themselves
/// (transparent retries), while a `retryPolicy` would let them run it again
/// after a retryable code from the server. Always written, with an empty
/// list when no method is idempotent.
pub(crate) fn service_config(model: &Model) -> String {
    let mut entries = Vec::new();
    for (full_name, service) in &model.services {
        for method in &service.methods {
            if !method.options.idempotent {
                continue;
            }
            let plan = method
                .options
                .retry
                .clone()
                .unwrap_or_else(RetryPlan::runtime_default);
            let name = Json::Object(vec![
                ("service", Json::string(full_name)),
                ("method", Json::string(&method.proto_name)),
            ]);
            entries.push(Json::Object(vec![
                ("name", Json::Array(vec![name])),
                ("retryPolicy", retry_policy(&plan)),
            ]));
        }
    }
    Json::Object(vec![("methodConfig", Json::Array(entries))]).to_text()
}

/// A6's `retryPolicy`: `maxAttempts` is the attempts steadfast makes (its
/// `max_attempts` capped at its `attempt_limit`), which gRPC clients cap at 5.
fn retry_policy(plan: &RetryPlan) -> Json {
    Json::Object(vec![
        ("maxAttempts", Json::Number(plan.attempts().to_string())),
        ("initialBackoff", duration(plan.initial_backoff_ms)),
        ("maxBackoff", duration(plan.max_backoff_ms)),
        (
            "backoffMultiplier",
            Json::Number(multiplier(plan.multiplier())),
        ),
        (
            "retryableStatusCodes",
            Json::Array(plan.codes.iter().map(|code| Json::string(code)).collect()),
        ),
    ])
}

/// The steadfast manifest: every method whose wire shape the rewrite changed,
/// by its gRPC path, with its heartbeat interval (0 = none), its blobs and
/// whether it is idempotent. Always written (`"methods": {}` when none).
pub(crate) fn manifest(model: &Model) -> String {
    let mut methods = Vec::new();
    for (full_name, service) in &model.services {
        for method in &service.methods {
            let options = &method.options;
            if !options.has_frames() {
                continue;
            }
            let heartbeat_ms = options.heartbeat.map_or(0, |interval| interval.as_millis());
            methods.push((
                format!("/{full_name}/{}", method.proto_name),
                Json::Object(vec![
                    ("heartbeat_ms", Json::Number(heartbeat_ms.to_string())),
                    ("request_blob", Json::Bool(options.request_blob)),
                    ("response_blob", Json::Bool(options.response_blob)),
                    ("idempotent", Json::Bool(options.idempotent)),
                ]),
            ));
        }
    }
    let methods = Json::Map(methods);
    Json::Object(vec![
        ("version", Json::Number("1".to_owned())),
        ("methods", methods),
    ])
    .to_text()
}

/// A proto3 JSON `Duration` of whole milliseconds: `"0.1s"`, `"1s"`, `"1.5s"`.
fn duration(ms: u64) -> Json {
    let (seconds, millis) = (ms / 1000, ms % 1000);
    let text = if millis == 0 {
        format!("{seconds}s")
    } else {
        let fraction = format!("{millis:03}");
        format!("{seconds}.{}s", fraction.trim_end_matches('0'))
    };
    Json::String(text)
}

/// The multiplier as the shortest decimal that reads back to it; an `f32`
/// from the proto option (`1.3`) is written as the `f32` it was, not as its
/// widened `f64` (`1.2999999523162842`). Validated finite and positive, so
/// never `NaN` or `inf` (Rust's `Display` writes no exponent).
fn multiplier(value: f64) -> String {
    let narrow = value as f32;
    if f64::from(narrow) == value {
        narrow.to_string()
    } else {
        value.to_string()
    }
}

/// A JSON value, printed with two-space indents; an array or object of
/// scalars only stays on one line.
#[derive(Debug)]
enum Json {
    Bool(bool),
    /// A number as written.
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// An object with fixed keys, in order.
    Object(Vec<(&'static str, Json)>),
    /// An object with computed keys, in order.
    Map(Vec<(String, Json)>),
}

impl Json {
    fn string(text: &str) -> Json {
        Json::String(text.to_owned())
    }

    /// The value as a file: printed, with a final newline.
    fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn entries(&self) -> Vec<(Option<&str>, &Json)> {
        match self {
            Json::Array(items) => items.iter().map(|item| (None, item)).collect(),
            Json::Object(fields) => fields.iter().map(|(k, v)| (Some(*k), v)).collect(),
            Json::Map(fields) => fields.iter().map(|(k, v)| (Some(k.as_str()), v)).collect(),
            _ => Vec::new(),
        }
    }

    fn is_container(&self) -> bool {
        matches!(self, Json::Array(_) | Json::Object(_) | Json::Map(_))
    }

    fn write(&self, out: &mut String, indent: usize) {
        let (open, close) = match self {
            Json::Bool(value) => return out.push_str(if *value { "true" } else { "false" }),
            Json::Number(number) => return out.push_str(number),
            Json::String(text) => return write_string(out, text),
            Json::Array(_) => ('[', ']'),
            Json::Object(_) | Json::Map(_) => ('{', '}'),
        };
        let entries = self.entries();
        out.push(open);
        let flat = !entries.iter().any(|(_, value)| value.is_container());
        for (index, (key, value)) in entries.iter().enumerate() {
            if index > 0 {
                out.push(',');
                if flat {
                    out.push(' ');
                }
            }
            if !flat {
                out.push('\n');
                out.push_str(&"  ".repeat(indent + 1));
            }
            if let Some(key) = key {
                write_string(out, key);
                out.push_str(": ");
            }
            value.write(out, indent + 1);
        }
        if !flat && !entries.is_empty() {
            out.push('\n');
            out.push_str(&"  ".repeat(indent));
        }
        out.push(close);
    }
}

/// `text` as a JSON string: quotes, backslashes and control characters escaped.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        model::{MethodModel, ServiceModel, Signature, Synthesized},
        options::MethodOptions,
    };

    fn method(name: &str, options: MethodOptions) -> MethodModel {
        let signature = Signature {
            input: ".a.v1.Req".to_owned(),
            output: ".a.v1.Rep".to_owned(),
            client_streaming: false,
            server_streaming: false,
        };
        let frame = options.heartbeat.map(|_| Synthesized {
            name: format!("Svc{name}Frame"),
            full_name: format!(".a.v1.Svc{name}Frame"),
        });
        MethodModel {
            proto_name: name.to_owned(),
            original: signature.clone(),
            wire: signature,
            options,
            frame,
            upload: None,
        }
    }

    /// `a.v1.Svc` with a heartbeat method, an idempotent one with its own
    /// policy, an idempotent one with none and one that is not idempotent.
    fn model() -> Model {
        let tuned = RetryPlan {
            max_attempts: 7,
            attempt_limit: 4,
            initial_backoff_ms: 50,
            max_backoff_ms: 1500,
            multiplier_bits: f64::from(1.3f32).to_bits(),
            codes: vec!["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
        };
        let methods = vec![
            method(
                "Slow",
                MethodOptions {
                    heartbeat: Some(Duration::from_millis(500)),
                    ..MethodOptions::default()
                },
            ),
            method(
                "Tuned",
                MethodOptions {
                    retry: Some(tuned),
                    idempotent: true,
                    ..MethodOptions::default()
                },
            ),
            method(
                "Read",
                MethodOptions {
                    request_blob: true,
                    idempotent: true,
                    ..MethodOptions::default()
                },
            ),
            method(
                "Write",
                MethodOptions {
                    retry: Some(RetryPlan::runtime_default()),
                    ..MethodOptions::default()
                },
            ),
            method("Plain", MethodOptions::default()),
        ];
        let service = ServiceModel {
            package: "a.v1".to_owned(),
            proto_name: "Svc".to_owned(),
            wire_module: "svc_wire".to_owned(),
            methods,
        };
        Model {
            services: [(service.full_name(), service)].into(),
        }
    }

    #[test]
    fn the_service_config_has_a_policy_for_each_idempotent_method() {
        assert_eq!(
            service_config(&model()),
            r#"{
  "methodConfig": [
    {
      "name": [
        {"service": "a.v1.Svc", "method": "Tuned"}
      ],
      "retryPolicy": {
        "maxAttempts": 4,
        "initialBackoff": "0.05s",
        "maxBackoff": "1.5s",
        "backoffMultiplier": 1.3,
        "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]
      }
    },
    {
      "name": [
        {"service": "a.v1.Svc", "method": "Read"}
      ],
      "retryPolicy": {
        "maxAttempts": 5,
        "initialBackoff": "0.1s",
        "maxBackoff": "1s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"]
      }
    }
  ]
}
"#
        );
    }

    #[test]
    fn the_manifest_lists_the_methods_with_frames() {
        assert_eq!(
            manifest(&model()),
            r#"{
  "version": 1,
  "methods": {
    "/a.v1.Svc/Slow": {"heartbeat_ms": 500, "request_blob": false, "response_blob": false, "idempotent": false},
    "/a.v1.Svc/Read": {"heartbeat_ms": 0, "request_blob": true, "response_blob": false, "idempotent": true}
  }
}
"#
        );
    }

    #[test]
    fn with_nothing_to_say_both_are_written_empty() {
        let empty = Model::default();
        assert_eq!(service_config(&empty), "{\n  \"methodConfig\": []\n}\n");
        assert_eq!(
            manifest(&empty),
            "{\n  \"version\": 1,\n  \"methods\": {}\n}\n"
        );
    }

    #[test]
    fn durations_are_proto3_json_seconds() {
        let text = |ms| match duration(ms) {
            Json::String(text) => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(text(100), "0.1s");
        assert_eq!(text(5), "0.005s");
        assert_eq!(text(1000), "1s");
        assert_eq!(text(1250), "1.25s");
        assert_eq!(text(3_600_000), "3600s");
    }

    #[test]
    fn multipliers_are_the_shortest_decimal() {
        assert_eq!(multiplier(2.0), "2");
        assert_eq!(multiplier(f64::from(1.3f32)), "1.3");
        assert_eq!(multiplier(1.3), "1.3");
        assert_eq!(multiplier(1.0e-7), "0.0000001");
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }
}
