//! Readers for blob tests.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// A reader of `len` zeros that counts its drops in `dropped`: a test sees
/// when whoever held it (a blob's sender) let it go.
#[derive(Debug)]
pub struct DropCounted {
    inner: tokio::io::Take<tokio::io::Repeat>,
    dropped: Arc<AtomicUsize>,
}

impl DropCounted {
    /// `len` zeros; adds one to `dropped` when dropped.
    pub fn zeros(len: u64, dropped: &Arc<AtomicUsize>) -> DropCounted {
        DropCounted {
            inner: tokio::io::repeat(0).take(len),
            dropped: Arc::clone(dropped),
        }
    }
}

impl AsyncRead for DropCounted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Drop for DropCounted {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}
