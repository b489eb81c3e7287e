//! What `#[steadfast::service]`'s expansion calls (through
//! `steadfast::__private`), so that the expansion stays thin.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Status;

use super::{DispatchServer, Function, Schema};
use crate::Blob;

/// A `DispatchServer` serving one service's functions.
///
/// The macro has checked that their names are distinct valid names (1 to
/// [`MAX_NAME_BYTES`](super::MAX_NAME_BYTES) bytes of visible ASCII), so mounting
/// cannot fail; should it, that is a bug in the macro, and it says so.
pub fn dispatch_server(functions: Vec<Function>) -> DispatchServer {
    match DispatchServer::new().mount(functions) {
        Ok(server) => server,
        Err(error) => panic!(
            "steadfast: #[steadfast::service] generated functions that do not mount ({error}); this is a bug, please report it"
        ),
    }
}

/// The blob a function that returns one sent (the server always sends one; a
/// server that does not answers with a broken reply → `INTERNAL`).
pub fn returned_blob(function: &str, blob: Option<Blob>) -> Result<Blob, Status> {
    blob.ok_or_else(|| {
        Status::internal(format!(
            "function `{function}` returns a blob, and the server sent none"
        ))
    })
}

/// Compiles only for a type that can be a function's params (the macro spans the
/// call at the user's type, so that is where a missing trait is reported).
pub fn assert_params<P: DeserializeOwned + Schema + Send + 'static>() {}

/// Compiles only for a type that can be a function's result.
pub fn assert_result<R: Serialize + Schema + Send + 'static>() {}
