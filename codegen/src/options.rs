//! Resolves steadfast settings: `(steadfast.v1.method)` / `(steadfast.v1.service)`
//! options read from the descriptors, overridden by builder settings, validated,
//! into a [`Plan`] — what the wire rewrite must do to each method.

use std::{collections::BTreeMap, time::Duration};

use heck::ToSnakeCase;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};

use crate::Error;

/// Heartbeat intervals below this are rejected: they would flood the wire.
pub(crate) const MIN_HEARTBEAT_MS: u32 = 10;
/// Heartbeat intervals above this are rejected: no proxy waits that long.
pub(crate) const MAX_HEARTBEAT_MS: u32 = 3_600_000;

/// What steadfast does to one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MethodPlan {
    /// Heartbeat interval; `None` = no heartbeats.
    pub(crate) heartbeat: Option<Duration>,
    /// The request carries a blob (only on unary methods).
    pub(crate) request_blob: bool,
    /// The response carries a blob (only on unary methods).
    pub(crate) response_blob: bool,
}

impl MethodPlan {
    fn is_plain(&self) -> bool {
        self.heartbeat.is_none() && !self.request_blob && !self.response_blob
    }
}

/// The steadfast treatment of every method that gets one, keyed by service
/// full name (`lab.v1.Lab`) then method name (`Sleep`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) services: BTreeMap<String, BTreeMap<String, MethodPlan>>,
}

/// A setting given to the builder (for protos the user cannot edit).
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    /// As given: `pkg.Service/Method`, `pkg.Service.Method` or `pkg.Service`.
    pub(crate) target: String,
    pub(crate) value: SettingValue,
}

/// What a builder [`Setting`] sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SettingValue {
    /// `heartbeat_ms` (`Duration::ZERO` = off).
    Heartbeat(Duration),
    /// `request_blob: true`.
    RequestBlob,
    /// `response_blob: true`.
    ResponseBlob,
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

/// Option fields as read from one extension value.
#[derive(Debug, Default, Clone)]
struct RawOptions {
    heartbeat_ms: Option<u32>,
    request_blob: Option<bool>,
    response_blob: Option<bool>,
    unsupported: Vec<&'static str>,
}

impl RawOptions {
    fn read(options: &DynamicMessage, ext_name: &str, pool: &DescriptorPool) -> RawOptions {
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
        let mut raw = RawOptions {
            heartbeat_ms: field("heartbeat_ms").and_then(|v| v.as_u32()),
            request_blob: field("request_blob").and_then(|v| v.as_bool()),
            response_blob: field("response_blob").and_then(|v| v.as_bool()),
            unsupported: Vec::new(),
        };
        for (field, what) in [
            ("retry", "retry (retry policies)"),
            ("idempotent", "idempotent (retry policies)"),
        ] {
            let set = msg.has_field_by_name(field)
                && msg
                    .get_field_by_name(field)
                    .is_some_and(|v| !matches!(v.as_ref(), Value::Bool(false)));
            if set {
                raw.unsupported.push(what);
            }
        }
        raw
    }
}

/// One method while its settings are resolved.
struct MethodState {
    name: String,
    client_streaming: bool,
    server_streaming: bool,
    heartbeat_ms: Option<u32>,
    request_blob: Option<(bool, Origin)>,
    response_blob: Option<(bool, Origin)>,
}

/// Reads the options of every service in `pool` (except steadfast's and
/// google's own), applies `settings`, validates, and returns the plan.
pub(crate) fn plan(pool: &DescriptorPool, settings: &[Setting]) -> Result<Plan, Error> {
    let mut plan = Plan::default();
    let mut known = Vec::new();
    let mut by_service: BTreeMap<String, Vec<MethodState>> = BTreeMap::new();

    for service in pool.services() {
        let package = service.package_name();
        if package.starts_with("google.protobuf") || package == "steadfast.v1" {
            continue;
        }
        let service_name = service.full_name().to_owned();
        let service_raw = RawOptions::read(&service.options(), "steadfast.v1.service", pool);
        if let Some(what) = service_raw.unsupported.first() {
            return Err(unsupported(&service_name, what));
        }
        let mut methods = Vec::new();
        for method in service.methods() {
            let target = format!("{service_name}/{}", method.name());
            let raw = RawOptions::read(&method.options(), "steadfast.v1.method", pool);
            if let Some(what) = raw.unsupported.first() {
                return Err(unsupported(&target, what));
            }
            // A method's own value wins, field by field.
            let blob = |own: Option<bool>, default: Option<bool>| {
                own.map(|on| (on, Origin::Method))
                    .or(default.map(|on| (on, Origin::Service)))
            };
            known.push(target);
            methods.push(MethodState {
                name: method.name().to_owned(),
                client_streaming: method.is_client_streaming(),
                server_streaming: method.is_server_streaming(),
                heartbeat_ms: raw.heartbeat_ms.or(service_raw.heartbeat_ms),
                request_blob: blob(raw.request_blob, service_raw.request_blob),
                response_blob: blob(raw.response_blob, service_raw.response_blob),
            });
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
            && !methods.iter().any(|state| state.name == *m)
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
            .filter(|state| method.as_ref().is_none_or(|m| *m == state.name));
        let builder = || Some((true, Origin::Builder(setting.target.clone())));
        match setting.value {
            SettingValue::Heartbeat(heartbeat) => {
                let ms =
                    u32::try_from(heartbeat.as_millis()).map_err(|_| Error::InvalidOption {
                        target: target.clone(),
                        message: format!(
                            "heartbeat of {heartbeat:?} is too long (at most {MAX_HEARTBEAT_MS} ms)"
                        ),
                    })?;
                chosen.for_each(|state| state.heartbeat_ms = Some(ms));
            }
            SettingValue::RequestBlob => chosen.for_each(|state| state.request_blob = builder()),
            SettingValue::ResponseBlob => {
                chosen.for_each(|state| state.response_blob = builder());
            }
        }
    }

    for (service, methods) in by_service {
        let names: Vec<String> = methods.iter().map(|state| state.name.clone()).collect();
        let rewritten = plan.services.len();
        for state in methods {
            let target = format!("{service}/{}", state.name);
            let heartbeat = match state.heartbeat_ms {
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
            let request_blob = blob_on(&state, &target, "request_blob", &state.request_blob)?;
            let response_blob = blob_on(&state, &target, "response_blob", &state.response_blob)?;
            let method_plan = MethodPlan {
                heartbeat,
                request_blob,
                response_blob,
            };
            if !method_plan.is_plain() {
                plan.services
                    .entry(service.clone())
                    .or_default()
                    .insert(state.name, method_plan);
            }
        }
        if plan.services.len() > rewritten {
            check_client_names(&service, &names)?;
        }
    }
    Ok(plan)
}

/// The methods of a typed client besides its rpcs (see `generate::client`).
const CLIENT_METHODS: [&str; 12] = [
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
];

/// A rewritten service gets a typed client whose methods are its rpcs, in
/// snake_case, beside the client's own; an rpc named like one of those would not
/// compile, with an error in generated code.
fn check_client_names(service: &str, methods: &[String]) -> Result<(), Error> {
    for method in methods {
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
    }
    Ok(())
}

/// Whether the blob `option` is on for the method; an error if it is on a
/// streaming method.
fn blob_on(
    state: &MethodState,
    target: &str,
    option: &str,
    value: &Option<(bool, Origin)>,
) -> Result<bool, Error> {
    let Some((true, origin)) = value else {
        return Ok(false);
    };
    let streams = match (state.client_streaming, state.server_streaming) {
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
            state.name,
            origin.fix(option)
        ),
    })
}

fn unsupported(target: &str, what: &str) -> Error {
    Error::InvalidOption {
        target: target.to_owned(),
        message: format!(
            "option {what} is not supported by steadfast-build {} yet; remove it (heartbeat_ms, request_blob and response_blob are implemented)",
            env!("CARGO_PKG_VERSION")
        ),
    }
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
