use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::observe::CallStats;

/// How far a blob's transfer has come: a cheap handle, shared with the transfer,
/// to poll from a progress bar.
///
/// On the sending side the counts move as the source is read and compressed (a
/// little ahead of the network: at most 16 chunks); on the receiving side as the blob is read.
#[derive(Clone, Default)]
pub struct TransferProgress {
    inner: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    /// Uncompressed bytes so far.
    bytes: AtomicU64,
    /// Compressed bytes so far.
    wire_bytes: AtomicU64,
    /// The declared size plus one; 0 while unknown.
    total_plus_one: AtomicU64,
    /// The server call the blob travels in, told of the same counts, and
    /// whether the server sends it (a download).
    call: OnceLock<(Arc<CallStats>, bool)>,
}

impl TransferProgress {
    /// Uncompressed bytes so far.
    pub fn bytes(&self) -> u64 {
        self.inner.bytes.load(Ordering::Relaxed)
    }

    /// Compressed bytes so far (what the chunks carry).
    pub fn wire_bytes(&self) -> u64 {
        self.inner.wire_bytes.load(Ordering::Relaxed)
    }

    /// The blob's uncompressed size, when it is known (declared by the sender).
    pub fn total(&self) -> Option<u64> {
        self.inner
            .total_plus_one
            .load(Ordering::Relaxed)
            .checked_sub(1)
    }

    pub(crate) fn set_total(&self, total: Option<u64>) {
        let value = total.map_or(0, |total| total.saturating_add(1));
        self.inner.total_plus_one.store(value, Ordering::Relaxed);
    }

    /// Counts the transfer in `stats` too: the blob a server call receives,
    /// or sends (`sent`).
    pub(crate) fn observe(&self, stats: Arc<CallStats>, sent: bool) {
        let _ = self.inner.call.set((stats, sent));
    }

    pub(crate) fn add(&self, bytes: u64, wire_bytes: u64) {
        if let Some((stats, sent)) = self.inner.call.get() {
            if *sent {
                stats.blob_sent(bytes, wire_bytes);
            } else {
                stats.blob(bytes, wire_bytes);
            }
        }
        if bytes > 0 {
            self.inner.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        if wire_bytes > 0 {
            self.inner
                .wire_bytes
                .fetch_add(wire_bytes, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for TransferProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransferProgress")
            .field("bytes", &self.bytes())
            .field("wire_bytes", &self.wire_bytes())
            .field("total", &self.total())
            .finish()
    }
}
