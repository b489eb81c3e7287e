//! Procedural macros for steadfast, re-exported by the `steadfast` crate: depend
//! on `steadfast` and write `#[derive(steadfast::IntoStatus)]`.
//!
//! Each macro is parse → model → check → expand, in its own module; this file
//! holds the entry points only. Errors are collected with their spans (see
//! `ctxt`), all reported at once, and come with a stand-in impl so that one
//! mistake gives one message.

mod ctxt;
mod into_status;

use ctxt::Ctxt;
use into_status::{ast, expand, valid};
use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `From<YourError> for tonic::Status`, so that `?` turns your error into
/// a gRPC status in any handler: one generated from a `.proto` or a code-first one.
///
/// Each variant names its gRPC code; the status message is the value's
/// [`Display`](std::fmt::Display) (write it by hand or with `thiserror`).
///
/// ```
/// use steadfast::IntoStatus;
/// use tonic::{Code, Status};
///
/// #[derive(Debug, IntoStatus)]
/// #[status(internal)] // for the variants without a code of their own
/// enum StoreError {
///     #[status(not_found)]
///     NoSuchKey(String),
///     #[status(resource_exhausted)]
///     TooLarge { size: u64, limit: u64 },
///     Corrupt,
///     #[status(transparent)] // a status from elsewhere, passed on as it is
///     Upstream(Status),
/// }
///
/// impl std::fmt::Display for StoreError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         match self {
///             StoreError::NoSuchKey(key) => write!(f, "no such key: {key}"),
///             StoreError::TooLarge { size, limit } => write!(f, "{size} B is over the limit of {limit} B"),
///             StoreError::Corrupt => f.write_str("the store is corrupt"),
///             StoreError::Upstream(status) => write!(f, "upstream: {}", status.message()),
///         }
///     }
/// }
///
/// fn get(key: &str) -> Result<Vec<u8>, StoreError> {
///     Err(StoreError::NoSuchKey(key.to_owned()))
/// }
///
/// async fn handler(key: &str) -> Result<tonic::Response<Vec<u8>>, Status> {
///     Ok(tonic::Response::new(get(key)?))
/// }
///
/// let status = Status::from(StoreError::NoSuchKey("a".into()));
/// assert_eq!((status.code(), status.message()), (Code::NotFound, "no such key: a"));
/// let status = Status::from(StoreError::Corrupt);
/// assert_eq!((status.code(), status.message()), (Code::Internal, "the store is corrupt"));
/// let status = Status::from(StoreError::Upstream(Status::unavailable("db down")));
/// assert_eq!((status.code(), status.message()), (Code::Unavailable, "db down"));
/// ```
///
/// # Attributes
///
/// | Where | Attribute | Meaning |
/// |---|---|---|
/// | a variant | `#[status(<code>)]` | this variant's code |
/// | a variant with one field | `#[status(transparent)]` | the field's own `Into<Status>` |
/// | the enum | `#[status(<code>)]` | the code of every variant without one (optional) |
/// | a struct | `#[status(<code>)]` or `#[status(transparent)]` | as for a variant (required) |
/// | the type | `#[status(crate = "path")]` | where `steadfast` is, if you renamed it (default `::steadfast`) |
///
/// `<code>` is the name of a [`tonic::Code`][code] in snake_case: `cancelled`,
/// `unknown`, `invalid_argument`, `deadline_exceeded`, `not_found`,
/// `already_exists`, `permission_denied`, `resource_exhausted`,
/// `failed_precondition`, `aborted`, `out_of_range`, `unimplemented`,
/// `internal`, `unavailable`, `data_loss`, `unauthenticated`. Not `ok`: a status
/// made from an error cannot be OK. Items may share one attribute
/// (`#[status(internal, crate = "sf")]`) or use several; each may be given once.
///
/// A variant with no code and no default on the enum is an error: there is no
/// implicit `unknown`, so adding a variant makes you decide its code.
///
/// # What the conversion does
///
/// - **A code**: `Status::new(code, value.to_string())`. The status has no
///   details and no metadata, and the value is not kept as its source; `Debug`
///   is not used, so nothing you did not put in `Display` reaches the client.
/// - **`transparent`**: the field converted with its own `Into<Status>` (a
///   `tonic::Status`, another derived error): code, message, details and
///   metadata as it makes them; your `Display` is not used for this variant.
/// - **Generics**: the impl has the bounds it needs, `YourError<T>: Display`
///   and, for a transparent field whose type uses a parameter, `Field:
///   Into<Status>`.
///
/// # Mistakes
///
/// Every mistake is reported at once, each at its token: an unknown code (with
/// the list, or the right spelling of `NotFound`), a code given twice, `#[status]`
/// without a code, an unknown key, `transparent` on a variant without exactly
/// one field, a variant without a code, `#[status]` on a field, a union. A type
/// without `Display` is reported at its name, a transparent field that is not
/// `Into<Status>` at its type.
///
/// [code]: https://docs.rs/tonic/0.14/tonic/enum.Code.html
#[proc_macro_derive(IntoStatus, attributes(status))]
pub fn derive_into_status(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let mut cx = Ctxt::new();
    let model = ast::Input::from_syn(&mut cx, &input);
    let plan = model
        .as_ref()
        .and_then(|model| valid::check(&mut cx, model));
    match cx.check(plan) {
        Ok(plan) => expand::derive(&plan),
        Err(errors) => {
            let krate = model
                .as_ref()
                .and_then(|model| model.attrs.krate.as_ref())
                .map(|(path, _)| path);
            let mut out = errors.into_compile_error();
            out.extend(expand::fallback(&input, krate));
            out
        }
    }
    .into()
}
