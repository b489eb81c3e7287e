//! The reconnecting counter (`proto/schema.proto`): a `Gateway` server that
//! answers each request with `num + 1`, and a client session that sends each
//! answer back, across server restarts.
//!
//! The server is what `gateway-server` serves; [`session`] and [`count`] are
//! what `gateway-client` runs, and the integration tests too.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use steadfast::{
    retry::RetryPolicy,
    session::{Closed, Session},
};
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{
    Status, Streaming,
    client::GrpcService,
    codegen::{Body, Bytes, StdError},
};

use crate::proto::schema::{
    Request, Response,
    gateway_client::GatewayClient,
    gateway_server::{Gateway, GatewayServer},
};

/// How many answers a call queues for a slow client before it stops reading
/// requests.
const ANSWER_QUEUE: usize = 64;

/// The server: answers each request with `num + 1`, after an optional delay.
///
/// When told to stop, every open call ends with `UNAVAILABLE` ("the server is
/// shutting down"), so a graceful shutdown does not wait for endless bidi
/// calls, and their clients reconnect elsewhere or later.
#[derive(Debug, Clone)]
pub struct GatewayService {
    delay: Duration,
    stopping: watch::Receiver<bool>,
    /// Shared by the clones, so by every call.
    received: Arc<AtomicU64>,
}

impl GatewayService {
    /// A server that waits `delay` before each answer, and ends its calls when
    /// `stopping` turns `true` (or its sender is dropped).
    pub fn new(delay: Duration, stopping: watch::Receiver<bool>) -> Self {
        GatewayService {
            delay,
            stopping,
            received: Arc::default(),
        }
    }

    /// How many requests this server (this value and its clones) has read, on
    /// all calls: a request a reconnecting client re-sent is counted each time.
    pub fn requests_received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }

    /// The tonic service to mount.
    pub fn into_server(self) -> GatewayServer<Self> {
        GatewayServer::new(self)
    }
}

#[tonic::async_trait]
impl Gateway for GatewayService {
    type CallStream = Pin<Box<dyn Stream<Item = Result<Response, Status>> + Send>>;

    async fn call(
        &self,
        request: tonic::Request<Streaming<Request>>,
    ) -> Result<tonic::Response<Self::CallStream>, Status> {
        let mut requests = request.into_inner();
        let (answers, stream) = mpsc::channel(ANSWER_QUEUE);
        let delay = self.delay;
        let mut stopping = self.stopping.clone();
        let received = Arc::clone(&self.received);
        // Ends with the call: when the requests end or fail, when the client
        // goes away (the answers' receiver is dropped), or when the server stops.
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = async { drop(stopping.wait_for(|stop| *stop).await) } => {
                        let _ = answers.send(Err(Status::unavailable("the server is shutting down"))).await;
                        return;
                    }
                    next = requests.message() => next,
                };
                let Ok(Some(Request { num })) = next else {
                    return;
                };
                received.fetch_add(1, Ordering::SeqCst);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let answer = Response {
                    num: num.saturating_add(1),
                };
                if answers.send(Ok(answer)).await.is_err() {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(stream))))
    }
}

/// A reconnecting counter session on `channel`: a [`Channel`](tonic::transport::Channel) (make it with
/// `Endpoint::connect_lazy`, so that the server may come up later) or a
/// [`Failover`](steadfast::channel::Failover) over several servers, whose
/// reconnects then go to one that is up. With `wait_for_ready`, a reconnect
/// that finds no server up does not count towards giving up, so the session
/// waits out a restart of any length
/// ([wait-for-ready](steadfast::retry#wait-for-ready)); without it, it gives up
/// after the policy's attempts.
///
/// Must be called within a Tokio runtime.
pub fn session<T>(
    channel: T,
    policy: RetryPolicy,
    wait_for_ready: bool,
) -> Session<Request, Response>
where
    T: GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let client = GatewayClient::new(channel);
    Session::builder(policy)
        .wait_for_ready(wait_for_ready)
        .open(move |requests| {
            let mut client = client.clone();
            async move { client.call(requests.into_request()).await }
        })
}

/// Counts from `start` to `until` through `session`: sends `start`, then sends
/// back each answer, calling `number` with `start` and each answer, until the
/// answer is `until`. Then closes the session.
///
/// Fails with the session's final status when it gives up or ends first.
pub async fn count(
    mut session: Session<Request, Response>,
    start: i64,
    until: i64,
    mut number: impl FnMut(i64),
) -> Result<Closed<Request>, Status> {
    number(start);
    let mut current = start;
    while current < until {
        if session.send(Request { num: current }).await.is_err() {
            break;
        }
        match session.recv().await {
            Some(Ok(Response { num })) => {
                current = num;
                number(current);
            }
            Some(Err(status)) => return Err(status),
            None => break,
        }
    }
    let closed = session.close().await;
    match closed.status {
        _ if current >= until => Ok(closed),
        Some(status) => Err(status),
        None => Err(Status::aborted(format!(
            "the session ended at {current}, before {until}"
        ))),
    }
}
