//! Deterministic test content: `size` bytes that depend only on a seed, generated
//! as they are read, so any size streams in constant memory.
//!
//! The bytes are the outputs of a xorshift64* generator, each 64-bit output
//! written little-endian: byte `i` is byte `i % 8` of output number `i / 8`. The
//! generator's state starts as `splitmix64(seed)` (never 0, the one state
//! xorshift cannot leave). The same `(size, seed)` always gives the same bytes,
//! and a shorter size gives a prefix of a longer one. Not random enough for
//! cryptography, random enough that zstd cannot shrink it: a transfer of it
//! costs what real incompressible data costs.
//!
//! ```
//! use std::io::Read;
//! use steadfast_examples::content;
//!
//! let mut first = Vec::new();
//! content::Content::new(20, 7).read_to_end(&mut first)?;
//! let mut prefix = vec![0; 8];
//! content::Content::new(8, 7).read_exact(&mut prefix)?;
//! assert_eq!(first.len(), 20);
//! assert_eq!(&first[..8], &prefix[..]);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, ReadBuf};

/// The content of `size` bytes from `seed`, as an [`AsyncRead`] (for a
/// [`std::io::Read`], use [`Content`]). Never blocks; holds 32 bytes of state.
pub fn reader(size: u64, seed: u64) -> impl AsyncRead + Send + Unpin + 'static {
    Content::new(size, seed)
}

/// A reader of generated content (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Content {
    state: u64,
    /// The current output, of which `used` bytes were read.
    word: [u8; 8],
    used: usize,
    remaining: u64,
}

impl Content {
    /// The `size` bytes generated from `seed`.
    pub fn new(size: u64, seed: u64) -> Content {
        Content {
            state: splitmix64(seed),
            word: [0; 8],
            used: 8,
            remaining: size,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Fills as much of `out` as there are bytes left; returns how many it wrote.
    pub fn fill(&mut self, out: &mut [u8]) -> usize {
        let n = out
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let mut out = &mut out[..n];
        // Finish the current output, then whole outputs, then start the next.
        let leftover = (8 - self.used).min(out.len());
        out[..leftover].copy_from_slice(&self.word[self.used..self.used + leftover]);
        self.used += leftover;
        out = &mut out[leftover..];
        let mut words = out.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_word());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            self.word = self.next_word();
            tail.copy_from_slice(&self.word[..tail.len()]);
            self.used = tail.len();
        }
        self.remaining -= n as u64;
        n
    }

    /// The next xorshift64* output, little-endian.
    fn next_word(&mut self) -> [u8; 8] {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes()
    }
}

/// The SHA-256 of the content of `size` bytes from `seed`, lowercase hex (what
/// `Digest` answers for it), computed here, a block at a time.
pub fn sha256_hex(size: u64, seed: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut content = Content::new(size, seed);
    let mut hasher = Sha256::new();
    let mut block = vec![0; 64 * 1024];
    loop {
        match content.fill(&mut block) {
            0 => return crate::lab::hex(&hasher.finalize()),
            n => hasher.update(&block[..n]),
        }
    }
}

/// A well-mixed, non-zero starting state for any seed (splitmix64's finalizer).
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    match z ^ (z >> 31) {
        0 => 0x9e37_79b9_7f4a_7c15,
        state => state,
    }
}

impl io::Read for Content {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.fill(buf))
    }
}

impl AsyncRead for Content {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn all(size: u64, seed: u64, step: usize) -> Vec<u8> {
        let mut content = Content::new(size, seed);
        let mut out = Vec::new();
        let mut buf = vec![0; step];
        loop {
            let n = content.fill(&mut buf);
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn the_bytes_do_not_depend_on_how_they_are_read() {
        let whole = all(1000, 42, 4096);
        assert_eq!(whole.len(), 1000);
        for step in [1, 3, 7, 8, 9, 64, 999] {
            assert_eq!(all(1000, 42, step), whole, "read {step} bytes at a time");
        }
    }

    #[test]
    fn seeds_give_different_bytes_and_seed_zero_works() {
        let zero = all(64, 0, 64);
        assert_ne!(zero, vec![0; 64]);
        assert_ne!(zero, all(64, 1, 64));
    }

    #[test]
    fn a_reader_stops_at_its_size() {
        let mut out = Vec::new();
        Content::new(5, 1).read_to_end(&mut out).expect("read");
        assert_eq!(out.len(), 5);
        assert_eq!(Content::new(0, 1).fill(&mut [0; 8]), 0);
    }

    #[tokio::test]
    async fn the_async_reader_gives_the_same_bytes() {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        reader(1000, 42).read_to_end(&mut out).await.expect("read");
        assert_eq!(out, all(1000, 42, 4096));
    }
}
