//! In-process gRPC servers on loopback: tonic's ([`spawn`]) and steadfast's
//! production server with its drain ([`Production`]).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use steadfast::server::{Server, Shutdown};
use tokio::task::JoinHandle;
use tonic::transport::server::{Router, TcpIncoming};

/// Serves `router` (`Server::builder().add_service(..)`) on `127.0.0.1`, on a
/// port the OS picks, with TCP_NODELAY, until the test's runtime ends; its
/// address.
///
/// # Panics
///
/// Panics when no loopback port can be bound.
pub async fn spawn(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))));
    addr
}

/// Serves `router` like [`spawn`], on `addr` (a port a test chose before the
/// server was up, e.g. [`free_port`](crate::wait::free_port)).
///
/// # Errors
///
/// When `addr` cannot be bound (another process took the port).
pub async fn spawn_at(addr: SocketAddr, router: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))));
    Ok(addr)
}

/// A [`steadfast::server::Server`] serving on `127.0.0.1`, on a port the OS
/// picked, in a task, until [`shutdown`](Self::shutdown) is triggered; the
/// task is aborted when dropped.
#[derive(Debug)]
pub struct Production {
    addr: SocketAddr,
    shutdown: Shutdown,
    task: JoinHandle<io::Result<()>>,
}

impl Production {
    /// Serves `server` with [`Server::serve_with_shutdown`].
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound.
    pub async fn start(server: Server) -> Production {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(server.serve_with_shutdown(listener, shutdown.clone()));
        Production {
            addr,
            shutdown,
            task,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The handle that drains it (first trigger) and forces the end (second).
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Whether `serve_with_shutdown` has returned.
    pub fn has_returned(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for `serve_with_shutdown` to return, at most `within`.
    ///
    /// # Panics
    ///
    /// Panics when it does not return in time, or returns an error.
    pub async fn returned(&mut self, within: Duration) {
        tokio::time::timeout(within, &mut self.task)
            .await
            .expect("serve_with_shutdown returned in time")
            .expect("the server's task")
            .expect("serve_with_shutdown's result");
    }
}

impl Drop for Production {
    fn drop(&mut self) {
        self.task.abort();
    }
}
