//! The Worker service: its generated code and its implementation.

use std::time::Duration;

use sha2::{Digest, Sha256};
use steadfast::{Blob, Progress};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

/// The generated messages, server and client of `proto/service/v1/service.proto`.
#[allow(missing_docs)]
pub mod proto {
    tonic::include_proto!("{{crate_name}}.v1");
}

use proto::worker_server::{Worker, WorkerServer};
use proto::{StoreReply, StoreRequest, WorkReply, WorkRequest};

/// The longest `Work` the server accepts.
pub const MAX_WORK: Duration = Duration::from_secs(3600);

/// The wire descriptors, for the server's reflection.
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/steadfast_wire_descriptor_set.bin"
));

/// The Worker service.
#[derive(Debug, Default)]
pub struct WorkerService;

#[tonic::async_trait]
impl Worker for WorkerService {
    async fn work(&self, request: Request<WorkRequest>) -> Result<Response<WorkReply>, Status> {
        let total = Duration::from_millis(request.get_ref().millis);
        if total > MAX_WORK {
            return Err(Status::invalid_argument(format!(
                "millis = {} is more than the maximum of {}",
                total.as_millis(),
                MAX_WORK.as_millis()
            )));
        }
        // The next heartbeat carries what `report` said last.
        let progress = Progress::from_request(&request);
        let start = Instant::now();
        while start.elapsed() < total {
            tokio::time::sleep((total - start.elapsed()).min(Duration::from_millis(250))).await;
            let done = start.elapsed().min(total);
            progress.report(done.as_secs_f32() / total.as_secs_f32(), "working");
        }
        Ok(Response::new(WorkReply {
            took_ms: start.elapsed().as_millis() as u64,
        }))
    }

    async fn store(
        &self,
        _request: Request<StoreRequest>,
        mut blob: Blob,
    ) -> Result<Response<StoreReply>, Status> {
        // The blob arrives decompressed and verified as it is read: memory
        // stays flat whatever its size. Write it somewhere real instead.
        let mut hasher = Sha256::new();
        let mut buffer = vec![0; 64 * 1024];
        let mut size = 0u64;
        loop {
            let read = blob
                .read(&mut buffer)
                .await
                .map_err(|error| steadfast::blob::status(&error))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            size += read as u64;
        }
        let sha256_hex = hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(Response::new(StoreReply { size, sha256_hex }))
    }
}

/// The production server with the Worker service: health (`liveness`,
/// `readiness`), reflection, keepalive and a drain on shutdown, with
/// steadfast's defaults.
pub fn server() -> steadfast::server::Server {
    steadfast::server::Server::builder()
        .add_service(WorkerServer::new(WorkerService))
        .file_descriptor_set(DESCRIPTORS)
        .expect("the descriptors steadfast-build wrote")
}
