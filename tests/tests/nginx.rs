//! Heartbeats through real nginx (`grpc_pass`, a short `grpc_read_timeout`):
//! nginx answers HTTP/2 PINGs itself, so only application frames keep a call alive.
//! The scenarios every proxy passes (a heartbeat call, a cut plain call, 64 MiB
//! blobs) are in `proxies.rs`, nginx among them.

use std::time::Duration;

use steadfast::{BlobSource, CallOptions};
use steadfast_examples::{
    content,
    lab::RunningLab,
    proto::lab::v1::{DigestRequest, lab_client::LabClient},
};
use steadfast_tests::{nginx::Nginx, tools};
use tonic::Request;

const DEADLINE: Duration = Duration::from_secs(30);

async fn lab_behind_nginx(read_timeout: Duration) -> Option<(RunningLab, Nginx)> {
    let nginx_bin = tools::require("nginx")?;
    let lab = RunningLab::start("behind-nginx").await.expect("server");
    let nginx = tokio::task::spawn_blocking({
        let upstream = lab.addr();
        move || Nginx::start(&nginx_bin, upstream, read_timeout)
    })
    .await
    .expect("join")
    .expect("nginx starts");
    Some((lab, nginx))
}

#[tokio::test]
async fn nginx_with_a_2s_read_timeout_passes_a_blob_upload_and_the_heartbeats_of_5s_of_work() {
    // Digest heartbeats every second: a read timeout of 2 s, not 1 s, leaves room
    // for a heartbeat that comes a little late.
    let Some((_lab, nginx)) = lab_behind_nginx(Duration::from_secs(2)).await else {
        return;
    };
    let mut client = LabClient::connect(nginx.url()).await.expect("connect");

    const SIZE: u64 = 8 * 1024 * 1024 + 3;
    let (options, progress) = CallOptions::new().progress_watch();
    let mut request = Request::new(DigestRequest { extra_millis: 5000 });
    options.attach(&mut request);
    let source = BlobSource::from_reader(content::reader(SIZE, 21));
    let reply = tokio::time::timeout(DEADLINE, client.digest(request, source))
        .await
        .expect("the call ends")
        .expect("the blob goes through nginx and heartbeats keep the call alive")
        .into_inner();
    assert_eq!(reply.size, SIZE);
    assert_eq!(reply.sha256_hex, content::sha256_hex(SIZE, 21));
    let last = progress.borrow().clone().expect("heartbeats were observed");
    assert!(
        last.seq >= 3,
        "about 5 heartbeats in 5 s, last seq {}",
        last.seq
    );
    assert!(
        !nginx.error_log().contains("upstream timed out"),
        "{}",
        nginx.error_log()
    );
}
