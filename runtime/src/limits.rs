//! [`BlobLimits`](crate::blob::BlobLimits), the limits a receiver puts on the
//! blobs it accepts: plain settings, apart from [`blob`](crate::blob) so that a
//! call's options ([`CallOptions`](crate::CallOptions)) can carry them without
//! the heartbeat client depending on the blob code (which depends on it).

/// Limits a receiver puts on the blobs it accepts.
///
/// The defaults: 16 GiB uncompressed, a zstd window of at most 8 MiB (window log
/// 23, what zstd levels up to 19 use), chunks of at most 1 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLimits {
    pub(crate) max_size: u64,
    pub(crate) window_log_max: u32,
    pub(crate) max_chunk: usize,
}

impl Default for BlobLimits {
    fn default() -> Self {
        BlobLimits {
            max_size: 16 << 30,
            window_log_max: 23,
            max_chunk: 1 << 20,
        }
    }
}

impl BlobLimits {
    /// The defaults (see [`BlobLimits`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The largest uncompressed size accepted, in bytes.
    #[must_use]
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// The largest zstd window accepted, as a power of two (10..=31); the
    /// receiver's memory for the window is at most `2^log` bytes.
    #[must_use]
    pub fn window_log_max(mut self, log: u32) -> Self {
        self.window_log_max = log.clamp(10, 31);
        self
    }

    /// The largest chunk accepted (its compressed data), in bytes.
    #[must_use]
    pub fn max_chunk(mut self, bytes: usize) -> Self {
        self.max_chunk = bytes;
        self
    }

    /// The largest uncompressed size accepted.
    pub fn get_max_size(&self) -> u64 {
        self.max_size
    }

    /// The largest zstd window accepted, as a power of two.
    pub fn get_window_log_max(&self) -> u32 {
        self.window_log_max
    }

    /// The largest chunk accepted.
    pub fn get_max_chunk(&self) -> usize {
        self.max_chunk
    }
}
