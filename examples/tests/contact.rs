//! The contact example against real `contact-server` processes: every call
//! shape through the generated client's reconnecting stubs, and a server that
//! is killed and restarted during concurrent commands, during the resumed task
//! stream, and during a bidi session.

use std::{net::SocketAddr, process::Command, time::Duration};

use steadfast::session::{DEFAULT_OUTBOX_CAPACITY, SessionBuilder};
use steadfast_examples::{
    contact,
    proto::contact::v1::{AgentStatus, TaskResult, contact_client::ContactClient},
};
use steadfast_tests::{
    process::{ChildGuard, server_at},
    wait::{free_port, until},
};
use tonic::transport::Channel;

const CONTACT_SERVER: &str = env!("CARGO_BIN_EXE_contact-server");
const CONTACT_CLIENT: &str = env!("CARGO_BIN_EXE_contact-client");

/// How long a server may take to announce its address.
const SERVER_START: Duration = Duration::from_secs(10);
/// How long a step of a scenario may take before the test fails.
const STEP: Duration = Duration::from_secs(30);

fn contact_server(addr: SocketAddr, args: &[&str]) -> ChildGuard {
    server_at(CONTACT_SERVER, "contact-server", addr, args, SERVER_START)
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

fn client(addr: SocketAddr) -> ContactClient<Channel> {
    ContactClient::connect_lazy(format!("http://{addr}")).expect("a valid address")
}

#[test]
fn the_contact_client_binary_makes_every_call_shape() {
    let addr = loopback();
    let _server = contact_server(addr, &["--tasks", "3", "--delay-ms", "10"]);
    let output = Command::new(CONTACT_CLIENT)
        .args(["--addr", &format!("http://{addr}"), "--statuses", "2"])
        .output()
        .expect("contact-client runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut expected: Vec<String> = (1..=10)
        .map(|id| format!("command {id}: ran `check disk {id}`"))
        .collect();
    expected.extend((1..=3).map(|seq| format!("task {seq}: task-{seq}")));
    expected.push("results held: 3".to_owned());
    expected.extend((1..=2).map(|seq| format!("status {seq} acknowledged")));
    let printed: Vec<String> = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(printed, expected);
}

#[tokio::test]
async fn ten_concurrent_commands_complete_across_a_server_kill() {
    let addr = loopback();
    let server = contact_server(addr, &["--delay-ms", "300"]);
    let client = client(addr).with_retry_policy(steadfast_examples::restart_policy());
    let commands = tokio::spawn(async move { contact::commands(&client).await });
    // SIGKILL while the commands are in flight (or still connecting), then a
    // new server on the same port: every command is retried to completion.
    drop(server);
    let _server = contact_server(addr, &["--delay-ms", "300"]);
    let results = tokio::time::timeout(STEP, commands)
        .await
        .expect("the commands finish")
        .expect("no panic")
        .expect("every command succeeds");
    let ids: Vec<u64> = results.iter().map(|r| r.id).collect();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>());
    for result in &results {
        assert_eq!(result.output, format!("ran `check disk {}`", result.id));
    }
}

#[tokio::test]
async fn the_task_stream_resumes_after_the_last_task_across_two_kills() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let addr = loopback();
    let args = ["--tasks", "30", "--delay-ms", "5"];
    let mut server = contact_server(addr, &args);
    let client = client(addr);
    let mut stream = contact::task_stream(&client, 1);
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(STEP, stream.message()).await {
            Ok(Ok(Some(task))) => seen.push(task.seq),
            Ok(Ok(None)) => break,
            other => panic!("expected a task within {STEP:?}, got {other:?}"),
        }
        if [10, 20].contains(seen.last().expect("one")) {
            drop(server);
            server = contact_server(addr, &args);
        }
    }
    assert_eq!(seen, (1..=30).collect::<Vec<_>>(), "no gap, no repeat");
    drop(stream);
    drop(client);
    drop(server);
    until("the stream's connections end", STEP, || async {
        metrics.num_alive_tasks() == baseline
    })
    .await;
}

#[tokio::test]
async fn a_status_session_acknowledges_every_report_once_across_three_kills() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let addr = loopback();
    let mut server = contact_server(addr, &["--delay-ms", "5"]);
    let client = client(addr);
    let mut session = client
        .send_status_session(SessionBuilder::new().policy(steadfast_examples::restart_policy()));
    let mut acked = Vec::new();
    for seq in 1..=40 {
        session
            .send(AgentStatus {
                seq,
                state: "busy".to_owned(),
            })
            .await
            .expect("the session takes the report");
        match tokio::time::timeout(STEP, session.recv()).await {
            Ok(Some(Ok(ack))) => acked.push(ack.seq),
            other => panic!("expected an acknowledgment within {STEP:?}, got {other:?}"),
        }
        if [10, 20, 30].contains(&seq) {
            drop(server);
            server = contact_server(addr, &["--delay-ms", "5"]);
        }
    }
    assert_eq!(acked, (1..=40).collect::<Vec<_>>(), "no gap, no repeat");
    let closed = session.close().await;
    assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
    drop(client);
    drop(server);
    until("the session's tasks end", STEP, || async {
        metrics.num_alive_tasks() == baseline
    })
    .await;
}

/// Issue 22, item 1: a client-streaming session longer than its outbox
/// capacity deadlocked (capacity 8: 12 results never answered, the 17th of
/// 20 never taken; the 2049th of 3000 at the default capacity).
#[tokio::test]
async fn a_result_session_longer_than_its_capacity_is_answered() {
    let addr = loopback();
    let _server = contact_server(addr, &[]);
    let client = client(addr);
    for (capacity, results) in [(8, 12), (8, 20), (DEFAULT_OUTBOX_CAPACITY, 3000)] {
        let mut session =
            client.tell_result_session(SessionBuilder::new().outbox_capacity(capacity));
        let upload = async {
            for task_seq in 1..=results {
                let result = TaskResult {
                    task_seq,
                    outcome: "done".to_owned(),
                };
                session.send(result).await.expect("the session takes it");
            }
            session.finish();
            session.recv().await
        };
        let held = match tokio::time::timeout(STEP, upload).await {
            Ok(Some(Ok(held))) => held,
            other => panic!("{results} results at capacity {capacity}: {other:?}"),
        };
        // The server holds the results of every session so far: 1..=results.
        assert_eq!(held.tasks, results, "capacity {capacity}");
        let closed = session.close().await;
        assert!(closed.status.is_none(), "{:?}", closed.status);
        assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
    }
}
