//! A server-streaming service that counts, on a server that can be killed:
//! the fixture of the resuming-stream tests.
//!
//! `test.Sequence/Count` streams `from`, `from + 1`, ... up to `until` (for
//! ever when `until` is 0), `gap_ms` apart, then ends with `OK`; asked to, it
//! fails with `fail_code` after `fail_after` numbers (at once, before any
//! response headers, when `fail_after` is 0). The service and its messages
//! are written by hand, as tonic would generate them.
//!
//! [`SequenceServer`] serves it on `127.0.0.1`, with every task it runs (the
//! accept loop, each connection, each call) in one `JoinSet`, so that
//! [`SequenceServer::kill`] can end them all at once: the connections close
//! as a crashed server's do, with no GOAWAY and no trailers, and the port is
//! free again when `kill` returns, for [`SequenceServer::start_on`] to bind
//! it again.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{BoxFuture, http};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

/// The method's path.
pub const COUNT: &str = "/test.Sequence/Count";

/// What to count.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Count {
    /// The first number.
    #[prost(uint64, tag = "1")]
    pub from: u64,
    /// The last number; 0: no end.
    #[prost(uint64, tag = "2")]
    pub until: u64,
    /// The time between two numbers, in milliseconds.
    #[prost(uint64, tag = "3")]
    pub gap_ms: u64,
    /// A status code to fail with (0: none).
    #[prost(int32, tag = "4")]
    pub fail_code: i32,
    /// How many numbers come before the failure (0: fail before the headers).
    #[prost(uint64, tag = "5")]
    pub fail_after: u64,
}

/// One number of the sequence.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Num {
    /// The number.
    #[prost(uint64, tag = "1")]
    pub seq: u64,
}

/// A call as the server saw it arrive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The request's `from`.
    pub from: u64,
    /// Its `grpc-previous-rpc-attempts`, if any.
    pub previous_attempts: Option<String>,
    /// Its `grpc-timeout`, if any.
    pub timeout: Option<String>,
}

/// What the service saw, shared by every server started with it.
#[derive(Debug, Default)]
pub struct Stats {
    calls: Mutex<Vec<Seen>>,
    /// Response streams not dropped yet.
    running: AtomicUsize,
}

impl Stats {
    /// Every call that reached the service, in order.
    pub fn calls(&self) -> Vec<Seen> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many response streams are alive (a call the client dropped, or
    /// whose connection died, is not).
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }
}

/// Lives as long as one response stream.
struct Running(Arc<Stats>);

impl Running {
    fn start(stats: &Arc<Stats>) -> Running {
        stats.running.fetch_add(1, Ordering::SeqCst);
        Running(Arc::clone(stats))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The numbers of one call.
struct Counter {
    next: u64,
    until: u64,
    gap: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    /// The failure to end with, and after how many numbers.
    fail: Option<(u64, Code)>,
    sent: u64,
    _running: Running,
}

impl tokio_stream::Stream for Counter {
    type Item = Result<Num, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some((after, code)) = self.fail
            && self.sent == after
        {
            self.fail = None;
            self.until = 0;
            self.next = 1;
            return Poll::Ready(Some(Err(Status::new(code, "asked to fail"))));
        }
        if self.next > self.until {
            return Poll::Ready(None);
        }
        if !self.gap.is_zero() {
            let gap = self.gap;
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(gap)));
            ready!(timer.as_mut().poll(cx));
            timer.as_mut().reset(Instant::now() + gap);
        }
        let seq = self.next;
        self.next += 1;
        self.sent += 1;
        Poll::Ready(Some(Ok(Num { seq })))
    }
}

type Numbers = Pin<Box<dyn tokio_stream::Stream<Item = Result<Num, Status>> + Send>>;

struct CountSvc(Arc<Stats>);

impl tonic::server::ServerStreamingService<Count> for CountSvc {
    type Response = Num;
    type ResponseStream = Numbers;
    type Future = BoxFuture<Response<Numbers>, Status>;

    fn call(&mut self, request: Request<Count>) -> Self::Future {
        let header = |name| {
            request
                .metadata()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let count = request.get_ref().clone();
        self.0
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Seen {
                from: count.from,
                previous_attempts: header("grpc-previous-rpc-attempts"),
                timeout: header("grpc-timeout"),
            });
        let fail = (count.fail_code != 0).then(|| (count.fail_after, Code::from(count.fail_code)));
        if let Some((0, code)) = fail {
            return Box::pin(async move { Err(Status::new(code, "asked to fail")) });
        }
        let numbers = Counter {
            next: count.from,
            until: if count.until == 0 {
                u64::MAX
            } else {
                count.until
            },
            gap: Duration::from_millis(count.gap_ms),
            timer: None,
            fail,
            sent: 0,
            _running: Running::start(&self.0),
        };
        Box::pin(async move { Ok(Response::new(Box::pin(numbers) as Numbers)) })
    }
}

/// Spawns hyper's tasks (each call's) into the server's `JoinSet`.
#[derive(Clone)]
struct Spawner(Arc<Mutex<JoinSet<()>>>);

impl Spawner {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Reap the finished ones, so the set holds about the live ones.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Aborts every task and waits until all are gone, tasks they spawned
    /// while dying included.
    async fn abort_all(&self) {
        loop {
            let mut tasks =
                std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
            if tasks.is_empty() {
                return;
            }
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
}

impl<F> hyper::rt::Executor<F> for Spawner
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        self.spawn(future);
    }
}

/// The sequence service on a killable server; see the [module docs](self).
pub struct SequenceServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
    tasks: Spawner,
}

impl SequenceServer {
    /// Serves on `127.0.0.1`, on a port the OS picks.
    ///
    /// # Panics
    ///
    /// When no port can be bound.
    pub async fn start(stats: Arc<Stats>) -> SequenceServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("binding the sequence server");
        SequenceServer::serve(listener, stats)
    }

    /// Serves on `addr` again (after [`kill`](Self::kill)), retrying for up
    /// to 10 s while the port is still taken.
    ///
    /// # Panics
    ///
    /// When `addr` cannot be bound within 10 s.
    pub async fn start_on(addr: SocketAddr, stats: Arc<Stats>) -> SequenceServer {
        let listener = crate::wait::until_some(
            "the server's port can be bound again",
            Duration::from_secs(10),
            || async {
                match TcpListener::bind(addr).await {
                    Ok(listener) => Some(listener),
                    Err(err) if err.kind() == io::ErrorKind::AddrInUse => None,
                    Err(err) => panic!("binding {addr}: {err}"),
                }
            },
        )
        .await;
        SequenceServer::serve(listener, stats)
    }

    fn serve(listener: TcpListener, stats: Arc<Stats>) -> SequenceServer {
        let addr = listener.local_addr().expect("the server's address");
        let tasks = Spawner(Arc::default());
        let spawner = tasks.clone();
        let service_stats = Arc::clone(&stats);
        tasks.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let stats = Arc::clone(&service_stats);
                let service = service_fn(move |request| serve_call(Arc::clone(&stats), request));
                let connection = http2::Builder::new(spawner.clone())
                    .serve_connection(TokioIo::new(tcp), service);
                spawner.spawn(async move {
                    let _ = connection.await;
                });
            }
        });
        SequenceServer { addr, stats, tasks }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address as an `http://` URL, for a tonic `Endpoint`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the service saw.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Kills the server as a crash would: its listener and every connection
    /// close at once, no call ends properly. Returns when all its tasks are
    /// gone.
    pub async fn kill(self) {
        self.tasks.abort_all().await;
    }
}

impl Drop for SequenceServer {
    fn drop(&mut self) {
        self.tasks
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .abort_all();
    }
}

async fn serve_call(
    stats: Arc<Stats>,
    request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<tonic::body::Body>, Infallible> {
    if request.uri().path() != COUNT {
        return Ok(Status::unimplemented(request.uri().path().to_owned()).into_http());
    }
    let mut grpc = tonic::server::Grpc::new(ProstCodec::<Num, Count>::default());
    Ok(grpc.server_streaming(CountSvc(stats), request).await)
}

/// Calls `Count` on `channel`, as a generated client would; a channel that is
/// not ready gives a status whose source is the transport error (so a refused
/// connection reads as one).
pub async fn count(
    channel: Channel,
    request: Request<Count>,
) -> Result<Response<Streaming<Num>>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| Status::from_error(Box::new(err)))?;
    grpc.server_streaming(
        request,
        PathAndQuery::from_static(COUNT),
        ProstCodec::default(),
    )
    .await
}
