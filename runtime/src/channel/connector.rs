//! The connector of steadfast's channels: tonic's TCP connection, and a bound
//! on the server's side of the HTTP/2 handshake.
//!
//! tonic's connect timeout bounds the TCP connect only, and hyper's HTTP/2
//! client sends its requests without waiting for the server's `SETTINGS`: on
//! a peer that accepts TCP and never speaks (a stopped process, whose kernel
//! still accepts; a wedged proxy), a call waits for its response until the
//! keepalive finds it, or forever without one. This connector gives such a
//! connection the same bound as the TCP connect: when the server has sent
//! nothing within it, reading fails with an I/O error (`TimedOut`), which
//! breaks the connection, fails its calls as a lost connection
//! (`UNAVAILABLE`) and, in a [`Failover`](super::Failover), marks the instance
//! down even when every call on it has already given up at its deadline.
//!
//! It also keeps a weak pointer to the connection it made last, in a
//! [`Connections`] handle: [`Connections::condemn`] makes that connection's
//! next read fail (an I/O error), which closes it, so that the next call makes
//! a new one (what a call that heard nothing within its liveness window asks
//! for: see [`Condemn`](super::Condemn)).

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tonic::codegen::Service;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint, Error};

type BoxError = Box<dyn StdError + Send + Sync>;

/// A lazily connected channel for `endpoint` through [`Connector`], and the
/// handle to its connections.
pub(super) fn lazy(endpoint: &Endpoint, instance: Option<Instance>) -> (Channel, Connections) {
    let connector = Connector::new(endpoint, instance);
    let connections = connector.connections.clone();
    (endpoint.connect_with_connector_lazy(connector), connections)
}

/// A channel for `endpoint` through [`Connector`], connected before it
/// returns, and the handle to its connections.
pub(super) async fn eager(endpoint: &Endpoint) -> Result<(Channel, Connections), Error> {
    let connector = Connector::new(endpoint, None);
    let connections = connector.connections.clone();
    let channel = endpoint.connect_with_connector(connector).await?;
    Ok((channel, connections))
}

/// The connections a [`Connector`] makes: a weak pointer to the last one.
#[derive(Clone, Default)]
pub(super) struct Connections(Arc<Mutex<Weak<Doom>>>);

impl Connections {
    /// Makes the last connection's next read fail, which closes it (a
    /// request sent on it meanwhile fails as a lost connection, or is
    /// dropped unsent); the next call makes a new connection. Nothing when
    /// that connection is already gone.
    pub(super) fn condemn(&self) {
        let last = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .upgrade();
        if let Some(doom) = last {
            doom.condemned.store(true, Ordering::Release);
            let waker = doom
                .waker
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// A new connection's cell, remembered as the last one.
    fn made(&self) -> Arc<Doom> {
        let doom = Arc::new(Doom::default());
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::downgrade(&doom);
        doom
    }
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connections").finish_non_exhaustive()
    }
}

/// Whether a connection is condemned, and the task reading it (to wake).
#[derive(Default)]
struct Doom {
    condemned: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// The error of a read on a condemned connection.
#[derive(Debug)]
struct Condemned;

impl fmt::Display for Condemned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("condemned: a call heard nothing within its liveness window")
    }
}

impl StdError for Condemned {}

/// What a connector reports to: the health of the instances of a
/// [`Failover`](super::Failover) (its shared state, which owns the connectors).
pub(super) trait Instances: Send + Sync {
    /// The epoch of instance `index` now: a failure recorded with it counts
    /// unless another outcome was recorded since.
    fn epoch(&self, index: usize) -> u64;

    /// A call (or a connection) made at `epoch` to instance `index` failed
    /// at the transport level: marks it down, unless an outcome was recorded
    /// since `epoch`.
    fn failed(&self, index: usize, epoch: u64, why: &dyn fmt::Display);
}

/// The instance of a [`Failover`](super::Failover) a connector connects to:
/// where it reports a connection that could not be made or never answered.
#[derive(Clone)]
pub(super) struct Instance {
    pub(super) shared: Weak<dyn Instances>,
    pub(super) index: usize,
}

impl Instance {
    /// The instance's epoch now (see [`Instances::failed`]), if the failover still exists.
    fn epoch(&self) -> Option<u64> {
        Some(self.shared.upgrade()?.epoch(self.index))
    }

    pub(super) fn failed(&self, epoch: Option<u64>, why: &dyn fmt::Display) {
        if let (Some(shared), Some(epoch)) = (self.shared.upgrade(), epoch) {
            shared.failed(self.index, epoch, why);
        }
    }
}

/// tonic's HTTP connector, configured from the endpoint as tonic configures
/// its own, whose connections fail when the server sends nothing within the
/// endpoint's connect timeout.
struct Connector {
    http: HttpConnector,
    handshake: Option<Duration>,
    instance: Option<Instance>,
    connections: Connections,
}

impl Connector {
    fn new(endpoint: &Endpoint, instance: Option<Instance>) -> Connector {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(endpoint.get_tcp_nodelay());
        http.set_keepalive(endpoint.get_tcp_keepalive());
        http.set_keepalive_interval(endpoint.get_tcp_keepalive_interval());
        http.set_keepalive_retries(endpoint.get_tcp_keepalive_retries());
        http.set_connect_timeout(endpoint.get_connect_timeout());
        Connector {
            http,
            handshake: endpoint.get_connect_timeout(),
            instance,
            connections: Connections::default(),
        }
    }
}

impl Service<Uri> for Connector {
    type Response = TokioIo<Handshake>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        let limit = self.handshake;
        let instance = self.instance.clone();
        let epoch = instance.as_ref().and_then(Instance::epoch);
        let connections = self.connections.clone();
        Box::pin(async move {
            match connecting.await {
                Ok(io) => Ok(TokioIo::new(Handshake {
                    io: io.into_inner(),
                    doom: connections.made(),
                    watchdog: limit.map(|limit| Watchdog {
                        limit,
                        timer: Box::pin(tokio::time::sleep(limit)),
                        instance: instance.map(|instance| (instance, epoch)),
                    }),
                })),
                Err(error) => {
                    if let Some(instance) = instance {
                        instance.failed(epoch, &error);
                    }
                    Err(error.into())
                }
            }
        })
    }
}

/// A TCP connection whose reads fail when the server has sent nothing within
/// the connect timeout of the connection being made, or once it is condemned.
pub(super) struct Handshake {
    io: TcpStream,
    doom: Arc<Doom>,
    /// Until the server's first bytes.
    watchdog: Option<Watchdog>,
}

struct Watchdog {
    limit: Duration,
    timer: Pin<Box<Sleep>>,
    instance: Option<(Instance, Option<u64>)>,
}

/// The error of a connection whose server sent nothing within the connect timeout.
#[derive(Debug)]
struct HandshakeTimedOut(Duration);

impl fmt::Display for HandshakeTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server sent nothing within {:?} of the connection (no HTTP/2 handshake): \
             a hung server, or not an HTTP/2 server",
            self.0
        )
    }
}

impl StdError for HandshakeTimedOut {}

impl AsyncRead for Handshake {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.doom.condemned.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::other(Condemned)));
        }
        {
            let mut waker = self
                .doom
                .waker
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        // Condemned while the waker was being stored: `condemn` may have
        // found none to wake.
        if self.doom.condemned.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::other(Condemned)));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        match &read {
            Poll::Ready(Ok(())) if buf.filled().len() > before => self.watchdog = None,
            Poll::Pending => {
                if let Some(watchdog) = &mut self.watchdog
                    && watchdog.timer.as_mut().poll(cx).is_ready()
                {
                    let error =
                        io::Error::new(io::ErrorKind::TimedOut, HandshakeTimedOut(watchdog.limit));
                    if let Some((instance, epoch)) = &watchdog.instance {
                        instance.failed(*epoch, &error);
                    }
                    self.watchdog = None;
                    return Poll::Ready(Err(error));
                }
            }
            Poll::Ready(_) => {}
        }
        read
    }
}

impl AsyncWrite for Handshake {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl Connection for Handshake {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn a_condemned_connection_fails_the_read_waiting_on_it_and_the_next_connection_does_not()
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let uri: Uri = format!("http://{}", listener.local_addr().expect("an address"))
            .parse()
            .expect("a URI");
        let endpoint = Endpoint::from(uri.clone());
        let mut connector = Connector::new(&endpoint, None);
        let first = connector.call(uri.clone()).await.expect("connects");
        let (_held, _) = listener.accept().await.expect("accepts");
        let mut first = first.into_inner();
        let (started, reading) = tokio::sync::oneshot::channel();
        let read = tokio::spawn(async move {
            let mut byte = [0u8; 1];
            let read = first.read(&mut byte);
            let _ = started.send(());
            read.await
        });
        reading.await.expect("the read started");
        tokio::task::yield_now().await;
        connector.connections.condemn();
        let error = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the waiting read is woken")
            .expect("the read's task")
            .expect_err("a condemned connection fails its read");
        assert!(error.to_string().starts_with("condemned"), "{error}");

        // The connector's next connection is a new, healthy one.
        let second = connector.call(uri).await.expect("connects again");
        let (mut peer, _) = listener.accept().await.expect("accepts");
        tokio::io::AsyncWriteExt::write_all(&mut peer, b"x")
            .await
            .expect("writes");
        let mut byte = [0u8; 1];
        second
            .into_inner()
            .read_exact(&mut byte)
            .await
            .expect("the new connection reads");
        assert_eq!(&byte, b"x");
    }
}
