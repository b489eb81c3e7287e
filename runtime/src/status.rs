//! Statuses that say what happened when a call failed below gRPC: the
//! connection was lost, or something on the way (a proxy) answered instead of
//! the gRPC server.
//!
//! tonic 0.14 reports such failures with codes and messages that hide the
//! cause: a server killed during a call, or a proxy cutting the connection,
//! gives `UNKNOWN "transport error"` or `UNKNOWN "h2 protocol error: error
//! reading a body from connection"`; an HTML error page from nginx gives
//! `INTERNAL "protocol error: received message with invalid compression flag:
//! 60 …"`. [`from_transport`] turns them into the codes gRPC specifies, with a
//! message that says what happened and what to change (and for a lost
//! connection or a reset, tonic's detail):
//!
//! | What happened | Code | Message |
//! |---|---|---|
//! | the connection broke during the call (an I/O error, an HTTP/2 GOAWAY), or closed while the call waited for it (hyper's "operation was canceled", tonic's `CANCELLED`) or for a stream on it (hyper's "dispatch task is gone", tonic's `UNKNOWN` "transport error") | `UNAVAILABLE` (as grpc-go) | `connection lost: …` |
//! | an HTTP response that is not gRPC (no `grpc-status`, not `application/grpc`), such as a proxy's error page | by gRPC's [HTTP to gRPC status mapping](https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md): 400 `INTERNAL`, 401 `UNAUTHENTICATED`, 403 `PERMISSION_DENIED`, 404 `UNIMPLEMENTED`, 429, 502, 503 and 504 `UNAVAILABLE`, any other `UNKNOWN` | the HTTP status, and what to change (for 413: a proxy's body size limit; for 504: heartbeats or the proxy's read timeout); not tonic's message, which only says that the page is not gRPC messages ("invalid compression flag: 60" is the `<` of an HTML page) |
//! | the peer reset the call with HTTP/2 `INTERNAL_ERROR` | `INTERNAL` (as gRPC specifies) | the reset, and its usual cause: a proxy refusing a request body as too large once the call had started (nginx's `client_max_body_size`) |
//!
//! Any other status, the server's own above all, is returned unchanged. The
//! status returned keeps the original one (and so tonic's transport error) in
//! its [`source`](std::error::Error::source) chain, so
//! [`unprocessed`] still sees what it saw.
//!
//! Generated clients, [`DispatchClient`](crate::dispatch::DispatchClient), the
//! [`Streaming`](crate::Streaming) and [`Blob`](crate::Blob) they return, and
//! [sessions](crate::session) apply it to every status they give; call it
//! yourself for the statuses of any other tonic client (a plain
//! server-streaming method's `tonic::Streaming`, say).

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use tonic::{Code, Status};

use crate::transport::{Unprocessed, causes, connection_lost, unprocessed};

/// The status a caller should see for `status`: see the [module docs](self).
/// Applying it twice changes nothing.
///
/// ```
/// use steadfast::status::from_transport;
/// use tonic::{Code, Status};
///
/// // What tonic 0.14 makes of a proxy's HTTP 413 error page.
/// let status = Status::internal(
///     "protocol error: received message with invalid compression flag: 60 \
///      (valid flags are 0 and 1) while receiving response with status: 413 Payload Too Large",
/// );
/// let status = from_transport(status);
/// assert_eq!(status.code(), Code::Unknown);
/// assert!(status.message().contains("client_max_body_size"));
///
/// // A server's own status is its answer.
/// let status = from_transport(Status::unknown("transport error"));
/// assert_eq!(status.message(), "transport error");
/// ```
pub fn from_transport(status: Status) -> Status {
    if status
        .source()
        .is_some_and(|source| source.is::<Explained>())
    {
        return status;
    }
    let (code, message) = if let Some(http) = non_grpc_response(&status) {
        (http_code(http), http_message(http))
    } else if reset_with_internal_error(&status) {
        (
            Code::Internal,
            format!(
                "the server or a proxy on the way reset the call (HTTP/2 RST_STREAM \
                 INTERNAL_ERROR): {}. During an upload this is usually a proxy refusing the request \
                 body as too large once the call has started (what it answers with HTTP 413 \
                 before; nginx logs \"client intended to send too large body\"): raise its \
                 limit, e.g. nginx `client_max_body_size 0` (the default is 1m)",
                detail(&status)
            ),
        )
    } else if status.code() != Code::Unavailable
        && (connection_lost(&status) || unprocessed(&status) == Some(Unprocessed::NotSent))
    {
        (
            Code::Unavailable,
            format!("connection lost: {}", detail(&status)),
        )
    } else {
        return status;
    };
    let mut explained = Status::with_metadata(code, message, status.metadata().clone());
    explained.set_source(Arc::new(Explained(status)));
    explained
}

/// The original status of one that [`from_transport`] rewrote: its source, whose
/// own source is the original's.
#[derive(Debug)]
struct Explained(Status);

impl fmt::Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.message())
    }
}

impl Error for Explained {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// The status's message, then the texts of its causes that it does not
/// already contain: `transport error: connection error: stream closed
/// because of a broken pipe`.
fn detail(status: &Status) -> String {
    let mut text = status.message().to_owned();
    for cause in causes(status) {
        let cause = cause.to_string();
        if !cause.is_empty() && !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

/// The HTTP status of a response that was not gRPC, as tonic 0.14 reports it
/// (in the message of a status it made itself, with no source): a body that is
/// not gRPC messages ("invalid compression flag … while receiving response with
/// status: 413 Payload Too Large"), or no `grpc-status` at all ("grpc-status
/// header missing, mapped from HTTP status code 502"). `None` for anything else,
/// for an HTTP 200, and for a status that came in a gRPC response (its
/// metadata holds the response's `content-type: application/grpc`: a server
/// passing such a message on from a call of its own).
fn non_grpc_response(status: &Status) -> Option<u16> {
    const MARKERS: [&str; 2] = [
        "while receiving response with status: ",
        "grpc-status header missing, mapped from HTTP status code ",
    ];
    let grpc = status
        .metadata()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    if grpc || status.source().is_some() {
        return None;
    }
    let message = status.message();
    let number = MARKERS
        .iter()
        .find_map(|marker| Some(&message[message.find(marker)? + marker.len()..]))?;
    let digits = number
        .get(..3)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
    let http = digits.parse().ok()?;
    (http != 200).then_some(http)
}

/// The gRPC code of a non-gRPC HTTP response, by gRPC's HTTP to gRPC status
/// mapping.
fn http_code(http: u16) -> Code {
    match http {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// What a non-gRPC HTTP response means, and what to change.
fn http_message(http: u16) -> String {
    let reason = tonic::codegen::http::StatusCode::from_u16(http)
        .ok()
        .and_then(|code| code.canonical_reason())
        .map(|reason| format!(" {reason}"))
        .unwrap_or_default();
    // tonic's message is left out: it holds the HTTP status, said here, and
    // what reading an error page as gRPC gave (for an HTML page, "invalid
    // compression flag: 60", the `<`). It stays in the source chain.
    match http {
        413 => "a proxy refused the request body as too large (HTTP 413): raise its limit, \
                e.g. nginx `client_max_body_size 0` (the default is 1m)"
            .to_owned(),
        431 => "the request's metadata is over the limit of the server or a proxy (HTTP 431): \
                send less metadata or raise the limit"
            .to_owned(),
        502 | 503 => format!(
            "a proxy could not get an answer from the gRPC server (HTTP {http}{reason}): \
             is the server up, and is the proxy's upstream (e.g. nginx `grpc_pass`) right?"
        ),
        504 => format!(
            "a proxy gave up waiting for the gRPC server (HTTP {http}{reason}): the call was \
             silent for longer than the proxy's read timeout (or the proxy could not connect \
             in time). Give the method heartbeats (a call with heartbeats is never silent for \
             longer than their interval), or raise the timeout: nginx `grpc_read_timeout` \
             (default 60s), HAProxy `timeout server`, Caddy's `read_timeout` (of its `http` \
             transport)"
        ),
        404 => "nothing serves this method at that address (HTTP 404): check the address, \
                and the proxy's routes (e.g. nginx `location`)"
            .to_owned(),
        401 | 403 => {
            format!("refused by the access control of a proxy or server (HTTP {http}{reason})")
        }
        429 => "a proxy or server is limiting the rate of calls (HTTP 429)".to_owned(),
        _ => format!(
            "the answer is HTTP {http}{reason}, not gRPC: from a proxy on the way, or from \
             something that is not the gRPC server"
        ),
    }
}

/// Whether the peer reset the call's stream with HTTP/2 `INTERNAL_ERROR`.
fn reset_with_internal_error(status: &Status) -> bool {
    causes(status).any(|error| {
        error.downcast_ref::<h2::Error>().is_some_and(|h2| {
            h2.is_reset() && h2.is_remote() && h2.reason() == Some(h2::Reason::INTERNAL_ERROR)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> Status {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        Status::from_error(Box::new(reset))
    }

    #[test]
    fn a_lost_connection_is_unavailable_with_its_detail_and_its_causes_kept() {
        let status = from_transport(lost());
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().starts_with("connection lost: "),
            "{status:?}"
        );
        assert!(status.message().contains("connection reset"), "{status:?}");
        assert!(
            connection_lost(&status),
            "the chain still shows the I/O error"
        );
        let again = from_transport(status.clone());
        assert_eq!(
            again.message(),
            status.message(),
            "applied twice: unchanged"
        );
    }

    #[tokio::test]
    async fn a_call_hyper_dropped_unsent_or_held_when_the_connection_closed_is_unavailable() {
        for status in [
            crate::transport::canceled_before_sent().await,
            crate::transport::dispatch_task_gone().await,
        ] {
            let before = (status.code(), status.message().to_owned());
            let after = from_transport(status);
            assert_eq!(after.code(), Code::Unavailable, "{before:?}: {after:?}");
            assert!(
                after.message().starts_with("connection lost: "),
                "{after:?}"
            );
        }
    }

    #[test]
    fn a_status_without_a_transport_cause_is_unchanged() {
        for status in [
            Status::unknown("transport error"),
            Status::internal("boom"),
            Status::unavailable("no frame from the server for 1.5s"),
            Status::internal("received message with invalid compression flag: 60"),
        ] {
            let after = from_transport(status.clone());
            assert_eq!(
                (after.code(), after.message()),
                (status.code(), status.message())
            );
        }
    }

    #[test]
    fn http_statuses_map_by_grpcs_table_and_keep_the_number() {
        let table = [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (413, Code::Unknown),
            (429, Code::Unavailable),
            (431, Code::Unknown),
            (500, Code::Unknown),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
        ];
        for (http, code) in table {
            for message in [
                format!(
                    "protocol error: received message with invalid compression flag: 60 \
                     (valid flags are 0 and 1) while receiving response with status: {http}"
                ),
                format!("grpc-status header missing, mapped from HTTP status code {http}"),
            ] {
                let status = from_transport(Status::internal(message.clone()));
                assert_eq!(status.code(), code, "{http}: {status:?}");
                assert!(
                    status.message().contains(&format!("HTTP {http}")),
                    "{status:?}"
                );
                // tonic's message says nothing the HTTP status does not, and
                // its "invalid compression flag: 60" misleads: left out of
                // the message, kept in the source chain.
                assert!(!status.message().contains("compression"), "{status:?}");
                assert!(!status.message().contains("grpc-status"), "{status:?}");
                let source = status.source().expect("the original status");
                assert_eq!(source.to_string(), message);
            }
        }
        let ok = Status::unknown("grpc-status header missing, mapped from HTTP status code 200");
        assert_eq!(from_transport(ok).code(), Code::Unknown);
    }

    /// What tonic 0.14 makes of a proxy's 504 error page: nginx's and
    /// HAProxy's HTML, and Caddy's empty body.
    fn gateway_timeouts() -> [Status; 2] {
        [
            Status::internal(
                "protocol error: received message with invalid compression flag: 60 (valid \
                 flags are 0 and 1) while receiving response with status: 504 Gateway Timeout",
            ),
            Status::unavailable("grpc-status header missing, mapped from HTTP status code 504"),
        ]
    }

    #[test]
    fn a_504_points_at_heartbeats_and_the_proxys_read_timeout_not_its_upstream() {
        for status in gateway_timeouts() {
            let status = from_transport(status);
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            let message = status.message();
            assert!(
                message.starts_with(
                    "a proxy gave up waiting for the gRPC server (HTTP 504 Gateway Timeout): \
                     the call was silent for longer than the proxy's read timeout"
                ),
                "{status:?}"
            );
            for hint in [
                "heartbeats",
                "nginx `grpc_read_timeout`",
                "HAProxy `timeout server`",
                "Caddy's `read_timeout`",
            ] {
                assert!(message.contains(hint), "{hint}: {status:?}");
            }
            assert!(!message.contains("grpc_pass"), "{status:?}");
            assert!(!message.contains("is the server up"), "{status:?}");
        }
    }

    #[test]
    fn a_502_and_a_503_point_at_the_server_and_the_proxys_upstream() {
        for http in [502, 503] {
            let status = from_transport(Status::unavailable(format!(
                "grpc-status header missing, mapped from HTTP status code {http}"
            )));
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert!(status.message().contains("grpc_pass"), "{status:?}");
            assert!(!status.message().contains("heartbeats"), "{status:?}");
        }
    }

    #[test]
    fn a_servers_status_that_quotes_tonic_is_the_servers_answer() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("content-type", "application/grpc".parse().expect("ascii"));
        let relayed = Status::with_metadata(
            Code::Internal,
            "upstream: grpc-status header missing, mapped from HTTP status code 502",
            metadata,
        );
        let after = from_transport(relayed.clone());
        assert_eq!(
            (after.code(), after.message()),
            (relayed.code(), relayed.message())
        );
    }
}
