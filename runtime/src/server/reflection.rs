//! gRPC server reflection, v1 and v1alpha, answered from the descriptors the
//! server's clients see on the wire.
//!
//! Tools such as grpcurl, Postman, Kreya and grpcio's
//! `ProtoReflectionDescriptorDatabase` ask a server which services it has and
//! what their messages look like. [`Reflection`] answers both protocol
//! versions (`grpc.reflection.v1.ServerReflection`, and
//! `grpc.reflection.v1alpha.ServerReflection`, the only one Postman, Kreya,
//! older grpcurl and grpcio-reflection's Python client (1.85) speak) from one
//! descriptor pool:
//!
//! - the **wire descriptor set** steadfast-build writes for your protos
//!   ([`add_file_descriptor_set`](Reflection::add_file_descriptor_set)): a
//!   method rewritten by a steadfast option is described as it travels, with
//!   its frames (`stream <Service><Method>Frame`, `…Upload`), so a generic
//!   client builds requests and reads replies a steadfast server really
//!   exchanges. The set already holds every file your protos import;
//! - always: the well-known types (`google/protobuf/*.proto`), steadfast's own
//!   protos (`steadfast/v1/frame.proto`, `options.proto`, `dispatch.proto`, the
//!   last describing code-first services, [`DISPATCH`]) and the reflection
//!   protos themselves.
//!
//! steadfast-build writes the wire descriptor set beside the generated code,
//! to `$OUT_DIR/steadfast_wire_descriptor_set.bin`; embed it with
//! `include_bytes!(concat!(env!("OUT_DIR"), "/steadfast_wire_descriptor_set.bin"))`:
//!
//! ```no_run
//! # fn demo(wire: &'static [u8]) -> Result<(), Box<dyn std::error::Error>> {
//! // wire: the include_bytes! above
//! let (v1, v1alpha) = steadfast::server::reflection::Reflection::new()
//!     .add_file_descriptor_set(wire)?
//!     .into_services();
//! let router = tonic::transport::Server::builder()
//!     .add_service(v1)
//!     .add_service(v1alpha); // ... and your services
//! # let _ = router;
//! # Ok(())
//! # }
//! ```
//!
//! # What it promises
//!
//! - `list_services`: the services of the files of every added set (not those
//!   of `google/protobuf/` or `steadfast/v1/` files, unless
//!   [advertised](Reflection::advertise)) and the two reflection services.
//! - `file_by_filename`, `file_containing_symbol` (a package-qualified
//!   service, method, message, enum, enum value, field, oneof or extension,
//!   nested ones included) and `file_containing_extension`: the file, first,
//!   then every file it imports, transitively, each once. Files are sent as
//!   they were added, custom options included.
//! - `all_extension_numbers_of_type`: the numbers of the pool's extensions of
//!   the message (e.g. steadfast's `51717` of `google.protobuf.MethodOptions`).
//! - **A failed lookup does not end the stream.** An unknown file, symbol,
//!   extension or type is answered in the stream with an `ErrorResponse` of
//!   code `NOT_FOUND` (a request without a message: `INVALID_ARGUMENT`), and
//!   the next request on the same stream is answered as usual, as the
//!   reflection protocol has it. tonic-reflection 0.14's server (0.14.9) ends the whole
//!   call with that status instead (`src/server/v1.rs`: on an error it sends
//!   `Err(status)` and returns), so a client that probes one missing symbol
//!   loses every later lookup; it also answers `file_containing_extension`
//!   with "extensions are not supported" and only files registered by hand,
//!   without their imports.
//! - The stream ends when the client closes its side; a broken request stream
//!   ends it with the status it broke with. No task is spawned and nothing is
//!   buffered: each response is made when the transport asks for it.
//!
//! Lookups read an immutable pool shared by both services; the pool's
//! descriptors are decoded once, when the sets are added.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use prost_reflect::{DescriptorPool, FileDescriptor};
use tonic::{Request, Response, Status, Streaming};

/// The protocol's generated types, clients and server traits
/// (`tonic_reflection::pb`): `v1::server_reflection_client::ServerReflectionClient`
/// and its v1alpha twin talk to a reflection service.
pub use tonic_reflection::pb;

use pb::v1 as v1pb;
use pb::v1alpha as v1alphapb;

/// The encoded descriptors of `proto/steadfast/v1/{options,frame,dispatch}.proto`
/// (no source info), checked in as `runtime/generated/steadfast_v1_descriptor_set.bin`
/// and checked against the protos by `tests/tests/reflection.rs` in
/// steadfast-tests (`STEADFAST_BLESS=1 cargo test -p steadfast-tests --test reflection`
/// regenerates it).
const STEADFAST_DESCRIPTORS: &[u8] =
    include_bytes!("../../generated/steadfast_v1_descriptor_set.bin");

/// The service of code-first (`#[steadfast::service]`) servers,
/// `steadfast.v1.Dispatch`: its descriptor is always in the pool; a server
/// that mounts one [advertises](Reflection::advertise) it.
pub const DISPATCH: &str = crate::dispatch::SERVICE_NAME;

/// Files whose services are listed only when [advertised](Reflection::advertise):
/// the well-known types and steadfast's own protos, which every wire
/// descriptor set may import.
fn is_builtin(file: &str) -> bool {
    file.starts_with("google/protobuf/") || file.starts_with("steadfast/v1/")
}

/// A descriptor set that could not be added to a [`Reflection`].
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Descriptors(prost_reflect::DescriptorError),
    UnknownService(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Descriptors(e) => write!(f, "invalid file descriptor set: {e}"),
            ErrorKind::UnknownService(name) => write!(
                f,
                "cannot advertise service `{name}`: no file of the reflection pool defines it"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Descriptors(e) => Some(e),
            ErrorKind::UnknownService(_) => None,
        }
    }
}

/// Server reflection for a set of descriptors: build it with [`new`](Self::new),
/// [`add_file_descriptor_set`](Self::add_file_descriptor_set) and
/// [`advertise`](Self::advertise), then serve
/// [`into_services`](Self::into_services). See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Reflection {
    pool: DescriptorPool,
    services: BTreeSet<String>,
}

impl Default for Reflection {
    fn default() -> Self {
        Self::new()
    }
}

impl Reflection {
    /// Reflection over the well-known types, steadfast's own protos and the
    /// reflection protos, listing the two reflection services.
    pub fn new() -> Self {
        // The global pool is prost-reflect's copy of the well-known types
        // (google/protobuf/*.proto, descriptor.proto included).
        let mut pool = DescriptorPool::global();
        for set in [
            STEADFAST_DESCRIPTORS,
            v1pb::FILE_DESCRIPTOR_SET,
            v1alphapb::FILE_DESCRIPTOR_SET,
        ] {
            // Built in, and checked by tests: cannot fail.
            if let Err(e) = pool.decode_file_descriptor_set(set) {
                unreachable!("a built-in descriptor set does not decode: {e}");
            }
        }
        let services = [
            v1pb::server_reflection_server::SERVICE_NAME,
            v1alphapb::server_reflection_server::SERVICE_NAME,
        ]
        .map(str::to_owned)
        .into();
        Reflection { pool, services }
    }

    /// Adds an encoded `FileDescriptorSet`, e.g. the wire descriptor set
    /// steadfast-build writes to `$OUT_DIR/steadfast_wire_descriptor_set.bin`
    /// (embed it with `include_bytes!(concat!(env!("OUT_DIR"), "/steadfast_wire_descriptor_set.bin"))`),
    /// and lists the services of its files.
    ///
    /// Sets merge: a file already in the pool (from an earlier set, or one of
    /// the built-in files) is skipped, the first one added wins. A set must
    /// hold every file its files import that is not in the pool yet, as
    /// steadfast-build's and `protoc --include_imports` sets do.
    ///
    /// ```no_run
    /// # fn demo(wire: &[u8]) -> Result<(), steadfast::server::reflection::Error> {
    /// let reflection = steadfast::server::reflection::Reflection::new().add_file_descriptor_set(wire)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the bytes are no `FileDescriptorSet`, or its files do not resolve
    /// (a type or import missing, a name defined twice); the pool is then as
    /// before the call.
    pub fn add_file_descriptor_set(mut self, encoded: &[u8]) -> Result<Self, Error> {
        let before: HashSet<String> = self.pool.files().map(|f| f.name().to_owned()).collect();
        self.pool
            .decode_file_descriptor_set(encoded)
            .map_err(|e| Error {
                kind: ErrorKind::Descriptors(e),
            })?;
        let added = self
            .pool
            .files()
            .filter(|f| !before.contains(f.name()) && !is_builtin(f.name()));
        let services = added
            .flat_map(|f| {
                f.services()
                    .map(|s| s.full_name().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>();
        self.services.extend(services);
        Ok(self)
    }

    /// Lists `service` (package-qualified, e.g. [`DISPATCH`] for a server with
    /// code-first services) among the services, although its file is a
    /// built-in one or was not added with
    /// [`add_file_descriptor_set`](Self::add_file_descriptor_set)'s listing.
    ///
    /// # Errors
    ///
    /// When no file of the pool defines `service`: reflection would list a
    /// service it cannot describe.
    pub fn advertise(mut self, service: &str) -> Result<Self, Error> {
        if self.pool.get_service_by_name(service).is_none() {
            return Err(Error {
                kind: ErrorKind::UnknownService(service.to_owned()),
            });
        }
        self.services.insert(service.to_owned());
        Ok(self)
    }

    /// Lists only the services for which `keep` is true (a server lists the
    /// services it serves of those its sets define); what reflection
    /// describes stays the same.
    pub fn retain_services(mut self, mut keep: impl FnMut(&str) -> bool) -> Self {
        self.services.retain(|name| keep(name));
        self
    }

    /// The descriptors it answers from.
    pub(crate) fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// The names `list_services` answers, sorted.
    pub fn service_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.services.iter().map(String::as_str)
    }

    /// The two reflection services, v1 and v1alpha, to add to a server.
    pub fn into_services(
        self,
    ) -> (
        v1pb::server_reflection_server::ServerReflectionServer<ReflectionV1>,
        v1alphapb::server_reflection_server::ServerReflectionServer<ReflectionV1Alpha>,
    ) {
        let state = Arc::new(State {
            pool: self.pool,
            services: self.services.into_iter().collect(),
        });
        (
            v1pb::server_reflection_server::ServerReflectionServer::new(ReflectionV1 {
                state: Arc::clone(&state),
            }),
            v1alphapb::server_reflection_server::ServerReflectionServer::new(ReflectionV1Alpha {
                state,
            }),
        )
    }
}

/// What both services answer from.
#[derive(Debug)]
struct State {
    pool: DescriptorPool,
    services: Vec<String>,
}

/// A request of either protocol version, as this module answers it.
enum Query {
    FileByFilename(String),
    FileContainingSymbol(String),
    FileContainingExtension {
        containing_type: String,
        number: i32,
    },
    AllExtensionNumbersOfType(String),
    ListServices,
}

/// An answer of either protocol version; `Err` is sent as an `ErrorResponse`.
enum Answer {
    Files(Vec<Vec<u8>>),
    ExtensionNumbers {
        base_type_name: String,
        numbers: Vec<i32>,
    },
    Services(Vec<String>),
}

impl State {
    fn answer(&self, query: Option<Query>) -> Result<Answer, Status> {
        let Some(query) = query else {
            return Err(Status::invalid_argument(
                "reflection request without a message_request",
            ));
        };
        match query {
            Query::ListServices => Ok(Answer::Services(self.services.clone())),
            Query::FileByFilename(name) => self
                .pool
                .get_file_by_name(&name)
                .map(|file| Answer::Files(with_imports(file)))
                .ok_or_else(|| Status::not_found(format!("file `{name}` not found"))),
            Query::FileContainingSymbol(symbol) => self
                .file_of_symbol(&symbol)
                .map(|file| Answer::Files(with_imports(file)))
                .ok_or_else(|| Status::not_found(format!("symbol `{symbol}` not found"))),
            Query::FileContainingExtension {
                containing_type,
                number,
            } => u32::try_from(number)
                .ok()
                .and_then(|number| {
                    self.pool
                        .get_message_by_name(&containing_type)?
                        .extensions()
                        .find(|e| e.number() == number)
                })
                .map(|extension| Answer::Files(with_imports(extension.parent_file())))
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "extension {number} of `{containing_type}` not found"
                    ))
                }),
            Query::AllExtensionNumbersOfType(name) => {
                let message = self
                    .pool
                    .get_message_by_name(&name)
                    .ok_or_else(|| Status::not_found(format!("type `{name}` not found")))?;
                let mut numbers: Vec<i32> = message
                    .extensions()
                    .filter_map(|e| i32::try_from(e.number()).ok())
                    .collect();
                numbers.sort_unstable();
                Ok(Answer::ExtensionNumbers {
                    base_type_name: name,
                    numbers,
                })
            }
        }
    }

    /// The file defining `symbol`: a service, method, message, enum, enum
    /// value, field, oneof or extension, by its package-qualified name (a
    /// leading `.` allowed).
    fn file_of_symbol(&self, symbol: &str) -> Option<FileDescriptor> {
        let symbol = symbol.strip_prefix('.').unwrap_or(symbol);
        let pool = &self.pool;
        if let Some(service) = pool.get_service_by_name(symbol) {
            return Some(service.parent_file());
        }
        if let Some(message) = pool.get_message_by_name(symbol) {
            return Some(message.parent_file());
        }
        if let Some(enumeration) = pool.get_enum_by_name(symbol) {
            return Some(enumeration.parent_file());
        }
        if let Some(extension) = pool.get_extension_by_name(symbol) {
            return Some(extension.parent_file());
        }
        // A member: a method, field, oneof or enum value, named after its scope.
        let (scope, name) = symbol.rsplit_once('.')?;
        if let Some(service) = pool.get_service_by_name(scope) {
            return service
                .methods()
                .any(|m| m.name() == name)
                .then(|| service.parent_file());
        }
        if let Some(message) = pool.get_message_by_name(scope) {
            let member = message.get_field_by_name(name).is_some()
                || message.oneofs().any(|o| o.name() == name);
            if member {
                return Some(message.parent_file());
            }
        }
        // Enum values are scoped beside their enum, not inside it.
        pool.all_enums()
            .find(|e| {
                let parent = e.full_name().rsplit_once('.').map_or("", |(p, _)| p);
                parent == scope && e.get_value_by_name(name).is_some()
            })
            .map(|e| e.parent_file())
    }
}

/// `file`, encoded as it was added, then every file it imports, transitively,
/// each once.
fn with_imports(file: FileDescriptor) -> Vec<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut queue = vec![file];
    let mut files = Vec::new();
    // Breadth first, so the asked-for file comes first.
    let mut next = 0;
    while let Some(file) = queue.get(next).cloned() {
        next += 1;
        if !seen.insert(file.name().to_owned()) {
            continue;
        }
        files.push(file.encode_to_vec());
        queue.extend(file.dependencies());
    }
    files
}

/// The responses to a reflection call's requests, one per request, made when
/// the transport polls for them.
struct Responses<Req, F> {
    requests: Streaming<Req>,
    respond: F,
    done: bool,
}

impl<Req, Resp, F> Stream for Responses<Req, F>
where
    F: FnMut(Req) -> Resp + Unpin,
    Req: Send + 'static,
{
    type Item = Result<Resp, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.requests).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            // A request stream that broke (a bad message, a reset) ends the call
            // with its status: there is no request to answer in-stream.
            Poll::Ready(Some(Err(status))) => {
                this.done = true;
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(Some(Ok(request))) => Poll::Ready(Some(Ok((this.respond)(request)))),
        }
    }
}

/// The response stream of a reflection call.
pub type ResponseStream<Resp> = Pin<Box<dyn Stream<Item = Result<Resp, Status>> + Send>>;

/// The `grpc.reflection.v1.ServerReflection` service of a [`Reflection`].
#[derive(Debug, Clone)]
pub struct ReflectionV1 {
    state: Arc<State>,
}

/// The `grpc.reflection.v1alpha.ServerReflection` service of a [`Reflection`].
#[derive(Debug, Clone)]
pub struct ReflectionV1Alpha {
    state: Arc<State>,
}

/// One protocol version's translation to and from [`Query`] and [`Answer`].
macro_rules! reflection_version {
    ($service:ident, $pb:ident) => {
        #[tonic::async_trait]
        impl $pb::server_reflection_server::ServerReflection for $service {
            type ServerReflectionInfoStream = ResponseStream<$pb::ServerReflectionResponse>;

            async fn server_reflection_info(
                &self,
                request: Request<Streaming<$pb::ServerReflectionRequest>>,
            ) -> Result<Response<Self::ServerReflectionInfoStream>, Status> {
                use $pb::{
                    server_reflection_request::MessageRequest as M,
                    server_reflection_response::MessageResponse as R,
                };
                let state = Arc::clone(&self.state);
                let respond = move |request: $pb::ServerReflectionRequest| {
                    let query = request.message_request.clone().map(|m| match m {
                        M::FileByFilename(name) => Query::FileByFilename(name),
                        M::FileContainingSymbol(symbol) => Query::FileContainingSymbol(symbol),
                        M::FileContainingExtension(e) => Query::FileContainingExtension {
                            containing_type: e.containing_type,
                            number: e.extension_number,
                        },
                        M::AllExtensionNumbersOfType(name) => {
                            Query::AllExtensionNumbersOfType(name)
                        }
                        M::ListServices(_) => Query::ListServices,
                    });
                    let message_response = match state.answer(query) {
                        Ok(Answer::Files(files)) => {
                            R::FileDescriptorResponse($pb::FileDescriptorResponse {
                                file_descriptor_proto: files,
                            })
                        }
                        Ok(Answer::ExtensionNumbers {
                            base_type_name,
                            numbers,
                        }) => R::AllExtensionNumbersResponse($pb::ExtensionNumberResponse {
                            base_type_name,
                            extension_number: numbers,
                        }),
                        Ok(Answer::Services(names)) => {
                            R::ListServicesResponse($pb::ListServiceResponse {
                                service: names
                                    .into_iter()
                                    .map(|name| $pb::ServiceResponse { name })
                                    .collect(),
                            })
                        }
                        Err(status) => R::ErrorResponse($pb::ErrorResponse {
                            error_code: status.code() as i32,
                            error_message: status.message().to_owned(),
                        }),
                    };
                    $pb::ServerReflectionResponse {
                        valid_host: request.host.clone(),
                        original_request: Some(request),
                        message_response: Some(message_response),
                    }
                };
                Ok(Response::new(Box::pin(Responses {
                    requests: request.into_inner(),
                    respond,
                    done: false,
                })))
            }
        }
    };
}

reflection_version!(ReflectionV1, v1pb);
reflection_version!(ReflectionV1Alpha, v1alphapb);
