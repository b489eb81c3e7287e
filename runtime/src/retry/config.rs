//! [`ServiceConfig`]: the retry settings of a standard gRPC service config JSON.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use tonic::Code;

use super::policy::{CODE_NAMES, PolicyError, RetryPolicy};
use super::throttle::RetryThrottle;

/// The retry settings of a gRPC service config (the JSON that grpc-go, grpcio
/// and grpc-java read), so that a team can reuse the config it already has.
///
/// Read: `methodConfig[]` with its `name[]`, `retryPolicy`, `timeout` and
/// `waitForReady`, and `retryThrottling`. Everything else
/// (`loadBalancingConfig`, message size limits, ...) is ignored; so is a `hedgingPolicy`, which
/// steadfast does not implement (with a warning in the log).
///
/// A method's config is found as gRPC finds it: the entry naming the service
/// and method, else the one naming the service alone (no or empty `method`),
/// else the default one (an empty name, `{}`). The entry found is the method's
/// whole config: an exact entry without a `retryPolicy` means no retries, even
/// if the service's entry has one.
///
/// ```
/// use steadfast::retry::ServiceConfig;
///
/// let config = ServiceConfig::from_json(r#"{
///   "methodConfig": [{
///     "name": [{ "service": "lab.v1.Lab" }],
///     "retryPolicy": {
///       "maxAttempts": 4,
///       "initialBackoff": "0.1s",
///       "maxBackoff": "1s",
///       "backoffMultiplier": 2,
///       "retryableStatusCodes": ["UNAVAILABLE"]
///     }
///   }],
///   "retryThrottling": { "maxTokens": 10, "tokenRatio": 0.1 }
/// }"#)?;
/// let policy = config.policy_for("lab.v1.Lab", "Sleep").expect("service-wide");
/// assert_eq!(policy.max_attempts(), 4);
/// assert!(config.retry_throttle().is_some());
/// # Ok::<(), steadfast::retry::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceConfig {
    /// Method configs by service, then by method (`""`: the whole service),
    /// so that a call finds its own without building a key.
    methods: HashMap<String, HashMap<String, MethodConfig>>,
    /// The config of a name with neither service nor method.
    default: Option<MethodConfig>,
    /// `(maxTokens, tokenRatio)`, validated.
    throttling: Option<(f64, f64)>,
}

/// One `methodConfig[]` entry: what steadfast reads of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodConfig {
    retry_policy: Option<RetryPolicy>,
    timeout: Option<Duration>,
    wait_for_ready: Option<bool>,
}

impl MethodConfig {
    /// Its `retryPolicy`, if it has one.
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.retry_policy.as_ref()
    }

    /// Its `timeout`: the deadline of a call that sets none.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Its `waitForReady`: whether a call waits for a server to be ready
    /// (see the [module docs](super#wait-for-ready)) unless the client or the
    /// call says otherwise.
    pub fn wait_for_ready(&self) -> Option<bool> {
        self.wait_for_ready
    }
}

impl ServiceConfig {
    /// Parses and validates a service config. Errors name the field path
    /// (`methodConfig[0].retryPolicy.maxAttempts: must be greater than 1, got 1`):
    /// not JSON, a value of the wrong type, a required retry field missing, a
    /// value out of range (as [`RetryPolicyBuilder::build`] and
    /// [`RetryThrottle::new`] check), an unknown status code, a malformed
    /// duration, a name with a `method` but no `service`, or a name given twice.
    ///
    /// `maxAttempts` above 5 is capped to 5, as in gRPC; raise a policy's cap
    /// with [`RetryPolicy::to_builder`].
    ///
    /// [`RetryPolicyBuilder::build`]: super::RetryPolicyBuilder::build
    pub fn from_json(json: &str) -> Result<ServiceConfig, ConfigError> {
        let json_error = |path: String, e| ConfigError {
            path,
            kind: ConfigErrorKind::Json(e),
        };
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| json_error(String::new(), e))?;
        if !value.is_object() {
            let e = <serde_json::Error as serde::de::Error>::custom("expected a JSON object");
            return Err(json_error(String::new(), e));
        }
        let raw: RawConfig = serde_path_to_error::deserialize(value)
            .map_err(|e| json_error(e.path().to_string(), e.into_inner()))?;
        raw.validate()
    }

    /// The config of method `method` of service `service` (full name, such as
    /// `lab.v1.Lab`), by gRPC's precedence (see above).
    pub fn method_config(&self, service: &str, method: &str) -> Option<&MethodConfig> {
        let methods = self.methods.get(service);
        methods
            .and_then(|methods| methods.get(method).or_else(|| methods.get("")))
            .or(self.default.as_ref())
    }

    /// The retry policy of `service`/`method`, if its config has one.
    pub fn policy_for(&self, service: &str, method: &str) -> Option<&RetryPolicy> {
        self.method_config(service, method)?.retry_policy()
    }

    /// A new, full throttle with the config's `retryThrottling`, if it has
    /// one. Make one per channel (server name) and share it by cloning.
    pub fn retry_throttle(&self) -> Option<RetryThrottle> {
        let (max_tokens, token_ratio) = self.throttling?;
        // Validated when parsed.
        RetryThrottle::new(max_tokens, token_ratio).ok()
    }
}

/// A service config that cannot be used, with the path of the field at fault.
#[derive(Debug)]
pub struct ConfigError {
    path: String,
    kind: ConfigErrorKind,
}

/// What is wrong in a [`ConfigError`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// Not JSON, a value of the wrong type, an unknown status code or a
    /// malformed duration.
    Json(serde_json::Error),
    /// A required field is missing.
    Missing,
    /// A value out of range.
    Invalid(PolicyError),
    /// A name with a `method` but no `service`.
    MethodWithoutService,
    /// A name given in two entries (or twice in one).
    DuplicateName {
        /// Where it was first given (`methodConfig[0].name[1]`).
        first: String,
    },
}

impl ConfigError {
    /// The path of the field at fault (`methodConfig[0].retryPolicy.maxAttempts`);
    /// empty for an error in the JSON syntax.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str("service config: ")?;
        } else {
            write!(f, "{}: ", self.path)?;
        }
        match &self.kind {
            ConfigErrorKind::Json(e) => write!(f, "{e}"),
            ConfigErrorKind::Missing => f.write_str("required"),
            ConfigErrorKind::Invalid(e) => f.write_str(&e.problem()),
            ConfigErrorKind::MethodWithoutService => {
                f.write_str("a name with a method must have a service")
            }
            ConfigErrorKind::DuplicateName { first } => {
                write!(f, "duplicate name, already given at {first}")
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ConfigErrorKind::Json(e) => Some(e),
            ConfigErrorKind::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    method_config: Option<Vec<RawMethodConfig>>,
    #[serde(default)]
    retry_throttling: Option<RawThrottling>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMethodConfig {
    #[serde(default)]
    name: Option<Vec<RawName>>,
    #[serde(default)]
    retry_policy: Option<RawRetryPolicy>,
    #[serde(default)]
    hedging_policy: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    timeout: Option<JsonDuration>,
    #[serde(default)]
    wait_for_ready: Option<bool>,
}

#[derive(Deserialize)]
struct RawName {
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    method: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRetryPolicy {
    #[serde(default)]
    max_attempts: Option<i64>,
    #[serde(default)]
    initial_backoff: Option<JsonDuration>,
    #[serde(default)]
    max_backoff: Option<JsonDuration>,
    #[serde(default)]
    backoff_multiplier: Option<f64>,
    #[serde(default)]
    retryable_status_codes: Option<Vec<JsonCode>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThrottling {
    #[serde(default)]
    max_tokens: Option<f64>,
    #[serde(default)]
    token_ratio: Option<f64>,
}

impl RawConfig {
    fn validate(self) -> Result<ServiceConfig, ConfigError> {
        let mut config = ServiceConfig::default();
        // Where each name was first given, for the duplicate error.
        let mut seen: HashMap<String, String> = HashMap::new();
        for (i, entry) in self.method_config.into_iter().flatten().enumerate() {
            let at = format!("methodConfig[{i}]");
            // grpc-go skips an entry without names.
            let Some(names) = entry.name else { continue };
            if entry.hedging_policy.is_some() {
                tracing::warn!("{at}.hedgingPolicy ignored: steadfast does not hedge calls");
            }
            let method_config = MethodConfig {
                retry_policy: entry
                    .retry_policy
                    .map(|p| p.validate(&format!("{at}.retryPolicy")))
                    .transpose()?,
                timeout: entry.timeout.map(|t| t.0),
                wait_for_ready: entry.wait_for_ready,
            };
            for (j, name) in names.into_iter().enumerate() {
                let name_at = format!("{at}.name[{j}]");
                let service = name.service.unwrap_or_default();
                let method = name.method.unwrap_or_default();
                let key = match (service.is_empty(), method.is_empty()) {
                    (true, false) => {
                        return Err(error(name_at, ConfigErrorKind::MethodWithoutService));
                    }
                    (true, true) => String::new(),
                    (false, _) => format!("{service}/{method}"),
                };
                if let Some(first) = seen.get(&key) {
                    let first = first.clone();
                    return Err(error(name_at, ConfigErrorKind::DuplicateName { first }));
                }
                seen.insert(key, name_at);
                if service.is_empty() {
                    config.default = Some(method_config.clone());
                } else {
                    config
                        .methods
                        .entry(service)
                        .or_default()
                        .insert(method, method_config.clone());
                }
            }
        }
        if let Some(throttling) = self.retry_throttling {
            let max_tokens = required(throttling.max_tokens, "retryThrottling.maxTokens")?;
            let token_ratio = required(throttling.token_ratio, "retryThrottling.tokenRatio")?;
            RetryThrottle::new(max_tokens, token_ratio)
                .map_err(|e| invalid("retryThrottling", e))?;
            config.throttling = Some((max_tokens, token_ratio));
        }
        Ok(config)
    }
}

impl RawRetryPolicy {
    fn validate(self, at: &str) -> Result<RetryPolicy, ConfigError> {
        let field = |name: &str| format!("{at}.{name}");
        let max_attempts = required(self.max_attempts, &field("maxAttempts"))?;
        let initial_backoff = required(self.initial_backoff, &field("initialBackoff"))?;
        let max_backoff = required(self.max_backoff, &field("maxBackoff"))?;
        let multiplier = required(self.backoff_multiplier, &field("backoffMultiplier"))?;
        let codes = required(self.retryable_status_codes, &field("retryableStatusCodes"))?;
        if max_attempts < 2 {
            return Err(invalid(at, PolicyError::MaxAttempts(max_attempts)));
        }
        // More than u32 is capped to the attempt limit anyway.
        let max_attempts = u32::try_from(max_attempts).unwrap_or(u32::MAX);
        RetryPolicy::builder()
            .max_attempts(max_attempts)
            .initial_backoff(initial_backoff.0)
            .max_backoff(max_backoff.0)
            .backoff_multiplier(multiplier)
            .retryable_codes(codes.into_iter().map(|c| c.0))
            .build()
            .map_err(|e| invalid(at, e))
    }
}

fn error(path: String, kind: ConfigErrorKind) -> ConfigError {
    ConfigError { path, kind }
}

fn required<T>(value: Option<T>, path: &str) -> Result<T, ConfigError> {
    value.ok_or_else(|| error(path.to_owned(), ConfigErrorKind::Missing))
}

fn invalid(at: &str, e: PolicyError) -> ConfigError {
    error(format!("{at}.{}", e.field()), ConfigErrorKind::Invalid(e))
}

/// A status code: its name (`"UNAVAILABLE"`) or its number (`14`).
struct JsonCode(Code);

impl<'de> Deserialize<'de> for JsonCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CodeVisitor;
        impl Visitor<'_> for CodeVisitor {
            type Value = JsonCode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status code name such as \"UNAVAILABLE\", or a number 0..=16")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<JsonCode, E> {
                match i32::try_from(n) {
                    Ok(n) if n <= 16 => Ok(JsonCode(Code::from(n))),
                    _ => Err(E::custom(format!(
                        "unknown status code {n}, expected 0..=16"
                    ))),
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<JsonCode, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!(
                        "unknown status code {n}, expected 0..=16"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<JsonCode, E> {
                match CODE_NAMES.iter().position(|known| *known == name) {
                    Some(n) => Ok(JsonCode(Code::from(n as i32))),
                    None => Err(E::custom(format!(
                        "unknown status code name {name:?} (names are upper case, like \"UNAVAILABLE\")"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(CodeVisitor)
    }
}

/// A duration in the proto3 JSON form: decimal seconds with an `s`
/// (`"1.5s"`, `".1s"`, `"0s"`), at most 9 fractional digits.
struct JsonDuration(Duration);

impl<'de> Deserialize<'de> for JsonDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(JsonDuration)
            .map_err(de::Error::custom)
    }
}

/// Parses a proto3 JSON duration; the error says what is wrong with `text`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let malformed = |why: &str| format!("malformed duration {text:?}: {why}");
    let Some(number) = text.strip_suffix('s') else {
        return Err(malformed(
            "expected decimal seconds ending in `s`, like \"0.1s\"",
        ));
    };
    if number.starts_with('-') {
        return Err(format!("must not be negative, got {text:?}"));
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(malformed(
            "expected decimal seconds ending in `s`, like \"0.1s\"",
        ));
    }
    if fraction.len() > 9 {
        return Err(malformed("more than 9 fractional digits"));
    }
    // proto3's Duration range.
    const MAX_SECONDS: u64 = 315_576_000_000;
    let secs = match whole {
        "" => 0,
        whole => whole
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= MAX_SECONDS)
            .ok_or_else(|| malformed("out of range"))?,
    };
    let nanos = format!("{fraction:0<9}").parse::<u32>().unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}
