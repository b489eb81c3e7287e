//! Procedural macros for steadfast, re-exported by the `steadfast` crate: depend
//! on `steadfast` and write `#[steadfast::service]` or
//! `#[derive(steadfast::IntoStatus)]`.
//!
//! Each macro is parse → model → check → expand, in its own module; this file
//! holds the entry points only. Errors are collected with their spans (see
//! `ctxt`), all reported at once, and come with a stand-in impl so that one
//! mistake gives one message.

mod ctxt;
mod into_status;
mod meta;
mod service;

use ctxt::Ctxt;
use into_status::{ast, expand, valid};
use proc_macro::TokenStream;
use syn::{DeriveInput, ItemTrait, parse_macro_input};

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

/// Turns a trait of async methods into a code-first gRPC service: each method is
/// a function that callers name in the `x-func-name` metadata of one wire method,
/// `steadfast.v1.Dispatch/Call`, with its params and result as JSON, a blob in
/// or out, heartbeats while it works. No `.proto` file.
///
/// ```
/// use steadfast::{Blob, BlobSource, Context};
/// use tonic::Status;
///
/// #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
/// pub struct HelloParams { pub name: String }
///
/// #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
/// pub struct PredictParams { pub delay_ms: u64 }
///
/// #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
/// pub struct Prediction { pub size: u64 }
///
/// #[steadfast::service]
/// pub trait Model {
///     /// Greets `name`.
///     async fn hello(&self, params: HelloParams) -> Result<String, Status>;
///
///     /// Reads its input, then works `delay_ms`, sending heartbeats.
///     #[steadfast::func(heartbeat_ms = 500)]
///     async fn predict(&self, ctx: Context, params: PredictParams, input: Blob)
///         -> Result<Prediction, Status>;
///
///     /// Sends its input back.
///     #[steadfast::func(name = "echo-blob")]
///     async fn echo_blob(&self, params: (), input: Blob) -> Result<((), BlobSource), Status>;
/// }
///
/// struct MyModel;
///
/// impl Model for MyModel {
///     async fn hello(&self, params: HelloParams) -> Result<String, Status> {
///         Ok(format!("hello, {}", params.name))
///     }
///
///     async fn predict(&self, ctx: Context, params: PredictParams, input: Blob)
///         -> Result<Prediction, Status>
///     {
///         let size = input.to_bytes(1 << 30).await?.len() as u64;
///         ctx.progress().report(0.5, "read");
///         tokio::time::sleep(std::time::Duration::from_millis(params.delay_ms)).await;
///         Ok(Prediction { size })
///     }
///
///     async fn echo_blob(&self, _: (), input: Blob) -> Result<((), BlobSource), Status> {
///         Ok(((), BlobSource::from_reader(input)))
///     }
/// }
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// // The server: one service, or several mounted on a `DispatchServer`.
/// tonic::transport::Server::builder()
///     .add_service(ModelServer::new(MyModel))
///     .serve("127.0.0.1:50051".parse()?)
///     .await?;
///
/// // The client: one method per function.
/// let mut client = ModelClient::connect("http://127.0.0.1:50051").await?;
/// let greeting = client.hello(HelloParams { name: "Ada".into() }).await?;
/// let input = BlobSource::from_path("/tmp/input.bin");
/// let prediction = client.predict(PredictParams { delay_ms: 3000 }, input).await?;
/// # let _ = (greeting, prediction);
/// # Ok(())
/// # }
/// ```
///
/// # The methods
///
/// Each method is `async fn name(&self, [ctx: Context,] [params: P,] [input: Blob]) ->
/// Result<R, E>`, in that order:
///
/// - **`&self`**: the server shares the service between the calls it runs at once
///   (so the type must be `Send + Sync + 'static`).
/// - **`Context`** (optional): the call's metadata, its deadline, and the
///   [`Progress`] handle whose reports the heartbeats carry.
/// - **The params** (optional; `()` travels without): one value, `P:
///   serde::Serialize + serde::de::DeserializeOwned` (the client sends it, the
///   server reads it). Params that do not deserialize fail the call with
///   `INVALID_ARGUMENT` naming the field.
/// - **`Blob`** (optional): the input blob, read as it arrives (chunked zstd).
/// - **The result**: `Result<R, E>` with `R: serde::Serialize +
///   serde::de::DeserializeOwned` (and `JsonSchema`), or `Result<(R, BlobSource),
///   E>` to send a blob back; `E: Into<tonic::Status>` (a `Status`, or an error
///   deriving [`IntoStatus`](macro@IntoStatus)).
///
/// `Describe` reports the JSON Schema of the params and of the result when the
/// type implements `schemars::JsonSchema` and steadfast's `schema` feature (on by
/// default) is on, and an empty schema otherwise: a type without `JsonSchema` is
/// no error, whichever crate in the build turns the feature on.
///
/// A type missing one of these traits is reported at the type, in the trait.
/// Params that borrow (`Hello<'a> { name: &'a str }`) cannot be read from the
/// call's JSON, which is gone once parsed: rustc reports "implementation of
/// `Deserialize` is not general enough" at the params type; give it owned
/// fields (`String`).
///
/// `Context`, `Blob` and `BlobSource` are recognised by name (the macro sees
/// tokens, not types): use steadfast's, under these names.
///
/// An implementation writes `async fn` as usual. The macro declares each method as
/// `fn … -> impl Future<Output = …> + Send`, so an implementation's futures must be
/// `Send` (the server runs them on tokio's threads): hold no `Rc` or
/// `std::sync::MutexGuard` across an `.await`. A method with a default body
/// requires `Self: Sync`.
///
/// # `#[steadfast::func(...)]`
///
/// On a method, optional: `name = "..."` sets the function's name, its
/// `x-func-name` (default: the method's name, without `r#`; 1 to 256 bytes of
/// visible ASCII, unique in the trait: a method named otherwise, `grüße` or
/// one of over 256 bytes, needs a `name`); `heartbeat_ms = N` sends a heartbeat after
/// each `N` ms of silence while the function works (the client then also detects
/// a dead server after 3 × `N`). Doc comments go to the client's method and to
/// `Describe` (an undocumented method's client method says which method it
/// calls, so that `missing_docs` reports the trait method alone).
///
/// # What it generates
///
/// Beside the trait (same visibility):
///
/// - **`<Trait>Server<T>`**: `new(T)`, `from_arc(Arc<T>)`. It is a tonic service
///   (`add_service`), and implements `IntoFunctions` to mount beside other services
///   on one `DispatchServer` (`DispatchServer::new().mount(ModelServer::new(m))?`,
///   where duplicate names are an error); `into_dispatch()` gives the
///   `DispatchServer` of this service alone, to set a default function or limits.
/// - **`<Trait>Client<T = Channel>`**: `connect(dst)` and `connect_lazy(dst)`
///   (made before the server is up, connected by the first call), as a build.rs
///   client's; `new(channel)`, `from_dispatch(DispatchClient)`, `upstream(name)`
///   (sends `x-upstream`), and per function `async fn name(&mut self, params: impl
///   IntoRequest<P>, [input: impl Into<BlobSource>]) -> Result<R | (R, Blob),
///   Status>`. Per-call metadata and timeout ride on a `tonic::Request`; progress
///   callbacks on `CallOptions` in its extensions. A trait method cannot be named
///   like one of the client's own methods (`new`, `connect`, `connect_lazy`,
///   `from_dispatch`, `into_dispatch`, `upstream`): rename the Rust method and keep
///   the wire name with `name = "..."`.
///
/// `#[steadfast::service(crate = "path")]` names the `steadfast` crate if you renamed
/// it. The trait cannot be generic and holds only these methods.
///
/// [`Progress`]: https://docs.rs/steadfast/latest/steadfast/struct.Progress.html
#[proc_macro_attribute]
pub fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = parse_macro_input!(input as ItemTrait);
    let mut cx = Ctxt::new();
    let attrs = service::attr::service(&mut cx, args.into());
    let model = service::ast::Service::from_syn(&mut cx, attrs, &item);
    let plan = service::valid::check(&mut cx, &model);
    match cx.check(plan) {
        Ok(plan) => service::expand::service(&plan),
        Err(errors) => {
            let mut out = service::expand::fallback(&item);
            out.extend(errors.into_compile_error());
            out
        }
    }
    .into()
}

/// Sets a function's wire name or heartbeat interval: `#[steadfast::func(name =
/// "...", heartbeat_ms = N)]`, on a method of a
/// [`#[steadfast::service]`](macro@service) trait (which reads it; anywhere else it
/// is an error).
#[proc_macro_attribute]
pub fn func(_args: TokenStream, input: TokenStream) -> TokenStream {
    let mut out = proc_macro2::TokenStream::from(input);
    out.extend(
        syn::Error::new(
            proc_macro2::Span::call_site(),
            "`#[steadfast::func]` only has a meaning on a method of a `#[steadfast::service]` trait; put `#[steadfast::service]` on the trait",
        )
        .into_compile_error(),
    );
    out.into()
}
