use tonic::Code;
use tonic::metadata::MetadataMap;

use super::function::parse_params;
use super::*;
use crate::{Blob, BlobSource};

async fn unit(_ctx: Context, _params: ()) -> Result<(), tonic::Status> {
    Ok(())
}

fn named(name: &str) -> Function {
    function(name.to_owned(), unit)
}

#[test]
fn a_name_mounted_twice_is_an_error_and_nothing_of_that_mount_is_added() {
    let server = DispatchServer::new()
        .mount(named("a").origin("First"))
        .expect("one function");
    let error = server
        .clone()
        .mount(vec![named("b"), named("a").origin("Second")])
        .expect_err("a twice");
    assert_eq!(
        error,
        MountError::Duplicate {
            name: "a".into(),
            first: Some("First".into()),
            second: Some("Second".into()),
        }
    );
    assert_eq!(
        error.to_string(),
        "two dispatch functions are named `a`: one from First, one from Second"
    );
    // The failed mount added nothing: `b` can still be mounted once.
    let server = server.mount(named("b")).expect("b is new");
    let names: Vec<_> = server.functions().map(Function::name).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn a_name_twice_within_one_mount_is_an_error() {
    let error = DispatchServer::new()
        .mount([named("x"), named("x")])
        .expect_err("x twice");
    assert!(matches!(error, MountError::Duplicate { ref name, .. } if name == "x"));
}

#[test]
fn names_that_cannot_be_metadata_are_refused() {
    for name in [String::new(), "a b".into(), "é".into(), "x".repeat(257)] {
        let error = DispatchServer::new()
            .mount(named(&name))
            .expect_err("not a valid name");
        assert!(matches!(error, MountError::InvalidName { .. }), "{name:?}");
    }
    DispatchServer::new()
        .mount(named(&"x".repeat(256)))
        .expect("256 bytes is the limit");
}

#[test]
fn bad_params_name_the_field_path_and_the_expected_type() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct P {
        items: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        size: u64,
    }
    let status = parse_params::<P>("f", br#"{"items": [{"size": 1}, {"size": -1}]}"#)
        .expect_err("a negative size");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("`items[1].size`"), "{status:?}");
    assert!(status.message().contains("u64"), "{status:?}");

    let status = parse_params::<P>("f", b"{} trailing").expect_err("trailing bytes");
    assert_eq!(status.code(), Code::InvalidArgument);

    let status = parse_params::<P>("f", b"not json").expect_err("not JSON");
    assert_eq!(status.code(), Code::InvalidArgument);

    // Empty params are `null`: the params of a function without params.
    parse_params::<()>("f", b"").expect("empty is null");
}

#[test]
fn the_listed_names_are_sorted_and_bounded() {
    let functions: Vec<_> = (0..200)
        .map(|i| named(&format!("function_{i:03}")))
        .collect();
    let server = DispatchServer::new().mount(functions).expect("distinct");
    let mut metadata = MetadataMap::new();
    metadata.insert(FUNC_NAME, "nope".parse().expect("ascii"));
    let status = server.resolve(&metadata).expect_err("nope is unknown");
    assert_eq!(status.code(), Code::Unimplemented);
    let message = status.message();
    assert!(
        message.contains("function_000, function_001, function_002"),
        "{message}"
    );
    assert!(message.len() < MAX_LISTED_NAMES_BYTES + 200, "{message}");
    assert!(message.ends_with(" more"), "{message}");
}

#[test]
fn the_shape_of_a_typed_handler_sets_the_blob_flags() {
    async fn takes(_: Context, _: (), _: Blob) -> Result<(), tonic::Status> {
        Ok(())
    }
    async fn returns(_: Context, _: ()) -> Result<((), BlobSource), tonic::Status> {
        Ok(((), BlobSource::from_bytes(Vec::new())))
    }
    async fn both(_: Context, _: (), b: Blob) -> Result<(u8, BlobSource), tonic::Status> {
        Ok((1, BlobSource::from_reader(b)))
    }
    let flags = |f: Function| (f.takes_blob(), f.returns_blob());
    assert_eq!(flags(function("u", unit)), (false, false));
    assert_eq!(flags(function("t", takes)), (true, false));
    assert_eq!(flags(function("r", returns)), (false, true));
    assert_eq!(flags(function("b", both)), (true, true));
}

#[cfg(feature = "schema")]
#[test]
fn schemas_describe_params_and_results() {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct P {
        delay_ms: u64,
    }
    async fn f(_: Context, _: P) -> Result<Vec<String>, tonic::Status> {
        Ok(Vec::new())
    }
    let info = function("f", f)
        .heartbeat(std::time::Duration::from_millis(250))
        .schemas_of::<P, Vec<String>>()
        .info();
    assert_eq!(info.heartbeat_ms, 250);
    let params: serde_json::Value = serde_json::from_str(&info.params_schema).expect("JSON");
    assert_eq!(params["properties"]["delay_ms"]["type"], "integer");
    let result: serde_json::Value = serde_json::from_str(&info.result_schema).expect("JSON");
    assert_eq!(result["type"], "array");
}

#[tokio::test]
async fn a_function_can_be_called_directly_with_a_context() {
    async fn greet(ctx: Context, name: String) -> Result<String, tonic::Status> {
        ctx.progress().set(1.0);
        Ok(format!("{}: {name}", ctx.function()))
    }
    let f = function("greet", greet);
    let reply = f
        .call(
            Context::new("greet", MetadataMap::new()),
            bytes::Bytes::from_static(br#""Ada""#),
            None,
        )
        .await
        .expect("greets");
    assert_eq!(&reply.result[..], br#""greet: Ada""#);
    assert!(reply.blob.is_none());
}

#[test]
fn a_typed_function_has_empty_schemas_unless_they_are_set() {
    let info = function("u", unit).info();
    assert_eq!(
        (info.params_schema.as_str(), info.result_schema.as_str()),
        ("", "")
    );
}

mod wire_shape {
    use std::pin::Pin;

    use futures_core::Stream;
    use tonic::{Code, Request, Status};

    use crate::Blob;
    use crate::BlobSource;
    use crate::blob::BlobLimits;
    use crate::blob::glue::{Upload, accept_upload, upload};
    use crate::proto::v1::{BlobHeader, CallHead, Chunk, Codec, DispatchUpload};

    fn head() -> DispatchUpload {
        DispatchUpload::head(CallHead {
            params: bytes::Bytes::from_static(b"{}"),
        })
    }

    fn header() -> DispatchUpload {
        DispatchUpload::blob(BlobHeader {
            size: Some(0),
            codec: Codec::Zstd as i32,
        })
    }

    fn chunk() -> DispatchUpload {
        DispatchUpload::chunk(Chunk::default())
    }

    type Frames = tokio_stream::Iter<std::vec::IntoIter<Result<DispatchUpload, Status>>>;

    fn upload_of(frames: Vec<DispatchUpload>) -> Request<Frames> {
        Request::new(tokio_stream::iter(
            frames.into_iter().map(Ok).collect::<Vec<_>>(),
        ))
    }

    #[tokio::test]
    async fn a_head_and_the_end_is_a_call_without_a_blob() {
        let (request, blob): (_, Option<Blob>) =
            accept_upload(upload_of(vec![head()]), BlobLimits::default())
                .await
                .expect("a head alone");
        assert_eq!(&request.get_ref().params[..], b"{}");
        assert!(blob.is_none());
        // The glue of a generated `request_blob` method still requires the blob.
        let status = accept_upload::<_, _, Blob>(upload_of(vec![head()]), BlobLimits::default())
            .await
            .expect_err("a blob method without its blob");
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    #[tokio::test]
    async fn a_head_and_a_blob_header_is_a_call_with_a_blob() {
        let (_, blob): (_, Option<Blob>) = accept_upload(
            upload_of(vec![head(), header(), chunk()]),
            BlobLimits::default(),
        )
        .await
        .expect("a head and a blob");
        assert_eq!(blob.expect("a blob").declared_size(), Some(0));
    }

    #[tokio::test]
    async fn anything_else_breaks_the_protocol() {
        for frames in [
            vec![header(), head()],
            vec![head(), chunk()],
            vec![head(), head()],
            vec![],
            vec![DispatchUpload::default()],
        ] {
            let status = accept_upload::<_, _, Option<Blob>>(
                upload_of(frames.clone()),
                BlobLimits::default(),
            )
            .await
            .expect_err("not head, [blob, chunks]");
            assert_eq!(status.code(), Code::InvalidArgument, "{frames:?}");
        }
    }

    async fn frames(mut stream: impl Stream<Item = DispatchUpload> + Unpin) -> Vec<DispatchUpload> {
        let mut frames = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await
        {
            frames.push(frame);
        }
        frames
    }

    #[tokio::test]
    async fn a_client_without_a_blob_sends_the_head_alone() {
        let (request, _outcome) =
            upload::<DispatchUpload>(Request::new(CallHead::default()), None::<BlobSource>);
        assert_eq!(
            frames(request.into_inner()).await,
            [DispatchUpload::head(CallHead::default())]
        );

        let (request, _outcome) = upload::<DispatchUpload>(
            Request::new(CallHead::default()),
            BlobSource::from_bytes(vec![1, 2, 3]),
        );
        let sent = frames(request.into_inner()).await;
        assert!(sent.len() >= 3, "head, header, chunks: {sent:?}");
        assert_eq!(sent[0], DispatchUpload::head(CallHead::default()));
        assert!(matches!(
            sent[1].clone().into_part(),
            Some(crate::blob::glue::UploadPart::Blob(_))
        ));
    }
}

/// The shape the module docs give for `#[steadfast::service]`'s expansion, by hand:
/// it compiles, mounts, and its functions carry what the trait says.
mod expansion_shape {
    use std::future::Future;
    use std::sync::Arc;
    use std::time::Duration;

    use tonic::Status;

    use super::super::{Context, DispatchServer, Function, IntoFunctions, function};
    use crate::{Blob, BlobSource};

    trait Model: Send + Sync + 'static {
        fn hello(&self, params: String) -> impl Future<Output = Result<String, Status>> + Send;
        fn predict(
            &self,
            ctx: Context,
            params: u64,
            input: Blob,
        ) -> impl Future<Output = Result<(u64, BlobSource), Status>> + Send;
    }

    struct ModelServer<T> {
        inner: Arc<T>,
    }

    impl<T: Model> IntoFunctions for ModelServer<T> {
        fn into_functions(self) -> Vec<Function> {
            let inner = self.inner;
            vec![
                function("hello", {
                    let inner = Arc::clone(&inner);
                    move |_ctx: Context, params: String| {
                        let inner = Arc::clone(&inner);
                        async move { inner.hello(params).await }
                    }
                })
                .doc("Greets.")
                .origin("Model"),
                function("predict", {
                    let inner = Arc::clone(&inner);
                    move |ctx: Context, params: u64, input: Blob| {
                        let inner = Arc::clone(&inner);
                        async move { inner.predict(ctx, params, input).await }
                    }
                })
                .heartbeat(Duration::from_millis(500))
                .origin("Model"),
            ]
        }
    }

    struct Echo;

    impl Model for Echo {
        async fn hello(&self, params: String) -> Result<String, Status> {
            Ok(params)
        }
        async fn predict(
            &self,
            ctx: Context,
            params: u64,
            input: Blob,
        ) -> Result<(u64, BlobSource), Status> {
            ctx.progress().set(0.5);
            Ok((params, BlobSource::from_reader(input)))
        }
    }

    #[test]
    fn a_hand_expanded_service_mounts_with_its_settings() {
        let server = DispatchServer::new()
            .mount(ModelServer {
                inner: Arc::new(Echo),
            })
            .expect("distinct names");
        let described = server.describe().functions;
        assert_eq!(described.len(), 2);
        let (hello, predict) = (&described[0], &described[1]);
        assert_eq!(
            (hello.name.as_str(), hello.doc.as_str()),
            ("hello", "Greets.")
        );
        assert_eq!(hello.heartbeat_ms, 0);
        assert_eq!(predict.name, "predict");
        assert_eq!(predict.heartbeat_ms, 500);
        assert!(predict.takes_blob && predict.returns_blob);
    }
}

/// `steadfast-macros` checks `#[steadfast::func(name = "...")]` against its own
/// copy of this bound (a proc-macro crate cannot read this one): keep them equal.
#[test]
fn the_macros_name_bound_is_the_servers() {
    assert_eq!(super::MAX_NAME_BYTES, 256);
}
