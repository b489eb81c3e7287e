//! The [`Builder`] settings by name, for settings written as text: the protoc
//! plugin's parameter (`heartbeat=lab.v1.Lab/Sleep=500ms`) and the golden
//! cases' `settings.txt` (`heartbeat lab.v1.Lab/Sleep 500ms`) read them the same
//! way, each splitting its own syntax into a key, a target and a value.

use std::time::Duration;

use crate::{Builder, RetryPolicy};

/// What a setting takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A flag: `true` or `false`.
    Flag,
    /// One value: a target (`lab.v1.Lab/Digest`) or a path.
    One,
    /// A target and a value.
    Two,
}

/// Every setting by name, and its shape: the [`Builder`] methods that make
/// sense without a build script.
const SETTINGS: &[(&str, Shape)] = &[
    ("build_client", Shape::Flag),
    ("build_server", Shape::Flag),
    ("build_transport", Shape::Flag),
    ("emit_package", Shape::Flag),
    ("use_arc_self", Shape::Flag),
    ("generate_default_stubs", Shape::Flag),
    ("heartbeat", Shape::Two),
    ("request_blob", Shape::One),
    ("response_blob", Shape::One),
    ("retry", Shape::Two),
    ("idempotent", Shape::One),
    ("steadfast_path", Shape::One),
    ("codec_path", Shape::One),
    ("disable_comments", Shape::One),
    ("extern_path", Shape::Two),
    ("type_attribute", Shape::Two),
    ("message_attribute", Shape::Two),
    ("enum_attribute", Shape::Two),
    ("field_attribute", Shape::Two),
    ("bytes", Shape::One),
    ("btree_map", Shape::One),
    ("boxed", Shape::One),
    ("client_mod_attribute", Shape::Two),
    ("client_attribute", Shape::Two),
    ("server_mod_attribute", Shape::Two),
    ("server_attribute", Shape::Two),
    ("trait_attribute", Shape::Two),
];

/// The shape of the setting `key`; `None` for no such setting.
pub fn shape(key: &str) -> Option<Shape> {
    SETTINGS
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, shape)| *shape)
}

/// The names of every setting.
pub fn names() -> Vec<&'static str> {
    SETTINGS.iter().map(|(name, _)| *name).collect()
}

/// `builder` with the setting `key` applied: `value` alone for a
/// [`Shape::Flag`] or [`Shape::One`], `target` and `value` for a
/// [`Shape::Two`]. A heartbeat is `500ms`, `2s` or `500` (milliseconds); a
/// retry policy is space-separated `field=value` pairs of the [`RetryPolicy`]
/// methods (`max_attempts=3 initial_backoff=5ms retryable_codes=ABORTED,UNAVAILABLE`).
/// An unknown key, a missing target or a value of the wrong form is an error
/// saying so.
pub fn apply(
    builder: Builder,
    key: &str,
    target: Option<&str>,
    value: &str,
) -> Result<Builder, String> {
    let b = builder;
    Ok(match shape(key) {
        None => {
            return Err(format!(
                "unknown setting `{key}`; known: {}",
                names().join(", ")
            ));
        }
        Some(Shape::Flag) => {
            let on = match value {
                "true" => true,
                "false" => false,
                _ => return Err(format!("`{key}` wants `true` or `false`")),
            };
            match key {
                "build_client" => b.build_client(on),
                "build_server" => b.build_server(on),
                "build_transport" => b.build_transport(on),
                "emit_package" => b.emit_package(on),
                "use_arc_self" => b.use_arc_self(on),
                _ => b.generate_default_stubs(on),
            }
        }
        Some(Shape::One) => {
            if value.is_empty() {
                return Err(format!("`{key}` wants a value"));
            }
            match key {
                "request_blob" => b.request_blob(value),
                "response_blob" => b.response_blob(value),
                "idempotent" => b.idempotent(value),
                "steadfast_path" => b.steadfast_path(value),
                "codec_path" => b.codec_path(value),
                "disable_comments" => b.disable_comments(value),
                "bytes" => b.bytes(value),
                "btree_map" => b.btree_map(value),
                _ => b.boxed(value),
            }
        }
        Some(Shape::Two) => {
            let target = target
                .filter(|target| !target.is_empty())
                .ok_or_else(|| format!("`{key}` wants a target and a value"))?;
            match key {
                "heartbeat" => b.heartbeat(target, duration(value)?),
                "retry" => b.retry(target, retry_policy(value)?),
                "extern_path" => b.extern_path(target, value),
                "type_attribute" => b.type_attribute(target, value),
                "message_attribute" => b.message_attribute(target, value),
                "enum_attribute" => b.enum_attribute(target, value),
                "field_attribute" => b.field_attribute(target, value),
                "client_mod_attribute" => b.client_mod_attribute(target, value),
                "client_attribute" => b.client_attribute(target, value),
                "server_mod_attribute" => b.server_mod_attribute(target, value),
                "server_attribute" => b.server_attribute(target, value),
                _ => b.trait_attribute(target, value),
            }
        }
    })
}

/// `500ms`, `2s`, or `500` (milliseconds).
fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration like `500ms`, `2s` or `500` (ms)");
    let (number, unit) = match text.strip_suffix("ms") {
        Some(ms) => (ms, Duration::from_millis as fn(u64) -> Duration),
        None => match text.strip_suffix('s') {
            Some(s) => (s, Duration::from_secs as fn(u64) -> Duration),
            None => (text, Duration::from_millis as fn(u64) -> Duration),
        },
    };
    number.parse().map(unit).map_err(|_| bad())
}

/// Space-separated `field=value` pairs, each a [`RetryPolicy`] method.
fn retry_policy(text: &str) -> Result<RetryPolicy, String> {
    let mut policy = RetryPolicy::new();
    for pair in text.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not `key=value`"))?;
        let number = || format!("`{value}` is not a number");
        policy = match key {
            "max_attempts" => policy.max_attempts(value.parse().map_err(|_| number())?),
            "attempt_limit" => policy.attempt_limit(value.parse().map_err(|_| number())?),
            "initial_backoff" => policy.initial_backoff(duration(value)?),
            "max_backoff" => policy.max_backoff(duration(value)?),
            "backoff_multiplier" => policy.backoff_multiplier(value.parse().map_err(|_| number())?),
            "retryable_codes" => policy.retryable_codes(value.split(',')),
            _ => {
                return Err(format!(
                    "`{key}` is no retry setting; known: max_attempts, attempt_limit, \
                     initial_backoff, max_backoff, backoff_multiplier, retryable_codes"
                ));
            }
        };
    }
    Ok(policy)
}
