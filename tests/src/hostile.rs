//! Listeners that take TCP connections and are no gRPC server: what a client
//! meets behind a load balancer whose backend is gone, or a port taken by
//! something else.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The client's HTTP/2 connection preface (RFC 9113 §3.4), without its SETTINGS.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a [`Hostile`] listener does with each connection it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Closes it at once, before reading anything.
    CloseAtOnce,
    /// Reads the client's connection preface, then closes it (without a
    /// SETTINGS frame or any other byte of HTTP/2).
    CloseAfterPreface,
    /// Reads whatever the client sends, answering nothing, until the client
    /// has sent nothing for this long (it waits for an answer: an HTTP/2
    /// client holds the calls over its stream limit), then closes it: a
    /// server that takes calls and dies before answering them.
    CloseWhenQuiet(Duration),
}

/// A listener on `127.0.0.1:0` that accepts every connection and treats it by
/// its [`Behaviour`]; it stops (and closes its port) when dropped. Must be
/// made inside a Tokio runtime.
#[derive(Debug)]
pub struct Hostile {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Hostile {
    /// Starts the listener.
    pub async fn start(behaviour: Behaviour) -> Hostile {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("binding a local port");
        let addr = listener.local_addr().expect("a bound address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                match behaviour {
                    Behaviour::CloseAtOnce => {}
                    Behaviour::CloseAfterPreface => {
                        tokio::spawn(async move {
                            let mut preface = [0; PREFACE.len()];
                            let _ = stream.read_exact(&mut preface).await;
                        });
                    }
                    Behaviour::CloseWhenQuiet(quiet) => {
                        tokio::spawn(async move {
                            let mut bytes = vec![0; 1 << 16];
                            while let Ok(Ok(1..)) =
                                tokio::time::timeout(quiet, stream.read(&mut bytes)).await
                            {
                            }
                        });
                    }
                }
            }
        });
        Hostile {
            addr,
            accepted,
            task,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its address as a URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}
