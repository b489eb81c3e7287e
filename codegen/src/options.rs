//! Resolves steadfast settings: `(steadfast.v1.method)` / `(steadfast.v1.service)`
//! options read from the descriptors, overridden by builder settings, validated,
//! into one [`MethodOptions`] per method (a [`Plan`]) — what the wire rewrite
//! must do to it, and what the generated code does with it.
//!
//! An option is spelled twice here: as read ([`RawOptions`], each value with
//! where it was set) and as resolved ([`MethodOptions`], which the model
//! carries to the generators).

use std::{collections::BTreeMap, time::Duration};

use heck::ToSnakeCase;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};

use crate::Error;

/// Heartbeat intervals below this are rejected: they would flood the wire.
pub(crate) const MIN_HEARTBEAT_MS: u32 = 10;
/// Heartbeat intervals above this are rejected: no proxy waits that long.
pub(crate) const MAX_HEARTBEAT_MS: u32 = 3_600_000;

/// What steadfast does to one method: its options resolved (the method's own,
/// its service's defaults, builder settings) and validated. The default is
/// every option off, a method steadfast leaves alone (so an option's `off` must
/// be its type's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MethodOptions {
    /// Heartbeat interval; `None` = no heartbeats.
    pub(crate) heartbeat: Option<Duration>,
    /// The request carries a blob (only on unary methods).
    pub(crate) request_blob: bool,
    /// The response carries a blob (only on unary methods).
    pub(crate) response_blob: bool,
    /// The generated client's retry policy; `None` = the runtime's default.
    pub(crate) retry: Option<RetryPlan>,
    /// The method may be retried after it reached the server.
    pub(crate) idempotent: bool,
}

impl MethodOptions {
    /// Every option off: steadfast leaves the method alone.
    fn is_plain(&self) -> bool {
        *self == MethodOptions::default()
    }

    /// Steadfast changes the method's wire shape (heartbeat frames, blob
    /// uploads or downloads): its calls get the runtime's `FrameCodec`.
    pub(crate) fn has_frames(&self) -> bool {
        self.heartbeat.is_some() || self.request_blob || self.response_blob
    }
}

/// A retry policy as resolved: validated, defaults filled in, ready to be
/// written into the generated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RetryPlan {
    pub(crate) max_attempts: u32,
    pub(crate) attempt_limit: u32,
    pub(crate) initial_backoff_ms: u64,
    pub(crate) max_backoff_ms: u64,
    /// `f64::to_bits` of the multiplier (so the plan stays `Eq`).
    pub(crate) multiplier_bits: u64,
    /// Canonical code names (`UNAVAILABLE`), in the order given, no repeats.
    pub(crate) codes: Vec<&'static str>,
}

impl RetryPlan {
    pub(crate) fn multiplier(&self) -> f64 {
        f64::from_bits(self.multiplier_bits)
    }

    /// The attempts a call gets: `max_attempts`, capped at `attempt_limit`.
    pub(crate) fn attempts(&self) -> u32 {
        self.max_attempts.min(self.attempt_limit)
    }

    /// The policy a generated client gives a method that sets none: the
    /// runtime's `RetryPolicy::default()`, which [`RetryPolicy::new`] resolves
    /// to (5 attempts, 100 ms doubling up to 1 s, `UNAVAILABLE`).
    pub(crate) fn runtime_default() -> RetryPlan {
        RetryPlan {
            max_attempts: 5,
            attempt_limit: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 1000,
            multiplier_bits: 2.0f64.to_bits(),
            codes: vec!["UNAVAILABLE"],
        }
    }
}

/// The gRPC status codes by their names in the gRPC spec, in code order.
pub(crate) const CODE_NAMES: [&str; 17] = [
    "OK",
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

/// A retry policy for [`Builder::retry`](crate::Builder::retry), the
/// `(steadfast.v1.method).retry` option in Rust: gRFC A6's `retryPolicy`. A
/// field not set takes the default (5 attempts, 100 ms initial backoff, 1 s
/// max backoff, multiplier 2, retrying `UNAVAILABLE`); the values are checked
/// when the protos are compiled, and one out of range fails the build naming
/// the method and the field.
///
/// ```no_run
/// use std::time::Duration;
///
/// steadfast_build::configure()
///     .retry(
///         "lab.v1.Lab",
///         steadfast_build::RetryPolicy::new()
///             .max_attempts(4)
///             .initial_backoff(Duration::from_millis(50))
///             .retryable_codes(["UNAVAILABLE", "RESOURCE_EXHAUSTED"]),
///     )
///     .idempotent("lab.v1.Lab/Sleep")
///     .compile_protos(&["proto/lab.proto"], &["proto"])?;
/// # Ok::<(), steadfast_build::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryPolicy {
    max_attempts: Option<u32>,
    attempt_limit: Option<u32>,
    initial_backoff: Option<Duration>,
    max_backoff: Option<Duration>,
    backoff_multiplier: Option<f64>,
    retryable_codes: Vec<String>,
}

impl RetryPolicy {
    /// Every field at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attempts per call, the first included (at least 2; more than the
    /// [attempt limit](Self::attempt_limit) is capped to it).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// The cap on `max_attempts` (default 5, gRPC's); raise it to allow more.
    pub fn attempt_limit(mut self, limit: u32) -> Self {
        self.attempt_limit = Some(limit);
        self
    }

    /// The upper bound of the first retry's delay (whole milliseconds, > 0).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = Some(backoff);
        self
    }

    /// The largest upper bound of a retry's delay (whole milliseconds, > 0).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = Some(backoff);
        self
    }

    /// The factor the delay bound grows by with each retry (finite, > 0).
    pub fn backoff_multiplier(mut self, multiplier: f64) -> Self {
        self.backoff_multiplier = Some(multiplier);
        self
    }

    /// The codes to retry, by their names in the gRPC spec (`"UNAVAILABLE"`,
    /// any case); replaces the default set.
    pub fn retryable_codes<I>(mut self, codes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.retryable_codes = codes.into_iter().map(Into::into).collect();
        self
    }

    /// Validates the policy and fills in the defaults.
    fn resolve(&self, target: &str) -> Result<RetryPlan, Error> {
        let invalid = |field: &str, problem: String| Error::InvalidOption {
            target: target.to_owned(),
            message: format!("retry.{field} {problem}"),
        };
        let millis = |field: &str, value: Option<Duration>, default: u64| match value {
            None => Ok(default),
            Some(d) if d.is_zero() => Err(invalid(field, "must be greater than 0".to_owned())),
            Some(d) if d.subsec_nanos() % 1_000_000 != 0 => Err(invalid(
                field,
                format!("must be whole milliseconds, got {d:?}"),
            )),
            Some(d) => u64::try_from(d.as_millis())
                .map_err(|_| invalid(field, format!("is too long: {d:?}"))),
        };
        let max_attempts = self.max_attempts.unwrap_or(5);
        if max_attempts < 2 {
            return Err(invalid(
                "max_attempts",
                format!("must be at least 2, got {max_attempts}"),
            ));
        }
        let attempt_limit = self.attempt_limit.unwrap_or(5);
        if attempt_limit < 1 {
            return Err(invalid(
                "attempt_limit",
                "must be at least 1, got 0".to_owned(),
            ));
        }
        let initial_backoff_ms = millis("initial_backoff_ms", self.initial_backoff, 100)?;
        let max_backoff_ms = millis("max_backoff_ms", self.max_backoff, 1000)?;
        let multiplier = self.backoff_multiplier.unwrap_or(2.0);
        if !(multiplier.is_finite() && multiplier > 0.0) {
            return Err(invalid(
                "backoff_multiplier",
                format!("must be a finite number greater than 0, got {multiplier}"),
            ));
        }
        let mut codes = Vec::new();
        for given in &self.retryable_codes {
            let Some(name) = CODE_NAMES
                .iter()
                .find(|name| name.eq_ignore_ascii_case(given.trim()))
            else {
                return Err(invalid(
                    "retryable_status_codes",
                    format!(
                        "has `{given}`, which is not a gRPC status code (one of {})",
                        CODE_NAMES[1..].join(", ")
                    ),
                ));
            };
            if *name == "OK" {
                return Err(invalid(
                    "retryable_status_codes",
                    "must not contain OK".to_owned(),
                ));
            }
            if !codes.contains(name) {
                codes.push(*name);
            }
        }
        if codes.is_empty() {
            codes.push("UNAVAILABLE");
        }
        Ok(RetryPlan {
            max_attempts,
            attempt_limit,
            initial_backoff_ms,
            max_backoff_ms,
            multiplier_bits: multiplier.to_bits(),
            codes,
        })
    }

    /// The policy of an option's `RetryPolicy` message (0 and empty = default).
    fn from_message(msg: &DynamicMessage) -> RetryPolicy {
        let number = |name: &str| {
            msg.get_field_by_name(name)
                .and_then(|v| v.as_u32())
                .filter(|n| *n != 0)
        };
        let millis = |name: &str| number(name).map(|ms| Duration::from_millis(u64::from(ms)));
        let multiplier = msg
            .get_field_by_name("backoff_multiplier")
            .and_then(|v| v.as_f32())
            .filter(|m| *m != 0.0)
            .map(f64::from);
        let codes = msg
            .get_field_by_name("retryable_status_codes")
            .and_then(|v| {
                v.as_list().map(|list| {
                    list.iter()
                        .filter_map(|code| code.as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                })
            })
            .unwrap_or_default();
        RetryPolicy {
            max_attempts: number("max_attempts"),
            attempt_limit: number("attempt_limit"),
            initial_backoff: millis("initial_backoff_ms"),
            max_backoff: millis("max_backoff_ms"),
            backoff_multiplier: multiplier,
            retryable_codes: codes,
        }
    }
}

/// The steadfast treatment of every method that gets one, keyed by service
/// full name (`lab.v1.Lab`) then method name (`Sleep`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) services: BTreeMap<String, BTreeMap<String, MethodOptions>>,
}

/// A setting given to the builder (for protos the user cannot edit).
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    /// As given: `pkg.Service/Method`, `pkg.Service.Method` or `pkg.Service`.
    pub(crate) target: String,
    pub(crate) value: SettingValue,
}

/// What a builder [`Setting`] sets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SettingValue {
    /// `heartbeat_ms` (`Duration::ZERO` = off).
    Heartbeat(Duration),
    /// `request_blob: true`.
    RequestBlob,
    /// `response_blob: true`.
    ResponseBlob,
    /// `retry: { ... }`.
    Retry(RetryPolicy),
    /// `idempotent: true`.
    Idempotent,
}

/// Where a method's blob setting came from, for the error when it cannot apply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// The method's own `(steadfast.v1.method)` option.
    Method,
    /// The `(steadfast.v1.service)` option of its service.
    Service,
    /// A builder call, with the target as given.
    Builder(String),
}

impl Origin {
    /// Where the option was set and how to undo it, after the reason it cannot apply.
    fn fix(&self, option: &str) -> String {
        match self {
            Origin::Method => "; remove the option from this method".to_owned(),
            Origin::Service => format!(
                " (a default of the service's `option (steadfast.v1.service)`); set `{option}: false` on this method"
            ),
            Origin::Builder(target) => {
                format!(
                    " (set by the builder's `.{option}(\"{target}\")`); target only unary methods"
                )
            }
        }
    }
}

/// The options of one method as set so far: read from an extension value,
/// then defaults of its service's filled in and builder settings applied
/// (each blob setting with where it came from); [`RawOptions::resolve`]
/// validates them into [`MethodOptions`].
#[derive(Debug, Default, Clone)]
struct RawOptions {
    heartbeat_ms: Option<u32>,
    request_blob: Option<(bool, Origin)>,
    response_blob: Option<(bool, Origin)>,
    retry: Option<RetryPolicy>,
    idempotent: Option<bool>,
}

impl RawOptions {
    /// The fields set in the extension `ext_name` of `options`, as set at `origin`.
    fn read(
        options: &DynamicMessage,
        ext_name: &str,
        origin: Origin,
        pool: &DescriptorPool,
    ) -> RawOptions {
        let Some(ext) = pool.get_extension_by_name(ext_name) else {
            return RawOptions::default();
        };
        if !options.has_extension(&ext) {
            return RawOptions::default();
        }
        let value = options.get_extension(&ext);
        let Some(msg) = value.as_message() else {
            return RawOptions::default();
        };
        let field = |name: &str| {
            msg.has_field_by_name(name)
                .then(|| msg.get_field_by_name(name))
                .flatten()
        };
        let blob = |name: &str| {
            field(name)
                .and_then(|v| v.as_bool())
                .map(|on| (on, origin.clone()))
        };
        RawOptions {
            heartbeat_ms: field("heartbeat_ms").and_then(|v| v.as_u32()),
            request_blob: blob("request_blob"),
            response_blob: blob("response_blob"),
            retry: field("retry").and_then(|v| v.as_message().map(RetryPolicy::from_message)),
            idempotent: field("idempotent").and_then(|v| v.as_bool()),
        }
    }

    /// These options, with `defaults` for every field they do not set (a
    /// method's own value wins, field by field).
    fn or(self, defaults: &RawOptions) -> RawOptions {
        RawOptions {
            heartbeat_ms: self.heartbeat_ms.or(defaults.heartbeat_ms),
            request_blob: self.request_blob.or_else(|| defaults.request_blob.clone()),
            response_blob: self
                .response_blob
                .or_else(|| defaults.response_blob.clone()),
            retry: self.retry.or_else(|| defaults.retry.clone()),
            idempotent: self.idempotent.or(defaults.idempotent),
        }
    }

    /// Validates the options of `method` (`target` names it in errors).
    fn resolve(&self, method: &MethodDescriptor, target: &str) -> Result<MethodOptions, Error> {
        let target = target.to_owned();
        let heartbeat = match self.heartbeat_ms {
            None | Some(0) => None,
            Some(ms) if ms < MIN_HEARTBEAT_MS => {
                return Err(Error::InvalidOption {
                    target,
                    message: format!(
                        "heartbeat_ms = {ms} is too small: use 0 (off) or at least {MIN_HEARTBEAT_MS}"
                    ),
                });
            }
            Some(ms) if ms > MAX_HEARTBEAT_MS => {
                return Err(Error::InvalidOption {
                    target,
                    message: format!(
                        "heartbeat_ms = {ms} is too large: at most {MAX_HEARTBEAT_MS} (1 hour)"
                    ),
                });
            }
            Some(ms) => Some(Duration::from_millis(u64::from(ms))),
        };
        let request_blob = blob_on(method, &target, "request_blob", &self.request_blob)?;
        let response_blob = blob_on(method, &target, "response_blob", &self.response_blob)?;
        let retry = match &self.retry {
            Some(policy) => Some(policy.resolve(&target)?),
            None => None,
        };
        Ok(MethodOptions {
            heartbeat,
            request_blob,
            response_blob,
            retry,
            idempotent: self.idempotent.unwrap_or(false),
        })
    }
}

/// Reads the options of every service in `pool` (except steadfast's and
/// google's own), applies `settings`, validates, and returns the plan.
pub(crate) fn plan(pool: &DescriptorPool, settings: &[Setting]) -> Result<Plan, Error> {
    let mut plan = Plan::default();
    let mut known = Vec::new();
    let mut by_service: BTreeMap<String, Vec<(MethodDescriptor, RawOptions)>> = BTreeMap::new();

    for service in pool.services() {
        let package = service.package_name();
        if package.starts_with("google.protobuf") || package == "steadfast.v1" {
            continue;
        }
        let service_name = service.full_name().to_owned();
        let defaults = RawOptions::read(
            &service.options(),
            "steadfast.v1.service",
            Origin::Service,
            pool,
        );
        let mut methods = Vec::new();
        for method in service.methods() {
            known.push(format!("{service_name}/{}", method.name()));
            let own = RawOptions::read(
                &method.options(),
                "steadfast.v1.method",
                Origin::Method,
                pool,
            );
            methods.push((method, own.or(&defaults)));
        }
        by_service.insert(service_name, methods);
    }

    // Builder settings: service-wide first, then per method, so a method wins.
    let mut resolved: Vec<(String, Option<String>, &Setting)> = Vec::new();
    for setting in settings {
        let Some((service, method)) = split_target(&setting.target, &by_service) else {
            return Err(Error::UnknownMethod {
                name: setting.target.clone(),
                known,
            });
        };
        let Some(methods) = by_service.get(&service) else {
            return Err(Error::UnknownMethod {
                name: setting.target.clone(),
                known,
            });
        };
        if let Some(m) = &method
            && !methods
                .iter()
                .any(|(descriptor, _)| descriptor.name() == *m)
        {
            return Err(Error::UnknownMethod {
                name: setting.target.clone(),
                known,
            });
        }
        resolved.push((service, method, setting));
    }
    resolved.sort_by_key(|(_, method, _)| method.is_some());
    for (service, method, setting) in resolved {
        let target = match &method {
            Some(m) => format!("{service}/{m}"),
            None => service.clone(),
        };
        let Some(methods) = by_service.get_mut(&service) else {
            continue;
        };
        let chosen = methods
            .iter_mut()
            .filter(|(descriptor, _)| method.as_ref().is_none_or(|m| m == descriptor.name()))
            .map(|(_, raw)| raw);
        let builder = || Some((true, Origin::Builder(setting.target.clone())));
        match &setting.value {
            &SettingValue::Heartbeat(heartbeat) => {
                let ms =
                    u32::try_from(heartbeat.as_millis()).map_err(|_| Error::InvalidOption {
                        target: target.clone(),
                        message: format!(
                            "heartbeat of {heartbeat:?} is too long (at most {MAX_HEARTBEAT_MS} ms)"
                        ),
                    })?;
                chosen.for_each(|raw| raw.heartbeat_ms = Some(ms));
            }
            SettingValue::RequestBlob => chosen.for_each(|raw| raw.request_blob = builder()),
            SettingValue::ResponseBlob => chosen.for_each(|raw| raw.response_blob = builder()),
            SettingValue::Retry(policy) => {
                chosen.for_each(|raw| raw.retry = Some(policy.clone()));
            }
            SettingValue::Idempotent => chosen.for_each(|raw| raw.idempotent = Some(true)),
        }
    }

    for (service, methods) in by_service {
        let names: Vec<(String, Option<&str>)> = methods
            .iter()
            .map(|(method, _)| {
                let extra = if method.is_client_streaming() {
                    Some("session")
                } else if method.is_server_streaming() {
                    Some("resuming")
                } else {
                    None
                };
                (method.name().to_owned(), extra)
            })
            .collect();
        let rewritten = plan.services.len();
        for (method, raw) in methods {
            let options = raw.resolve(&method, &format!("{service}/{}", method.name()))?;
            if !options.is_plain() {
                plan.services
                    .entry(service.clone())
                    .or_default()
                    .insert(method.name().to_owned(), options);
            }
        }
        if plan.services.len() > rewritten {
            check_client_names(&service, &names)?;
        }
    }
    Ok(plan)
}

/// The methods of a typed client besides its rpcs (see `generate::client`).
const CLIENT_METHODS: [&str; 15] = [
    "new",
    "connect",
    "connect_lazy",
    "with_origin",
    "with_interceptor",
    "from_wire",
    "into_wire",
    "wrap",
    "send_compressed",
    "accept_compressed",
    "max_decoding_message_size",
    "max_encoding_message_size",
    "with_retry_policy",
    "with_service_config",
    "without_retries",
];

/// A rewritten service gets a typed client whose methods are its rpcs, in
/// snake_case, plus `<rpc>_session` for each rpc that streams its requests
/// and `<rpc>_resuming` for each that streams only its responses, beside the
/// client's own; an rpc named like one of those would not compile, with an
/// error in generated code.
fn check_client_names(service: &str, methods: &[(String, Option<&str>)]) -> Result<(), Error> {
    let mut taken: Vec<(String, &str)> = Vec::new();
    for (method, extra) in methods {
        let rust = method.to_snake_case();
        if CLIENT_METHODS.contains(&rust.as_str()) {
            return Err(Error::InvalidOption {
                target: format!("{service}/{method}"),
                message: format!(
                    "rpc `{method}` would be the typed client's method `{rust}`, which the client \
                     already has (its own methods: {}); rename the rpc",
                    CLIENT_METHODS.join(", ")
                ),
            });
        }
        let extra = extra.map(|suffix| format!("{rust}_{suffix}"));
        for name in std::iter::once(rust).chain(extra) {
            if let Some((_, other)) = taken.iter().find(|(taken, _)| *taken == name) {
                return Err(Error::InvalidOption {
                    target: format!("{service}/{method}"),
                    message: format!(
                        "rpcs `{other}` and `{method}` would both give the typed client a method \
                         `{name}` (each rpc that streams its requests also gets `<rpc>_session`, \
                         each that streams only its responses `<rpc>_resuming`); rename one of them"
                    ),
                });
            }
            taken.push((name, method));
        }
    }
    Ok(())
}

/// Whether the blob `option` is on for the method; an error if it is on a
/// streaming method.
fn blob_on(
    method: &MethodDescriptor,
    target: &str,
    option: &str,
    value: &Option<(bool, Origin)>,
) -> Result<bool, Error> {
    let Some((true, origin)) = value else {
        return Ok(false);
    };
    let streams = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => return Ok(true),
        (true, false) => "its request",
        (false, true) => "its response",
        (true, true) => "its request and its response",
    };
    Err(Error::InvalidOption {
        target: target.to_owned(),
        message: format!(
            "{option} is only for unary methods, but `{}` streams {streams}: a blob's chunks travel \
             in the stream that carries the method's one request or reply, and a streaming method \
             uses its streams for its own messages{}",
            method.name(),
            origin.fix(option)
        ),
    })
}

/// Resolves a builder target to (service, method): `pkg.Svc/Method`,
/// `.pkg.Svc/Method`, `pkg.Svc.Method` or `pkg.Svc` (all methods).
fn split_target<V>(
    target: &str,
    services: &BTreeMap<String, V>,
) -> Option<(String, Option<String>)> {
    let target = target.trim_start_matches('.');
    if let Some((service, method)) = target.split_once('/') {
        return Some((service.to_owned(), Some(method.to_owned())));
    }
    if services.contains_key(target) {
        return Some((target.to_owned(), None));
    }
    let (service, method) = target.rsplit_once('.')?;
    Some((service.to_owned(), Some(method.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_default_is_what_an_empty_policy_resolves_to() {
        assert_eq!(
            RetryPolicy::new()
                .resolve("lab.v1.Lab/Sleep")
                .expect("valid"),
            RetryPlan::runtime_default()
        );
    }
}
