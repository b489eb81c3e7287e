//! The same scenarios through real nginx (`grpc_pass`, `grpc_read_timeout 1s`):
//! nginx answers HTTP/2 PINGs itself, so only application frames keep a call alive.

use std::time::Duration;

use steadfast::CallOptions;
use steadfast_examples::{
    lab::RunningLab,
    proto::lab::v1::{SleepRequest, WhoAmIRequest, lab_client::LabClient},
};
use steadfast_tests::{nginx::Nginx, tools};
use tonic::Request;

const DEADLINE: Duration = Duration::from_secs(30);

async fn lab_behind_nginx() -> Option<(RunningLab, Nginx)> {
    let nginx_bin = tools::require("nginx")?;
    let lab = RunningLab::start("behind-nginx").await.expect("server");
    let nginx = tokio::task::spawn_blocking({
        let upstream = lab.addr();
        move || Nginx::start(&nginx_bin, upstream, Duration::from_secs(1))
    })
    .await
    .expect("join")
    .expect("nginx starts");
    Some((lab, nginx))
}

#[tokio::test]
async fn nginx_with_a_1s_read_timeout_cuts_a_plain_3s_sleep() {
    let Some((_lab, nginx)) = lab_behind_nginx().await else {
        return;
    };
    let mut client = LabClient::connect(nginx.url()).await.expect("connect");

    let me = client
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("quick calls pass")
        .into_inner();
    assert_eq!(me.name, "behind-nginx");

    let status = tokio::time::timeout(DEADLINE, client.sleep_plain(SleepRequest { millis: 3000 }))
        .await
        .expect("the call ends")
        .expect_err("nginx cuts a call silent for more than 1 s");
    assert!(
        nginx.error_log().contains("upstream timed out"),
        "nginx reports its read timeout ({status}); error.log:\n{}",
        nginx.error_log()
    );
}

#[tokio::test]
async fn nginx_with_a_1s_read_timeout_lets_a_heartbeat_3s_sleep_through() {
    let Some((_lab, nginx)) = lab_behind_nginx().await else {
        return;
    };
    let mut client = LabClient::connect(nginx.url()).await.expect("connect");

    let (options, mut progress) = CallOptions::new().progress_watch();
    let mut request = Request::new(SleepRequest { millis: 3000 });
    options.attach(&mut request);
    let reply = tokio::time::timeout(DEADLINE, client.sleep(request))
        .await
        .expect("the call ends")
        .expect("heartbeats keep the call alive through nginx")
        .into_inner();
    assert!(reply.slept_ms >= 3000);
    let last = progress
        .borrow_and_update()
        .clone()
        .expect("heartbeats were observed");
    assert!(
        last.seq >= 4,
        "about 6 heartbeats in 3 s, last seq {}",
        last.seq
    );
    assert!(last.progress.is_some_and(|p| p > 0.5), "{last:?}");
    assert!(
        !nginx.error_log().contains("upstream timed out"),
        "{}",
        nginx.error_log()
    );
}
