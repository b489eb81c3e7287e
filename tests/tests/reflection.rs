//! Server reflection (`steadfast::server::reflection`) on a real tonic server
//! on loopback, asked by tonic-reflection's generated clients (v1 and v1alpha)
//! and by Python's `grpcio-reflection`: the lab's wire descriptors resolve with
//! every file they import, a proto that imports well-known types comes with
//! them, and a failed lookup is answered in the stream, which stays open.
//!
//! Also the golden check of `runtime/generated/steadfast_v1_descriptor_set.bin`,
//! steadfast's own protos as reflection serves them: after changing a proto
//! under `proto/steadfast/v1/`, run
//! `STEADFAST_BLESS=1 cargo test -p steadfast-tests --test reflection`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use prost::Message as _;
use prost_reflect::{DescriptorPool, prost_types};
use steadfast::server::reflection::{DISPATCH, Reflection};
use steadfast_tests::{serve, tools};

/// The lab's wire descriptor set, as examples/build.rs has steadfast-build write it.
const LAB: &[u8] = steadfast_examples::WIRE_DESCRIPTOR_SET;

/// The golden case `types`: a proto importing `google/protobuf/empty.proto`
/// and `wrappers.proto`, its wire descriptor set from tests/build.rs.
const TYPES: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/cases/types/steadfast_wire_descriptor_set.bin"
));

/// How long one answer may take.
const ANSWER: Duration = Duration::from_secs(10);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A server with reflection over the lab's and the `types` case's wire
/// descriptors, code-first services advertised; its address.
async fn server() -> std::net::SocketAddr {
    let (v1, v1alpha) = Reflection::new()
        .add_file_descriptor_set(LAB)
        .expect("the lab's set")
        .add_file_descriptor_set(TYPES)
        .expect("the types case's set")
        .advertise(DISPATCH)
        .expect("Dispatch is built in")
        .into_services();
    serve::spawn(
        tonic::transport::Server::builder()
            .add_service(v1)
            .add_service(v1alpha),
    )
    .await
}

/// A pool of `files` alone (no well-known types to fall back on): building it
/// fails unless every import came with them.
fn pool_of(files: &[Vec<u8>]) -> DescriptorPool {
    let set = prost_types::FileDescriptorSet {
        file: files
            .iter()
            .map(|f| prost_types::FileDescriptorProto::decode(&f[..]).expect("a file descriptor"))
            .collect(),
    };
    DescriptorPool::from_file_descriptor_set(set).expect("the answer holds every file it imports")
}

fn name_of(file: &[u8]) -> String {
    prost_types::FileDescriptorProto::decode(file)
        .expect("a file descriptor")
        .name()
        .to_owned()
}

/// The same scenarios for each protocol version, over its generated client.
macro_rules! scenarios {
    ($version:ident) => {
        mod $version {
            use super::*;
            use steadfast::server::reflection::pb::$version::{
                ErrorResponse, ExtensionRequest, ServerReflectionRequest,
                server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };
            use tokio::sync::mpsc;
            use tokio_stream::wrappers::ReceiverStream;

            /// One reflection stream: requests go out one at a time, each
            /// answer is awaited with a deadline.
            struct Session {
                requests: mpsc::Sender<ServerReflectionRequest>,
                answers: tonic::Streaming<
                    steadfast::server::reflection::pb::$version::ServerReflectionResponse,
                >,
            }

            impl Session {
                async fn open(addr: std::net::SocketAddr) -> Session {
                    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                        .expect("an endpoint")
                        .connect()
                        .await
                        .expect("connect");
                    let mut client = ServerReflectionClient::new(channel);
                    let (requests, rx) = mpsc::channel(1);
                    let answers = client
                        .server_reflection_info(ReceiverStream::new(rx))
                        .await
                        .expect("the reflection call starts")
                        .into_inner();
                    Session { requests, answers }
                }

                async fn ask(&mut self, request: Option<MessageRequest>) -> MessageResponse {
                    let request = ServerReflectionRequest {
                        host: "test-host".to_owned(),
                        message_request: request,
                    };
                    self.requests
                        .send(request.clone())
                        .await
                        .expect("the stream takes requests");
                    let answer = tokio::time::timeout(ANSWER, self.answers.message())
                        .await
                        .expect("an answer within the deadline")
                        .expect("the stream is still open")
                        .expect("an answer, not the end of the stream");
                    assert_eq!(answer.valid_host, "test-host");
                    assert_eq!(answer.original_request, Some(request));
                    answer.message_response.expect("a message response")
                }

                async fn files(&mut self, request: MessageRequest) -> Vec<Vec<u8>> {
                    match self.ask(Some(request.clone())).await {
                        MessageResponse::FileDescriptorResponse(r) => r.file_descriptor_proto,
                        other => panic!("{request:?} answered {other:?}"),
                    }
                }

                async fn error(&mut self, request: Option<MessageRequest>) -> ErrorResponse {
                    match self.ask(request.clone()).await {
                        MessageResponse::ErrorResponse(e) => e,
                        other => panic!("{request:?} answered {other:?}, not an error"),
                    }
                }

                async fn services(&mut self) -> Vec<String> {
                    match self
                        .ask(Some(MessageRequest::ListServices(String::new())))
                        .await
                    {
                        MessageResponse::ListServicesResponse(r) => {
                            r.service.into_iter().map(|s| s.name).collect()
                        }
                        other => panic!("list_services answered {other:?}"),
                    }
                }
            }

            #[tokio::test]
            async fn list_services_names_the_added_services_dispatch_and_both_reflections() {
                let mut session = Session::open(server().await).await;
                let mut services = session.services().await;
                services.sort();
                assert_eq!(
                    services,
                    [
                        "contact.v1.Contact",
                        "grpc.reflection.v1.ServerReflection",
                        "grpc.reflection.v1alpha.ServerReflection",
                        "lab.v1.Lab",
                        "schema.Gateway",
                        "steadfast.v1.Dispatch",
                        "types.v1.Types",
                    ],
                    "the services of the examples' and the types case's protos, \
                     Dispatch (advertised) and reflection"
                );
            }

            #[tokio::test]
            async fn a_lab_method_resolves_to_its_wire_shape_with_every_import() {
                let mut session = Session::open(server().await).await;
                let files = session
                    .files(MessageRequest::FileContainingSymbol(
                        "lab.v1.Lab.Sleep".to_owned(),
                    ))
                    .await;
                assert_eq!(
                    name_of(&files[0]),
                    "lab/v1/lab.proto",
                    "the asked-for file first"
                );
                let names: Vec<String> = files.iter().map(|f| name_of(f)).collect();
                assert!(
                    names.contains(&"steadfast/v1/frame.proto".to_owned()),
                    "{names:?}"
                );
                assert!(
                    !names.contains(&"steadfast/v1/options.proto".to_owned()),
                    "the wire shape needs no options: {names:?}"
                );
                let pool = pool_of(&files);
                let lab = pool.get_service_by_name("lab.v1.Lab").expect("lab.v1.Lab");
                let sleep = lab.methods().find(|m| m.name() == "Sleep").expect("Sleep");
                // As it travels: a stream of heartbeats, then the reply.
                assert!(sleep.is_server_streaming());
                assert_eq!(sleep.output().full_name(), "lab.v1.LabSleepFrame");
                let frame = sleep.output();
                let heartbeat = frame
                    .get_field_by_name("heartbeat")
                    .expect("a heartbeat field");
                assert_eq!(
                    heartbeat.kind().as_message().map(|m| m.full_name()),
                    Some("steadfast.v1.Heartbeat")
                );
                let digest = lab
                    .methods()
                    .find(|m| m.name() == "Digest")
                    .expect("Digest");
                assert!(digest.is_client_streaming());
                assert_eq!(digest.input().full_name(), "lab.v1.LabDigestUpload");

                // Every symbol kind of the same file: a message, a nested
                // frame's field, a synthesized message, the service.
                for symbol in [
                    "lab.v1.SleepRequest",
                    "lab.v1.LabSleepFrame.heartbeat",
                    ".lab.v1.Lab",
                    "lab.v1.SleepRequest.millis",
                ] {
                    let files = session
                        .files(MessageRequest::FileContainingSymbol(symbol.to_owned()))
                        .await;
                    assert_eq!(name_of(&files[0]), "lab/v1/lab.proto", "{symbol}");
                }
                let files = session
                    .files(MessageRequest::FileByFilename(
                        "lab/v1/lab.proto".to_owned(),
                    ))
                    .await;
                assert_eq!(name_of(&files[0]), "lab/v1/lab.proto");
            }

            #[tokio::test]
            async fn a_proto_importing_well_known_types_comes_with_them() {
                let mut session = Session::open(server().await).await;
                let files = session
                    .files(MessageRequest::FileContainingSymbol(
                        "types.v1.Types".to_owned(),
                    ))
                    .await;
                let names: Vec<String> = files.iter().map(|f| name_of(f)).collect();
                assert_eq!(names[0], "types.proto");
                for import in [
                    "google/protobuf/empty.proto",
                    "google/protobuf/wrappers.proto",
                    "common.proto",
                    "external.proto",
                ] {
                    assert!(names.iter().any(|n| n == import), "{import} in {names:?}");
                }
                let pool = pool_of(&files);
                let types = pool
                    .get_service_by_name("types.v1.Types")
                    .expect("types.v1.Types");
                let nothing = types
                    .methods()
                    .find(|m| m.name() == "Nothing")
                    .expect("Nothing");
                assert_eq!(nothing.input().full_name(), "google.protobuf.Empty");
                // A heartbeat method: the well-known type travels in its frame.
                let wrapped = types
                    .methods()
                    .find(|m| m.name() == "Wrapped")
                    .expect("Wrapped");
                let message = wrapped
                    .output()
                    .get_field_by_name("message")
                    .expect("the frame's message");
                assert_eq!(
                    message
                        .kind()
                        .as_message()
                        .map(|m| m.full_name().to_owned())
                        .as_deref(),
                    Some("google.protobuf.StringValue")
                );

                // A well-known type nobody imported, and a nested message.
                let files = session
                    .files(MessageRequest::FileContainingSymbol(
                        "google.protobuf.Timestamp".to_owned(),
                    ))
                    .await;
                assert_eq!(name_of(&files[0]), "google/protobuf/timestamp.proto");
                let files = session
                    .files(MessageRequest::FileContainingSymbol(
                        "types.v1.Outer.Inner".to_owned(),
                    ))
                    .await;
                assert_eq!(name_of(&files[0]), "types.proto");
            }

            #[tokio::test]
            async fn a_failed_lookup_is_answered_in_the_stream_and_the_stream_goes_on() {
                let mut session = Session::open(server().await).await;
                let error = session
                    .error(Some(MessageRequest::FileContainingSymbol(
                        "lab.v1.NoSuchThing".to_owned(),
                    )))
                    .await;
                assert_eq!(error.error_code, tonic::Code::NotFound as i32);
                assert!(
                    error.error_message.contains("lab.v1.NoSuchThing"),
                    "{}",
                    error.error_message
                );
                // The same stream answers the next request.
                assert!(session.services().await.iter().any(|s| s == "lab.v1.Lab"));

                for request in [
                    MessageRequest::FileByFilename("no/such.proto".to_owned()),
                    MessageRequest::FileContainingSymbol("lab.v1.Lab.NoSuchMethod".to_owned()),
                    MessageRequest::FileContainingExtension(ExtensionRequest {
                        containing_type: "google.protobuf.MethodOptions".to_owned(),
                        extension_number: 1,
                    }),
                    MessageRequest::AllExtensionNumbersOfType("no.Such".to_owned()),
                ] {
                    let error = session.error(Some(request)).await;
                    assert_eq!(
                        error.error_code,
                        tonic::Code::NotFound as i32,
                        "{}",
                        error.error_message
                    );
                }
                let error = session.error(None).await;
                assert_eq!(error.error_code, tonic::Code::InvalidArgument as i32);

                // Extensions: steadfast's method option, in options.proto.
                let files = session
                    .files(MessageRequest::FileContainingExtension(ExtensionRequest {
                        containing_type: "google.protobuf.MethodOptions".to_owned(),
                        extension_number: 51717,
                    }))
                    .await;
                assert_eq!(name_of(&files[0]), "steadfast/v1/options.proto");
                pool_of(&files);
                match session
                    .ask(Some(MessageRequest::AllExtensionNumbersOfType(
                        "google.protobuf.MethodOptions".to_owned(),
                    )))
                    .await
                {
                    MessageResponse::AllExtensionNumbersResponse(r) => {
                        assert_eq!(r.base_type_name, "google.protobuf.MethodOptions");
                        assert!(
                            r.extension_number.contains(&51717),
                            "{:?}",
                            r.extension_number
                        );
                    }
                    other => panic!("all_extension_numbers_of_type answered {other:?}"),
                }
                // Code-first services' descriptor.
                let files = session
                    .files(MessageRequest::FileContainingSymbol(
                        "steadfast.v1.Dispatch.Call".to_owned(),
                    ))
                    .await;
                assert_eq!(name_of(&files[0]), "steadfast/v1/dispatch.proto");
                pool_of(&files);

                // Closing our side ends the call with OK.
                drop(session.requests);
                let end = tokio::time::timeout(ANSWER, session.answers.message())
                    .await
                    .expect("the end within the deadline");
                assert!(matches!(end, Ok(None)), "{end:?}");
            }
        }
    };
}

scenarios!(v1);
scenarios!(v1alpha);

#[test]
fn a_service_no_file_defines_cannot_be_advertised_and_a_bad_set_is_refused() {
    let error = Reflection::new()
        .advertise("no.Such")
        .expect_err("no.Such is nowhere");
    assert!(error.to_string().contains("no.Such"), "{error}");
    Reflection::new()
        .add_file_descriptor_set(b"\x0a\x03bad")
        .expect_err("not a descriptor set");
    let reflection = Reflection::new();
    let names: Vec<&str> = reflection.service_names().collect();
    assert_eq!(
        names,
        [
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"
        ],
        "built-in files list no service but reflection's own"
    );
}

#[test]
fn the_lab_wire_set_holds_lab_v1_and_its_imports() {
    let set = prost_types::FileDescriptorSet::decode(LAB).expect("a descriptor set");
    let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    for file in ["lab/v1/lab.proto", "steadfast/v1/frame.proto"] {
        assert!(names.contains(&file), "{file} in {names:?}");
    }
    DescriptorPool::from_file_descriptor_set(set).expect("self-contained");
}

/// `runtime/generated/steadfast_v1_descriptor_set.bin`, as it should be: the
/// files of `proto/steadfast/v1/`, each after its imports, without source
/// info (as steadfast-build's wire sets), the well-known types left out.
fn steadfast_descriptors() -> Vec<u8> {
    let fds = protox::compile(
        [
            "steadfast/v1/options.proto",
            "steadfast/v1/frame.proto",
            "steadfast/v1/dispatch.proto",
        ],
        [workspace().join("proto")],
    )
    .expect("steadfast's protos compile");
    let file = fds
        .file
        .into_iter()
        .filter(|f| f.name().starts_with("steadfast/v1/"))
        .map(|f| prost_types::FileDescriptorProto {
            source_code_info: None,
            ..f
        })
        .collect();
    prost_types::FileDescriptorSet { file }.encode_to_vec()
}

#[test]
fn the_checked_in_steadfast_descriptors_are_what_protox_compiles() {
    let path = workspace().join("runtime/generated/steadfast_v1_descriptor_set.bin");
    let expected = steadfast_descriptors();
    if std::env::var_os("STEADFAST_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("writing the descriptors");
        return;
    }
    let actual = std::fs::read(&path).expect("reading the checked-in descriptors");
    assert!(
        actual == expected,
        "{} is not what protox compiles from proto/steadfast/v1/: run \
         STEADFAST_BLESS=1 cargo test -p steadfast-tests --test reflection and review the diff",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_reflection_lists_services_and_resolves_the_lab_wire_messages() {
    let Some(python) = tools::python_with_grpc() else {
        return;
    };
    let addr = server().await;
    let script = workspace().join("tests/python/reflection_client.py");
    let stdout =
        steadfast_tests::process::run_python_script(&python, &script, &[addr.to_string()]).await;
    for line in [
        "service lab.v1.Lab",
        "service grpc.reflection.v1alpha.ServerReflection",
        "Sleep lab.v1.SleepRequest -> stream lab.v1.LabSleepFrame",
        "LabSleepFrame heartbeat steadfast.v1.Heartbeat message lab.v1.SleepReply",
        "Digest stream lab.v1.LabDigestUpload -> stream lab.v1.LabDigestFrame",
        "missing NoSuchThing: KeyError",
        "after the miss lab.v1.Identity",
        "Nothing google.protobuf.Empty -> stream types.v1.TypesNothingFrame",
        "TypesWrappedFrame message google.protobuf.StringValue",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line `{line}` in:\n{stdout}"
        );
    }
}
