//! The contact example against real `contact-server` processes: every call
//! shape through the generated client's reconnecting stubs, and a server that
//! is killed and restarted during concurrent commands, during the resumed task
//! stream, and during a bidi session.

use std::{net::SocketAddr, process::Command, time::Duration};

use steadfast::CallOptions;
use steadfast::session::{DEFAULT_OUTBOX_CAPACITY, SessionBuilder};
use steadfast_examples::{
    contact,
    proto::contact::v1::{
        AgentStatus, Command as RemoteCommand, TaskResult, contact_client::ContactClient,
    },
};
use steadfast_tests::{
    process::{ChildGuard, server_at},
    wait::{free_port, until},
};
use tonic::{Code, Request, transport::Channel};

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
    let printed: Vec<String> = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(printed, contact_client_output());
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

/// How long the server stays down in the wait-for-ready scenarios: a restart
/// that the default retry policy (about 1.5 s of backoff) cannot ride out.
const OUTAGE: Duration = Duration::from_secs(10);

/// The output `contact-client --statuses 2` prints against a server with 3 tasks.
fn contact_client_output() -> Vec<String> {
    let mut expected: Vec<String> = (1..=10)
        .map(|id| format!("command {id}: ran `check disk {id}`"))
        .collect();
    expected.extend((1..=3).map(|seq| format!("task {seq}: task-{seq}")));
    expected.push("results held: 3".to_owned());
    expected.extend((1..=2).map(|seq| format!("status {seq} acknowledged")));
    expected
}

#[test]
fn the_contact_client_binary_waits_out_a_server_that_starts_10s_after_it() {
    let addr = loopback();
    let mut client = ChildGuard::spawn(
        Command::new(CONTACT_CLIENT)
            .args(["--addr", &format!("http://{addr}"), "--statuses", "2"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    )
    .expect("contact-client runs");
    // The outage itself: nothing to wait for but the time.
    std::thread::sleep(OUTAGE);
    assert!(
        client.0.try_wait().expect("waitable").is_none(),
        "the client still waits for its server after {OUTAGE:?}"
    );
    let _server = contact_server(addr, &["--tasks", "3", "--delay-ms", "10"]);
    let give_up = std::time::Instant::now() + STEP;
    while client.0.try_wait().expect("waitable").is_none() {
        assert!(
            std::time::Instant::now() < give_up,
            "the client finishes within {STEP:?} of the server's start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = client.0.try_wait().expect("waitable").expect("exited");
    let read = |pipe: Option<&mut dyn std::io::Read>| {
        let mut text = String::new();
        pipe.expect("piped")
            .read_to_string(&mut text)
            .expect("utf-8 output");
        text
    };
    let stdout = read(
        client
            .0
            .stdout
            .as_mut()
            .map(|p| p as &mut dyn std::io::Read),
    );
    let stderr = read(
        client
            .0
            .stderr
            .as_mut()
            .map(|p| p as &mut dyn std::io::Read),
    );
    assert!(status.success(), "{status}: {stderr}");
    let printed: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert_eq!(printed, contact_client_output());
}

#[tokio::test]
async fn a_10s_restart_is_waited_out_by_wait_for_ready_calls_sessions_and_resuming_streams_and_fails_others_fast()
 {
    let addr = loopback();
    let args = ["--tasks", "30", "--delay-ms", "10"];
    let server = contact_server(addr, &args);
    let waiting = client(addr).wait_for_ready(true);
    let command = |id| RemoteCommand {
        id,
        line: format!("check disk {id}"),
    };
    waiting
        .clone()
        .remote_cmd(command(1))
        .await
        .expect("the server is up");
    // The session waits for ready because its client does.
    let mut session = waiting.send_status_session(SessionBuilder::new());
    let report = |seq| AgentStatus {
        seq,
        state: "busy".to_owned(),
    };
    session.send(report(1)).await.expect("taken");
    match tokio::time::timeout(STEP, session.recv()).await {
        Ok(Some(Ok(ack))) => assert_eq!(ack.seq, 1),
        other => panic!("expected an acknowledgment, got {other:?}"),
    }
    // So does the resuming stream's next attempt.
    let mut stream = contact::task_stream(&waiting, 1);
    let mut seen = Vec::new();
    while seen.len() < 5 {
        match tokio::time::timeout(STEP, stream.message()).await {
            Ok(Ok(Some(task))) => seen.push(task.seq),
            other => panic!("expected a task, got {other:?}"),
        }
    }

    drop(server); // SIGKILL
    let killed = tokio::time::Instant::now();
    let call = {
        let mut waiting = waiting.clone();
        tokio::spawn(async move {
            let mut request = Request::new(command(2));
            request.set_timeout(OUTAGE + STEP);
            waiting.remote_cmd(request).await
        })
    };
    let tasks = tokio::spawn(async move {
        while let Some(task) = stream.message().await? {
            seen.push(task.seq);
        }
        Ok::<_, tonic::Status>(seen)
    });
    let acked = tokio::spawn(async move {
        session.send(report(2)).await.expect("taken");
        let ack = session.recv().await;
        (ack, session)
    });

    // Without wait-for-ready, a call fails fast as before: on a client that
    // does not wait, and on one that does when the call says not to.
    let started = tokio::time::Instant::now();
    let status = client(addr)
        .remote_cmd(command(3))
        .await
        .expect_err("no server");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let mut request = Request::new(command(4));
    CallOptions::new()
        .wait_for_ready(false)
        .attach(&mut request);
    let status = waiting
        .clone()
        .remote_cmd(request)
        .await
        .expect_err("no server");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "both failed within the default policy's backoff, not the outage: {:?}",
        started.elapsed()
    );

    tokio::time::sleep_until(killed + OUTAGE).await;
    assert!(!call.is_finished(), "the call waits for the server");
    assert!(!acked.is_finished(), "the session waits for the server");
    assert!(!tasks.is_finished(), "the stream waits for the server");
    let _server = contact_server(addr, &args);
    let reply = tokio::time::timeout(STEP, call)
        .await
        .expect("the call answers after the restart")
        .expect("no panic")
        .expect("the call succeeds");
    assert_eq!(reply.into_inner().output, "ran `check disk 2`");
    let (ack, session) = tokio::time::timeout(STEP, acked)
        .await
        .expect("the session answers after the restart")
        .expect("no panic");
    match ack {
        Some(Ok(ack)) => assert_eq!(ack.seq, 2),
        other => panic!("expected the acknowledgment of 2, got {other:?}"),
    }
    let closed = session.close().await;
    assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
    let seen = tokio::time::timeout(STEP, tasks)
        .await
        .expect("the stream resumes after the restart")
        .expect("no panic")
        .expect("the stream ends well");
    assert_eq!(seen, (1..=30).collect::<Vec<_>>(), "no gap, no repeat");
}

#[tokio::test]
async fn a_wait_for_ready_call_with_a_2s_deadline_and_no_server_fails_with_deadline_exceeded_at_it()
{
    let mut waiting = client(loopback()).wait_for_ready(true);
    let mut request = Request::new(RemoteCommand {
        id: 1,
        line: "uptime".to_owned(),
    });
    let deadline = Duration::from_secs(2);
    request.set_timeout(deadline);
    let started = tokio::time::Instant::now();
    let status = waiting.remote_cmd(request).await.expect_err("no server");
    let took = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status
            .message()
            .contains("waiting for the server to be ready"),
        "{status:?}"
    );
    assert!(
        took >= deadline - Duration::from_millis(100) && took < deadline + Duration::from_secs(3),
        "at about its deadline: {took:?}"
    );
}
