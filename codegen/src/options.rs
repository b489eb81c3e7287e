//! Resolves steadfast settings: `(steadfast.v1.method)` / `(steadfast.v1.service)`
//! options read from the descriptors, overridden by builder settings, validated,
//! into a [`Plan`] — what the wire rewrite must do to each method.

use std::{collections::BTreeMap, time::Duration};

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
}

impl MethodPlan {
    fn is_plain(&self) -> bool {
        self.heartbeat.is_none()
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
    pub(crate) heartbeat: Duration,
}

/// Option fields as read from one extension value.
#[derive(Debug, Default, Clone)]
struct RawOptions {
    heartbeat_ms: Option<u32>,
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
        let mut raw = RawOptions {
            heartbeat_ms: msg
                .has_field_by_name("heartbeat_ms")
                .then(|| msg.get_field_by_name("heartbeat_ms"))
                .flatten()
                .and_then(|v| v.as_u32()),
            unsupported: Vec::new(),
        };
        for (field, what) in [
            ("request_blob", "request_blob (chunked blobs)"),
            ("response_blob", "response_blob (chunked blobs)"),
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

/// Reads the options of every service in `pool` (except steadfast's and
/// google's own), applies `settings`, validates, and returns the plan.
pub(crate) fn plan(pool: &DescriptorPool, settings: &[Setting]) -> Result<Plan, Error> {
    let mut plan = Plan::default();
    let mut known = Vec::new();
    let mut by_service: BTreeMap<String, Vec<(String, Option<u32>)>> = BTreeMap::new();

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
            let heartbeat_ms = raw.heartbeat_ms.or(service_raw.heartbeat_ms);
            known.push(target);
            methods.push((method.name().to_owned(), heartbeat_ms));
        }
        by_service.insert(service_name, methods);
    }

    // Builder settings: service-wide first, then per method, so a method wins.
    let mut resolved: Vec<(String, Option<String>, Duration)> = Vec::new();
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
            && !methods.iter().any(|(name, _)| name == m)
        {
            return Err(Error::UnknownMethod {
                name: setting.target.clone(),
                known,
            });
        }
        resolved.push((service, method, setting.heartbeat));
    }
    resolved.sort_by_key(|(_, method, _)| method.is_some());
    for (service, method, heartbeat) in resolved {
        let target = match &method {
            Some(m) => format!("{service}/{m}"),
            None => service.clone(),
        };
        let ms = u32::try_from(heartbeat.as_millis()).map_err(|_| Error::InvalidOption {
            target: target.clone(),
            message: format!(
                "heartbeat of {heartbeat:?} is too long (at most {MAX_HEARTBEAT_MS} ms)"
            ),
        })?;
        if let Some(methods) = by_service.get_mut(&service) {
            for (name, value) in methods.iter_mut() {
                if method.as_ref().is_none_or(|m| m == name) {
                    *value = Some(ms);
                }
            }
        }
    }

    for (service, methods) in by_service {
        for (method, heartbeat_ms) in methods {
            let target = format!("{service}/{method}");
            let heartbeat = match heartbeat_ms {
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
            let method_plan = MethodPlan { heartbeat };
            if !method_plan.is_plain() {
                plan.services
                    .entry(service.clone())
                    .or_default()
                    .insert(method, method_plan);
            }
        }
    }
    Ok(plan)
}

fn unsupported(target: &str, what: &str) -> Error {
    Error::InvalidOption {
        target: target.to_owned(),
        message: format!(
            "option {what} is not supported by steadfast-build {} yet; remove it (only heartbeat_ms is implemented)",
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
