//! The contact example (`proto/contact.proto`): an agent talks to its
//! controller with every call shape, all through steadfast's reconnecting
//! stubs.
//!
//! - `RemoteCmd` (unary, idempotent): [`commands`] fires ten calls at once and
//!   collects their results later; each is retried by the service's policy.
//! - `GetTask` (server streaming): [`tasks`] reads the task list through a
//!   stream that resumes after a reconnect from the last task it saw.
//! - `TellResult` (client streaming): [`report_results`] sends a result per
//!   task through a reconnecting session.
//! - `SendStatus` (bidi): [`report_status`] sends status reports through a
//!   reconnecting session, each acknowledged by the server.
//!
//! [`ContactService`] is the server `contact-server` runs; [`run`] is what
//! `contact-client` does, and the integration tests too.

use std::{
    collections::{BTreeSet, HashMap},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use steadfast::session::{ResumingStream, SessionBuilder};
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming, transport::Channel};

use crate::proto::contact::v1::{
    AgentStatus, Command, CommandResult, ResultsHeld, StatusAck, Task, TaskQuery, TaskResult,
    contact_client::ContactClient,
    contact_server::{Contact, ContactServer},
};

/// How many messages a streaming call queues for a slow client.
const QUEUE: usize = 64;

/// The controller: runs commands (once per id), streams its task list, keeps
/// results, acknowledges status reports.
///
/// When told to stop, its streams end with `UNAVAILABLE` ("the server is
/// shutting down"), so a graceful shutdown does not wait for them and their
/// clients reconnect.
#[derive(Debug, Clone)]
pub struct ContactService {
    tasks: u64,
    delay: Duration,
    stopping: watch::Receiver<bool>,
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Each command's output by id: a repeat is answered from here.
    outputs: Mutex<HashMap<u64, String>>,
    /// Commands actually run.
    runs: AtomicU64,
    /// Tasks with a result.
    results: Mutex<BTreeSet<u64>>,
}

impl ContactService {
    /// A controller with `tasks` tasks, waiting `delay` before each command's
    /// answer, each task and each acknowledgment; its streams end when
    /// `stopping` turns `true`.
    pub fn new(tasks: u64, delay: Duration, stopping: watch::Receiver<bool>) -> Self {
        ContactService {
            tasks,
            delay,
            stopping,
            state: Arc::default(),
        }
    }

    /// How many commands this server ran (a repeated id is not run again).
    pub fn commands_run(&self) -> u64 {
        self.state.runs.load(Ordering::SeqCst)
    }

    /// The tonic service to mount.
    pub fn into_server(self) -> ContactServer<Self> {
        ContactServer::new(self)
    }

    async fn pause(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }

    /// Forwards `items` as a response stream until they end or fail, the
    /// client goes away, or the server stops (then `UNAVAILABLE`).
    fn stream<T, S>(&self, items: S) -> Responses<T>
    where
        T: Send + 'static,
        S: Stream<Item = Result<T, Status>> + Send + 'static,
    {
        let (sender, stream) = mpsc::channel(QUEUE);
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(items);
            loop {
                let item = tokio::select! {
                    () = async { drop(stopping.wait_for(|stop| *stop).await) } => {
                        let _ = sender.send(Err(Status::unavailable("the server is shutting down"))).await;
                        return;
                    }
                    item = items.next() => item,
                };
                let Some(item) = item else { return };
                let failed = item.is_err();
                if sender.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Box::pin(ReceiverStream::new(stream))
    }
}

/// A response stream of the service.
type Responses<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Contact for ContactService {
    async fn remote_cmd(
        &self,
        request: Request<Command>,
    ) -> Result<Response<CommandResult>, Status> {
        let Command { id, line } = request.into_inner();
        if let Some(output) = self.state.outputs.lock().expect("lock").get(&id) {
            return Ok(Response::new(CommandResult {
                id,
                output: output.clone(),
            }));
        }
        self.pause().await;
        let output = format!("ran `{line}`");
        let output = self
            .state
            .outputs
            .lock()
            .expect("lock")
            .entry(id)
            .or_insert_with(|| {
                self.state.runs.fetch_add(1, Ordering::SeqCst);
                output
            })
            .clone();
        Ok(Response::new(CommandResult { id, output }))
    }

    type GetTaskStream = Responses<Task>;

    async fn get_task(
        &self,
        request: Request<TaskQuery>,
    ) -> Result<Response<Self::GetTaskStream>, Status> {
        let from = request.into_inner().from_seq.max(1);
        let this = self.clone();
        let tasks = tokio_stream::iter(from..=self.tasks).then(move |seq| {
            let this = this.clone();
            async move {
                this.pause().await;
                Ok(Task {
                    seq,
                    name: format!("task-{seq}"),
                })
            }
        });
        Ok(Response::new(self.stream(tasks)))
    }

    async fn tell_result(
        &self,
        request: Request<Streaming<TaskResult>>,
    ) -> Result<Response<ResultsHeld>, Status> {
        let mut results = request.into_inner();
        while let Some(result) = results.message().await? {
            self.state
                .results
                .lock()
                .expect("lock")
                .insert(result.task_seq);
        }
        let tasks = self.state.results.lock().expect("lock").len() as u64;
        Ok(Response::new(ResultsHeld { tasks }))
    }

    type SendStatusStream = Responses<StatusAck>;

    async fn send_status(
        &self,
        request: Request<Streaming<AgentStatus>>,
    ) -> Result<Response<Self::SendStatusStream>, Status> {
        let this = self.clone();
        let acks = request.into_inner().then(move |status| {
            let this = this.clone();
            async move {
                let status = status?;
                this.pause().await;
                Ok(StatusAck { seq: status.seq })
            }
        });
        Ok(Response::new(self.stream(acks)))
    }
}

/// Runs ten `RemoteCmd` calls at once (each a spawned future, retried by the
/// service's policy) and collects their results afterwards, in id order.
pub async fn commands(client: &ContactClient<Channel>) -> Result<Vec<CommandResult>, Status> {
    let calls: Vec<_> = (1..=10)
        .map(|id| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let command = Command {
                    id,
                    line: format!("check disk {id}"),
                };
                client.remote_cmd(command).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(calls.len());
    for call in calls {
        let result = call
            .await
            .map_err(|e| Status::internal(format!("a command's task failed: {e}")))??;
        results.push(result.into_inner());
    }
    Ok(results)
}

/// The task list from `from_seq` on, as a stream that resumes after a
/// reconnect from the task after the last one it handed out.
pub fn task_stream(
    client: &ContactClient<Channel>,
    from_seq: u64,
) -> ResumingStream<TaskQuery, Task> {
    client.get_task_resuming(TaskQuery { from_seq }, |_, last: &Task| {
        Some(TaskQuery {
            from_seq: last.seq + 1,
        })
    })
}

/// Reads the task list from the start.
pub async fn tasks(client: &ContactClient<Channel>) -> Result<Vec<Task>, Status> {
    let mut stream = task_stream(client, 1);
    let mut tasks = Vec::new();
    while let Some(task) = stream.message().await? {
        tasks.push(task);
    }
    Ok(tasks)
}

/// Sends one result per task through a reconnecting client-streaming
/// session; returns how many tasks the server holds results for.
pub async fn report_results(
    client: &ContactClient<Channel>,
    tasks: &[Task],
) -> Result<u64, Status> {
    let mut session = client.tell_result_session(SessionBuilder::new());
    for task in tasks {
        let result = TaskResult {
            task_seq: task.seq,
            outcome: format!("{} done", task.name),
        };
        if session.send(result).await.is_err() {
            break;
        }
    }
    session.finish();
    let held = match session.recv().await {
        Some(held) => held,
        None => Err(Status::internal("the session ended without an answer")),
    };
    session.close().await;
    Ok(held?.tasks)
}

/// Sends `count` status reports through a reconnecting bidi session and
/// returns the acknowledged sequence numbers, in order.
pub async fn report_status(
    client: &ContactClient<Channel>,
    count: u64,
) -> Result<Vec<u64>, Status> {
    let mut session = client.send_status_session(SessionBuilder::new());
    let mut acked = Vec::new();
    for seq in 1..=count {
        let status = AgentStatus {
            seq,
            state: "busy".to_owned(),
        };
        if session.send(status).await.is_err() {
            break;
        }
        match session.recv().await {
            Some(Ok(ack)) => acked.push(ack.seq),
            Some(Err(status)) => return Err(status),
            None => break,
        }
    }
    let closed = session.close().await;
    match closed.status {
        Some(status) if acked.len() < count as usize => Err(status),
        _ => Ok(acked),
    }
}

/// What `contact-client` does: every call shape once, printing one line per
/// result through `print`.
pub async fn run(
    client: ContactClient<Channel>,
    statuses: u64,
    mut print: impl FnMut(String),
) -> Result<(), Status> {
    for result in commands(&client).await? {
        print(format!("command {}: {}", result.id, result.output));
    }
    let tasks = tasks(&client).await?;
    for task in &tasks {
        print(format!("task {}: {}", task.seq, task.name));
    }
    let held = report_results(&client, &tasks).await?;
    print(format!("results held: {held}"));
    for seq in report_status(&client, statuses).await? {
        print(format!("status {seq} acknowledged"));
    }
    Ok(())
}
