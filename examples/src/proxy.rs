//! An in-process TCP proxy that behaves like the proxies that cut slow calls,
//! used by the tour and the fault tests.
//!
//! [`CuttingProxy`] forwards every connection it accepts to one upstream address and
//! can misbehave in the three ways the fault tests need:
//!
//! - **idle cut**: a connection on which no byte came *from the server* for the
//!   configured time is cut (both sockets closed), like nginx's `grpc_read_timeout`.
//!   Bytes from the client do not re-arm the timer, and the timer starts when the
//!   client connection is accepted. Unlike nginx, the proxy does not answer HTTP/2
//!   PINGs itself: the server's PING frames are bytes from the server and re-arm it.
//! - **freeze**: after [`CuttingProxy::freeze`] nothing is forwarded in either
//!   direction, but connections stay open, as with a hung server or a black-holed
//!   network. The idle rule keeps running while frozen (no bytes come from the
//!   server), so a frozen proxy with an idle cut behaves like nginx in front of a
//!   hung server.
//! - **drop on demand**: [`CuttingProxy::drop_connections`] cuts every connection
//!   open at that moment (both sockets closed, as by the idle rule), like a proxy
//!   restart or a NAT that forgets its flows. New connections are accepted and
//!   forwarded as before.
//!
//! Dropping the proxy stops its listener and every connection it is pumping; it
//! spawns nothing that outlives it.

use std::future::pending;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

/// Size of the buffer each direction of a connection reads into.
const CHUNK: usize = 16 * 1024;

/// The tasks of the connections being served; finished ones are pruned on each
/// accept, so it holds about as many handles as there are open connections.
type Live = Arc<Mutex<Vec<AbortHandle>>>;

/// A TCP proxy on `127.0.0.1` that can cut server-idle connections and freeze.
///
/// See the [module documentation](self) for the exact rules.
#[derive(Debug)]
pub struct CuttingProxy {
    addr: SocketAddr,
    frozen: watch::Sender<bool>,
    cuts: Arc<AtomicUsize>,
    /// A handle on each connection's task, for [`CuttingProxy::drop_connections`].
    live: Live,
    /// The accept loop; it owns the tasks of all connections, so aborting it ends them.
    accept_loop: JoinHandle<()>,
}

impl CuttingProxy {
    /// Starts a proxy to `upstream`, listening on `127.0.0.1` on a port the OS picks.
    ///
    /// With `idle_cut` set, a connection is cut when no byte came from the server for
    /// that long. Must be called inside a Tokio runtime; the proxy runs on it.
    pub async fn start(
        upstream: SocketAddr,
        idle_cut: Option<Duration>,
    ) -> io::Result<CuttingProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (frozen, frozen_rx) = watch::channel(false);
        let cuts = Arc::new(AtomicUsize::new(0));
        let live = Live::default();
        let accept_loop = tokio::spawn(accept_loop(
            listener,
            upstream,
            idle_cut,
            frozen_rx,
            Arc::clone(&cuts),
            Arc::clone(&live),
        ));
        Ok(CuttingProxy {
            addr,
            frozen,
            cuts,
            live,
            accept_loop,
        })
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's address as an `http://` URL, for a tonic `Endpoint`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops forwarding in both directions, for current and future connections,
    /// while keeping every connection open. There is no way back.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// How many connections the idle rule has cut so far (not counting
    /// [`drop_connections`](Self::drop_connections)).
    pub fn cut_count(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }

    /// Cuts every connection open now, closing both of its sockets, and returns
    /// how many that was. Connections accepted afterwards are served as usual.
    ///
    /// The sockets close as soon as the runtime gets to the cancelled
    /// connection tasks, right after this returns, not within it.
    pub fn drop_connections(&self) -> usize {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let mut cut = 0;
        for connection in live.drain(..) {
            if !connection.is_finished() {
                connection.abort();
                cut += 1;
            }
        }
        cut
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        // Dropping the accept loop's future drops the listener and its `JoinSet`,
        // which aborts every connection task and so closes their sockets.
        self.accept_loop.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    idle_cut: Option<Duration>,
    frozen: watch::Receiver<bool>,
    cuts: Arc<AtomicUsize>,
    live: Live,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let task = connections.spawn(connection(
                        client,
                        upstream,
                        idle_cut,
                        frozen.clone(),
                        Arc::clone(&cuts),
                    ));
                    let mut live = live.lock().unwrap_or_else(PoisonError::into_inner);
                    live.retain(|connection| !connection.is_finished());
                    live.push(task);
                }
                // Per-connection failures (reset before accept, out of descriptors):
                // back off a little instead of spinning, then keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one client connection until both directions end or the idle rule cuts it.
async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    idle_cut: Option<Duration>,
    frozen: watch::Receiver<bool>,
    cuts: Arc<AtomicUsize>,
) {
    let (server_spoke, server_activity) = watch::channel(());
    let forward = async move {
        let Ok(server) = TcpStream::connect(upstream).await else {
            return; // Dropping the client connection tells it the upstream is down.
        };
        // Small frames must pass at once, not wait for Nagle.
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::join!(
            pump(client_read, server_write, frozen.clone(), None),
            pump(server_read, client_write, frozen, Some(&server_spoke)),
        );
    };
    tokio::select! {
        () = forward => {}
        () = idle_timer(idle_cut, server_activity) => {
            // Leaving the select drops `forward` and with it both sockets.
            cuts.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Completes once no activity was signalled for `idle_cut`; never without one.
async fn idle_timer(idle_cut: Option<Duration>, mut activity: watch::Receiver<()>) {
    let Some(idle_cut) = idle_cut else {
        return pending().await;
    };
    loop {
        match tokio::time::timeout(idle_cut, activity.changed()).await {
            Ok(Ok(())) => continue,
            // The sender is gone only once forwarding has finished; nothing to cut.
            Ok(Err(_)) => return pending().await,
            Err(_elapsed) => return,
        }
    }
}

/// Copies `from` into `to` until end of stream, an error, or a freeze. On end of
/// stream the write side is shut down (a half close passes through). On a freeze
/// both halves are held open for good.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    activity: Option<&watch::Sender<()>>,
) {
    let mut buf = vec![0; CHUNK];
    loop {
        let read = tokio::select! {
            biased;
            () = async { let _ = frozen.wait_for(|frozen| *frozen).await; } => None,
            read = from.read(&mut buf) => Some(read),
        };
        let Some(read) = read else {
            // Frozen: keep both halves (and so the connection) open, move nothing.
            return pending().await;
        };
        match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => {
                if let Some(activity) = activity {
                    activity.send_replace(());
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use steadfast_tests::wait;
    use tokio::time::{sleep, timeout};

    const DEADLINE: Duration = Duration::from_secs(10);

    /// Runs `serve` on every connection accepted on a fresh `127.0.0.1` port.
    async fn upstream<F, Fut>(serve: F) -> SocketAddr
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("binding the upstream");
        let addr = listener.local_addr().expect("upstream address");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
        addr
    }

    async fn echo(mut stream: TcpStream) {
        let (mut read, mut write) = stream.split();
        let _ = tokio::io::copy(&mut read, &mut write).await;
    }

    async fn silent(stream: TcpStream) {
        let _keep_open = stream;
        pending::<()>().await;
    }

    async fn ticking(mut stream: TcpStream) {
        while stream.write_all(b".").await.is_ok() {
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads until the peer closes (`Ok(0)`) or resets the connection.
    async fn read_until_closed(stream: &mut TcpStream) {
        let mut buf = [0; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    #[tokio::test]
    async fn bytes_pass_both_ways() {
        let proxy = CuttingProxy::start(upstream(echo).await, None)
            .await
            .expect("starting the proxy");
        assert_eq!(
            proxy.url(),
            format!("http://127.0.0.1:{}", proxy.addr().port())
        );
        let client = TcpStream::connect(proxy.addr())
            .await
            .expect("connecting to the proxy");
        let (mut read, mut write) = client.into_split();

        // More than a few buffers' worth, written while the echo is read back.
        let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let to_send = sent.clone();
        let writer = tokio::spawn(async move {
            write
                .write_all(&to_send)
                .await
                .expect("writing through the proxy");
            write
                .shutdown()
                .await
                .expect("half-closing through the proxy");
        });
        let mut received = Vec::new();
        timeout(DEADLINE, read.read_to_end(&mut received))
            .await
            .expect("the echo ends after the half close")
            .expect("reading through the proxy");
        writer.await.expect("writer task");
        assert!(received == sent, "the echo differs from what was sent");
        assert_eq!(proxy.cut_count(), 0);
    }

    #[tokio::test]
    async fn a_connection_the_server_is_silent_on_is_cut_even_while_the_client_talks() {
        let proxy = CuttingProxy::start(upstream(silent).await, Some(Duration::from_millis(200)))
            .await
            .expect("starting the proxy");
        let opened = Instant::now();
        let client = TcpStream::connect(proxy.addr())
            .await
            .expect("connecting to the proxy");
        let (mut read, mut write) = client.into_split();
        let chatter = tokio::spawn(async move {
            while write.write_all(b"ping").await.is_ok() {
                sleep(Duration::from_millis(50)).await;
            }
        });

        let mut buf = [0; 16];
        let closed = timeout(DEADLINE, read.read(&mut buf))
            .await
            .expect("the proxy cuts the connection");
        assert!(
            matches!(closed, Ok(0) | Err(_)),
            "expected a close, got {closed:?}"
        );
        assert!(
            opened.elapsed() >= Duration::from_millis(200),
            "cut after {:?}, before the idle time",
            opened.elapsed()
        );
        assert_eq!(proxy.cut_count(), 1);
        chatter.abort();
    }

    #[tokio::test]
    async fn a_server_that_keeps_talking_is_not_cut() {
        let proxy = CuttingProxy::start(upstream(ticking).await, Some(Duration::from_millis(200)))
            .await
            .expect("starting the proxy");
        let mut client = TcpStream::connect(proxy.addr())
            .await
            .expect("connecting to the proxy");

        let opened = Instant::now();
        let mut buf = [0; 16];
        while opened.elapsed() < Duration::from_millis(600) {
            let n = timeout(DEADLINE, client.read(&mut buf))
                .await
                .expect("the server ticks every 50 ms")
                .expect("reading through the proxy");
            assert_ne!(
                n,
                0,
                "the proxy closed the connection after {:?}",
                opened.elapsed()
            );
        }
        assert_eq!(proxy.cut_count(), 0);
    }

    #[tokio::test]
    async fn freeze_stops_forwarding_but_keeps_the_connection_open() {
        let proxy = CuttingProxy::start(upstream(echo).await, None)
            .await
            .expect("starting the proxy");
        let mut client = TcpStream::connect(proxy.addr())
            .await
            .expect("connecting to the proxy");
        let mut buf = [0; 5];
        client.write_all(b"hello").await.expect("writing");
        timeout(DEADLINE, client.read_exact(&mut buf))
            .await
            .expect("the echo arrives before the freeze")
            .expect("reading");
        assert_eq!(&buf, b"hello");

        proxy.freeze();
        client
            .write_all(b"again")
            .await
            .expect("writing into a frozen proxy");
        // Proving that nothing arrives takes a window of time; neither data nor a
        // close may show up within it.
        let during_freeze = timeout(Duration::from_millis(500), client.read(&mut buf)).await;
        assert!(
            during_freeze.is_err(),
            "a frozen proxy forwarded or closed: {during_freeze:?}"
        );

        // A connection opened after the freeze is accepted and kept, but silent too.
        let mut late = TcpStream::connect(proxy.addr())
            .await
            .expect("connecting after the freeze");
        late.write_all(b"hello").await.expect("writing");
        let late_read = timeout(Duration::from_millis(300), late.read(&mut buf)).await;
        assert!(
            late_read.is_err(),
            "a frozen proxy forwarded or closed: {late_read:?}"
        );
        assert_eq!(proxy.cut_count(), 0);
    }

    #[tokio::test]
    async fn a_frozen_connection_is_still_cut_by_the_idle_rule() {
        let proxy = CuttingProxy::start(upstream(ticking).await, Some(Duration::from_millis(200)))
            .await
            .expect("starting the proxy");
        let mut client = TcpStream::connect(proxy.addr())
            .await
            .expect("connecting to the proxy");
        let mut buf = [0; 1];
        timeout(DEADLINE, client.read_exact(&mut buf))
            .await
            .expect("a tick before the freeze")
            .expect("reading");

        proxy.freeze();
        timeout(DEADLINE, read_until_closed(&mut client))
            .await
            .expect("the idle rule cuts the frozen connection");
        assert_eq!(proxy.cut_count(), 1);
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_its_port_and_its_connections() {
        let proxy = CuttingProxy::start(upstream(echo).await, None)
            .await
            .expect("starting the proxy");
        let addr = proxy.addr();
        let mut client = TcpStream::connect(addr)
            .await
            .expect("connecting to the proxy");
        client.write_all(b"x").await.expect("writing");
        let mut buf = [0; 1];
        timeout(DEADLINE, client.read_exact(&mut buf))
            .await
            .expect("the echo arrives")
            .expect("reading");

        drop(proxy);
        timeout(DEADLINE, read_until_closed(&mut client))
            .await
            .expect("the open connection is closed");
        wait::until("the proxy's port refuses connections", DEADLINE, || async {
            TcpStream::connect(addr).await.is_err()
        })
        .await;
    }

    #[tokio::test]
    async fn drop_connections_cuts_the_open_connections_and_serves_new_ones() {
        let proxy = CuttingProxy::start(upstream(echo).await, None)
            .await
            .expect("starting the proxy");
        let mut buf = [0; 5];
        let mut clients = Vec::new();
        for _ in 0..2 {
            let mut client = TcpStream::connect(proxy.addr())
                .await
                .expect("connecting to the proxy");
            client.write_all(b"hello").await.expect("writing");
            timeout(DEADLINE, client.read_exact(&mut buf))
                .await
                .expect("the echo arrives")
                .expect("reading");
            clients.push(client);
        }
        // One more that has come and gone: not counted.
        let gone = TcpStream::connect(proxy.addr())
            .await
            .expect("connecting to the proxy");
        drop(gone);
        wait::until(
            "the closed connection was served and ended",
            DEADLINE,
            || async {
                let live = proxy.live.lock().expect("live list");
                live.len() == 3 && live.iter().filter(|c| !c.is_finished()).count() == 2
            },
        )
        .await;

        assert_eq!(proxy.drop_connections(), 2);
        for client in &mut clients {
            timeout(DEADLINE, read_until_closed(client))
                .await
                .expect("a dropped connection is closed");
        }
        assert_eq!(proxy.drop_connections(), 0, "nothing left to drop");

        let mut late = TcpStream::connect(proxy.addr())
            .await
            .expect("connecting after the drop");
        late.write_all(b"again").await.expect("writing");
        timeout(DEADLINE, late.read_exact(&mut buf))
            .await
            .expect("a new connection is forwarded")
            .expect("reading");
        assert_eq!(&buf, b"again");
        assert_eq!(proxy.cut_count(), 0, "the idle rule cut nothing");
    }

    #[tokio::test]
    async fn a_client_is_dropped_when_the_upstream_is_down() {
        let down = SocketAddr::from((Ipv4Addr::LOCALHOST, wait::free_port()));
        let proxy = CuttingProxy::start(down, None)
            .await
            .expect("starting the proxy");
        let mut client = TcpStream::connect(proxy.addr())
            .await
            .expect("connecting to the proxy");
        timeout(DEADLINE, read_until_closed(&mut client))
            .await
            .expect("the proxy closes the client connection");
    }
}
