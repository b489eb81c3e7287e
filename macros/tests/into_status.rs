//! What `#[derive(IntoStatus)]` produces: the code and message of each variant,
//! transparent variants passed on whole, generics, a renamed crate path, and
//! `?` in an async handler.

use std::fmt;
use steadfast::IntoStatus;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

#[derive(Debug, IntoStatus)]
#[status(internal)]
pub(crate) enum StoreError {
    #[status(not_found)]
    NoSuchKey(String),
    #[status(resource_exhausted)]
    TooLarge {
        size: u64,
        limit: u64,
    },
    #[status(invalid_argument)]
    Empty,
    Corrupt,
    #[status(transparent)]
    Upstream(Status),
    #[status(transparent)]
    Auth {
        source: AuthError,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NoSuchKey(key) => write!(f, "no such key: {key}"),
            StoreError::TooLarge { size, limit } => write!(f, "{size} B is over {limit} B"),
            StoreError::Empty => f.write_str("empty key"),
            StoreError::Corrupt => f.write_str("corrupt"),
            StoreError::Upstream(_) | StoreError::Auth { .. } => f.write_str("never used"),
        }
    }
}

/// A struct: one code for the whole type.
#[derive(Debug, IntoStatus)]
#[status(unauthenticated)]
struct AuthError {
    user: &'static str,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not logged in", self.user)
    }
}

fn parts(status: Status) -> (Code, String) {
    (status.code(), status.message().to_owned())
}

#[test]
fn each_variant_has_its_code_and_its_display_as_the_message() {
    let cases = [
        (
            StoreError::NoSuchKey("a/b".into()),
            Code::NotFound,
            "no such key: a/b",
        ),
        (
            StoreError::TooLarge { size: 9, limit: 4 },
            Code::ResourceExhausted,
            "9 B is over 4 B",
        ),
        (StoreError::Empty, Code::InvalidArgument, "empty key"),
    ];
    for (error, code, message) in cases {
        assert_eq!(parts(error.into()), (code, message.to_owned()));
    }
}

#[test]
fn a_variant_without_a_code_takes_the_enums_default() {
    assert_eq!(
        parts(StoreError::Corrupt.into()),
        (Code::Internal, "corrupt".to_owned())
    );
}

#[test]
fn a_transparent_variant_passes_the_status_on_whole() {
    let mut upstream = Status::unavailable("db down");
    upstream
        .metadata_mut()
        .insert("retry-after", MetadataValue::from_static("3"));
    let status = Status::from(StoreError::Upstream(upstream));
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "db down");
    assert_eq!(
        status
            .metadata()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
}

#[test]
fn a_transparent_variant_uses_the_fields_own_conversion() {
    let status = Status::from(StoreError::Auth {
        source: AuthError { user: "ada" },
    });
    assert_eq!(
        parts(status),
        (Code::Unauthenticated, "ada is not logged in".to_owned())
    );
}

/// Generic over the key and over a wrapped error.
#[derive(Debug, IntoStatus)]
enum Lookup<K: fmt::Debug, E> {
    #[status(not_found)]
    Missing(K),
    #[status(transparent)]
    Inner(E),
}

impl<K: fmt::Debug, E: fmt::Display> fmt::Display for Lookup<K, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lookup::Missing(key) => write!(f, "missing {key:?}"),
            Lookup::Inner(inner) => write!(f, "{inner}"),
        }
    }
}

#[test]
fn generics_get_the_bounds_they_need() {
    let missing: Lookup<u32, AuthError> = Lookup::Missing(7);
    assert_eq!(
        parts(missing.into()),
        (Code::NotFound, "missing 7".to_owned())
    );
    let inner: Lookup<&str, AuthError> = Lookup::Inner(AuthError { user: "bob" });
    assert_eq!(
        parts(inner.into()),
        (Code::Unauthenticated, "bob is not logged in".to_owned())
    );
}

/// A transparent struct, beside items named like the locals of a naive
/// expansion (a binding named like a const in scope would match the const).
mod wrapped {
    use super::{IntoStatus, StoreError};

    #[allow(non_upper_case_globals, dead_code)]
    const error: u8 = 0;
    #[allow(non_upper_case_globals, dead_code)]
    const code: u8 = 0;
    #[allow(non_upper_case_globals, dead_code)]
    const value: u8 = 0;

    #[derive(Debug, IntoStatus)]
    #[status(transparent)]
    pub(crate) struct Wrapped(pub(crate) StoreError);

    #[derive(Debug, IntoStatus)]
    #[status(internal)]
    pub(crate) enum Mixed {
        #[status(transparent)]
        Store(StoreError),
        Other,
    }

    impl std::fmt::Display for Mixed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("other")
        }
    }
}

#[test]
fn a_transparent_struct_converts_its_field() {
    assert_eq!(
        parts(wrapped::Wrapped(StoreError::Empty).into()),
        (Code::InvalidArgument, "empty key".to_owned())
    );
    assert_eq!(
        parts(wrapped::Mixed::Store(StoreError::Empty).into()),
        (Code::InvalidArgument, "empty key".to_owned())
    );
    assert_eq!(
        parts(wrapped::Mixed::Other.into()),
        (Code::Internal, "other".to_owned())
    );
}

/// `crate = "..."` for a user who reaches steadfast by another path.
mod renamed {
    pub(crate) use steadfast::*;
}

#[derive(Debug, IntoStatus)]
#[status(aborted, crate = "crate::renamed")]
struct Conflict;

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("conflict, try again")
    }
}

#[test]
fn a_renamed_crate_path_is_used() {
    assert_eq!(
        parts(Conflict.into()),
        (Code::Aborted, "conflict, try again".to_owned())
    );
}

async fn load(key: &str) -> Result<Vec<u8>, StoreError> {
    match key {
        "" => Err(StoreError::Empty),
        _ => Err(StoreError::NoSuchKey(key.to_owned())),
    }
}

async fn handler(key: &str) -> Result<tonic::Response<Vec<u8>>, Status> {
    let bytes = load(key).await?;
    Ok(tonic::Response::new(bytes))
}

#[tokio::test]
async fn question_mark_in_an_async_handler_gives_the_status() {
    let status = handler("k").await.expect_err("load fails");
    assert_eq!(parts(status), (Code::NotFound, "no such key: k".to_owned()));
    let status = handler("").await.expect_err("load fails");
    assert_eq!(
        parts(status),
        (Code::InvalidArgument, "empty key".to_owned())
    );
}
