//! The retry metadata of gRFC A6: the server's `grpc-retry-pushback-ms` and the
//! client's `grpc-previous-rpc-attempts`.

use std::time::Duration;

use tonic::Status;
use tonic::metadata::{MetadataMap, MetadataValue};

/// The trailer a server sets to steer the client's retries.
pub const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// The request header that tells the server how many attempts came before.
pub const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";

/// What a failed call's `grpc-retry-pushback-ms` asks of the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushback {
    /// No pushback: the policy's backoff applies.
    None,
    /// Retry after exactly this long (if the policy allows a retry at all); the
    /// backoff after the next failure starts again from the initial backoff.
    RetryAfter(Duration),
    /// Do not retry: the value was negative, malformed, or given more than once.
    Stop,
}

impl Pushback {
    /// The pushback in a failed call's trailers.
    pub fn from_status(status: &Status) -> Pushback {
        Pushback::from_metadata(status.metadata())
    }

    /// The pushback in `metadata`. A6: the value is a decimal signed 32-bit
    /// integer of milliseconds; a negative or unparsable one (out of the 32-bit
    /// range included) asks the client not to retry, and so do several values
    /// (as grpc-go treats them).
    pub fn from_metadata(metadata: &MetadataMap) -> Pushback {
        let mut values = metadata.get_all(PUSHBACK).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return if metadata.contains_key(PUSHBACK) {
                Pushback::Stop
            } else {
                Pushback::None
            };
        };
        // A6: "an ASCII encoded signed 32-bit integer", so at most about 24.8 days.
        match value.to_str().ok().and_then(|s| s.parse::<i32>().ok()) {
            Some(ms) if ms >= 0 => {
                Pushback::RetryAfter(Duration::from_millis(u64::from(ms.unsigned_abs())))
            }
            _ => Pushback::Stop,
        }
    }
}

/// Sets `grpc-previous-rpc-attempts` to `previous` in a request's metadata, or
/// removes it when `previous` is 0 (A6: absent on the first attempt, 1 on the
/// second, ...). [`Attempt::prepare`](super::Attempt::prepare) does this for a
/// whole request.
pub fn set_previous_attempts(metadata: &mut MetadataMap, previous: u32) {
    if previous == 0 {
        metadata.remove(PREVIOUS_ATTEMPTS);
    } else {
        metadata.insert(PREVIOUS_ATTEMPTS, MetadataValue::from(previous));
    }
}
