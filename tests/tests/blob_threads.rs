//! A blob upload with zstd's workers that goes away mid-blob (the call was
//! cancelled, its deadline passed, the server hung up) stops every thread it
//! started: zstd's workers and the blocking thread that drove them.
//!
//! Alone in its test binary, so that the process's threads are this test's to
//! count (`/proc/self/task`, Linux).

#![allow(missing_docs)]

pub mod blobs {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/cases/blobs/blobs.v1.rs"));
    }
}

use std::time::{Duration, Instant};

use steadfast::__private::upload;
use steadfast::{BlobCodec, BlobSource};
use tokio_stream::StreamExt as _;
use tonic::Request;

use blobs::v1::{Name, StorePutUpload};

/// How long the threads get to stop.
const PATIENCE: Duration = Duration::from_secs(20);

/// zstd's workers asked for.
const WORKERS: usize = 2;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

#[test]
fn an_upload_dropped_mid_blob_stops_zstds_workers_and_its_thread() {
    if !cfg!(target_os = "linux") {
        eprintln!("skipped: counts threads in /proc/self/task, which only Linux has");
        return;
    }
    // One thread for tokio; idle blocking threads leave after 50 ms.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(Duration::from_millis(50))
        .build()
        .expect("a runtime");
    let before = threads();
    runtime.block_on(async {
        // Incompressible and endless: each chunk is about as much input, so a
        // few dozen chunks are several of zstd's 2 MiB jobs.
        let source = BlobSource::from_reader(steadfast_examples::content::reader(1 << 40, 7))
            .codec(BlobCodec::Zstd)
            .workers(WORKERS as u32);
        let (request, _outcome) = upload::<StorePutUpload>(
            Request::new(Name {
                name: "endless".into(),
            }),
            source,
        );
        let mut frames = request.into_inner();
        for _ in 0..64 {
            frames.next().await.expect("an endless blob's frame");
        }
        let during = threads();
        assert!(
            during >= before + 1 + WORKERS,
            "{during} threads while compressing, {before} before: expected zstd's \
             {WORKERS} workers and the blocking thread"
        );

        // The call goes away.
        drop(frames);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = threads();
            if now <= before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{now} threads {PATIENCE:?} after the upload was dropped, {before} before it"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}
