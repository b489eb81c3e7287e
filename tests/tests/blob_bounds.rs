//! The bounds of blobs on generated methods hold whatever the client does
//! (issue 21, item 4), over a real server on 127.0.0.1:
//!
//! - a client that keeps a download's blob (`Get`, `GetSlow`) but stops
//!   reading: the server drops the blob's source at the call's deadline;
//! - an upload chunk over `max_chunk` gets `RESOURCE_EXHAUSTED` at every size,
//!   also past tonic's 4 MiB message limit (where tonic alone answers
//!   `OUT_OF_RANGE`).
//!
//! The service is the `blobs` case of `golden/cases/`.

#![allow(missing_docs)]

pub mod blobs {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/cases/blobs/blobs.v1.rs"));
    }
}

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use steadfast_tests::io::DropCounted;

use steadfast::__private::Upload;
use steadfast::__private::v1::{BlobHeader, Chunk, Codec};
use steadfast::{Blob, BlobCodec, BlobSource};
use tokio::io::AsyncReadExt;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};

use blobs::v1::store_client::StoreClient;
use blobs::v1::store_server::{Store, StoreServer};
use blobs::v1::store_wire::store_client::StoreClient as WireClient;
use blobs::v1::{Name, StorePutUpload, Stored};

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(20);

/// How long a client that stopped reading may keep a server's download alive
/// past its deadline.
const AFTER_DEADLINE: Duration = Duration::from_secs(1);

/// Downloads send 256 MiB of zeros as they are (far more than the windows and
/// queues on the way); uploads are read to their end.
struct Shelf {
    dropped: Arc<AtomicUsize>,
}

impl Shelf {
    fn source(&self) -> BlobSource {
        let reader = DropCounted::zeros(256 << 20, &self.dropped);
        BlobSource::from_reader(reader).codec(BlobCodec::None)
    }
}

async fn length(mut blob: Blob) -> Result<Response<Stored>, Status> {
    let size = tokio::io::copy(&mut blob, &mut tokio::io::sink())
        .await
        .map_err(|error| steadfast::blob::status(&error))?;
    Ok(Response::new(Stored { size }))
}

#[tonic::async_trait]
impl Store for Shelf {
    async fn put(&self, _: Request<Name>, blob: Blob) -> Result<Response<Stored>, Status> {
        length(blob).await
    }

    async fn put_slow(&self, _: Request<Name>, blob: Blob) -> Result<Response<Stored>, Status> {
        length(blob).await
    }

    async fn get(&self, _: Request<Name>) -> Result<(Response<Stored>, BlobSource), Status> {
        Ok((Response::new(Stored { size: 0 }), self.source()))
    }

    async fn get_slow(&self, _: Request<Name>) -> Result<(Response<Stored>, BlobSource), Status> {
        Ok((Response::new(Stored { size: 0 }), self.source()))
    }

    async fn transform(
        &self,
        _: Request<()>,
        _: Blob,
    ) -> Result<(Response<Stored>, BlobSource), Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn transform_slow(
        &self,
        _: Request<Name>,
        _: Blob,
    ) -> Result<(Response<()>, BlobSource), Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn r#move(
        &self,
        _: Request<Name>,
        _: Blob,
    ) -> Result<(Response<Name>, BlobSource), Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn wait(&self, _: Request<Name>) -> Result<Response<Stored>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn stat(&self, _: Request<Name>) -> Result<Response<Stored>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }
}

/// A [`Shelf`] serving on 127.0.0.1 (until the test's runtime ends), and a
/// channel to it.
struct Running {
    channel: Channel,
    dropped: Arc<AtomicUsize>,
}

impl Running {
    async fn start() -> Running {
        let dropped = Arc::new(AtomicUsize::new(0));
        let shelf = Shelf {
            dropped: Arc::clone(&dropped),
        };
        let addr =
            steadfast_tests::serve::spawn(Server::builder().add_service(StoreServer::new(shelf)))
                .await;
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect()
            .await
            .expect("connect");
        Running { channel, dropped }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_a_download_frees_the_server_at_the_deadline() {
    for slow in [false, true] {
        let running = Running::start().await;
        let mut client = StoreClient::new(running.channel.clone());
        let deadline = Duration::from_millis(1500);
        let started = tokio::time::Instant::now();
        let mut request = Request::new(Name::default());
        request.set_timeout(deadline);
        let call = async {
            if slow {
                client.get_slow(request).await
            } else {
                client.get(request).await
            }
        };
        let (_, mut blob) = tokio::time::timeout(PATIENCE, call)
            .await
            .expect("the call answers")
            .unwrap_or_else(|status| panic!("slow: {slow}: {status:?}"));
        // A first read, then none: the client keeps the blob.
        let mut first = vec![0; 1024];
        blob.read_exact(&mut first).await.expect("the first bytes");
        assert_eq!(running.dropped.load(Ordering::SeqCst), 0, "slow: {slow}");

        let dropped = Arc::clone(&running.dropped);
        steadfast_tests::wait::until(
            &format!("slow: {slow}: the server dropped the source at the deadline"),
            deadline + AFTER_DEADLINE,
            || {
                let dropped = dropped.load(Ordering::SeqCst) == 1;
                async move { dropped }
            },
        )
        .await;
        assert!(started.elapsed() >= deadline, "slow: {slow}");

        let error =
            tokio::time::timeout(PATIENCE, tokio::io::copy(&mut blob, &mut tokio::io::sink()))
                .await
                .expect("the read ends")
                .expect_err("the blob cannot be whole");
        let status = steadfast::blob::status(&error);
        assert_eq!(
            status.code(),
            Code::DeadlineExceeded,
            "slow: {slow}: {status:?}"
        );
    }
}

/// An upload to `Put` whose blob is one raw chunk of `size` zeros, frame by
/// frame on the wire method; the call's status.
async fn put_one_chunk(channel: Channel, size: usize) -> Status {
    let data: prost::bytes::Bytes = vec![0u8; size].into();
    let checksum = twox_hash::XxHash3_64::oneshot(&data);
    let frames = vec![
        StorePutUpload::head(Name::default()),
        StorePutUpload::blob(BlobHeader {
            size: Some(size as u64),
            codec: Codec::None.into(),
        }),
        StorePutUpload::chunk(Chunk {
            data,
            offset: 0,
            last: true,
            checksum: Some(checksum),
        }),
    ];
    let mut wire = WireClient::new(channel);
    let call = async {
        wire.put(tokio_stream::iter(frames)).await?;
        Err::<(), _>(Status::internal("the upload was taken"))
    };
    tokio::time::timeout(PATIENCE, call)
        .await
        .expect("the call ends")
        .expect_err("refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_chunk_over_the_limit_is_resource_exhausted_at_every_size() {
    let running = Running::start().await;
    // Under tonic's limit (as before), then over it: 5 MiB and 17 MiB.
    for size in [2 << 20, 5 << 20, 17 << 20] {
        let status = put_one_chunk(running.channel.clone(), size).await;
        assert_eq!(status.code(), Code::ResourceExhausted, "{size}: {status:?}");
        assert!(
            status.message().contains("limit of 1048576 bytes"),
            "{size}: {status:?}"
        );
    }
    // The server serves on.
    let mut client = StoreClient::new(running.channel.clone());
    let reply = client
        .put(Name::default(), BlobSource::from(vec![7u8; 1000]))
        .await
        .expect("a small upload");
    assert_eq!(reply.into_inner().size, 1000);
}
