//! Deterministic test content: `size` bytes that depend only on a seed, generated
//! as they are read, so any size streams in constant memory. Two flavors:
//!
//! - [`Flavor::Random`] ([`Content::new`], [`reader`]): the outputs of a
//!   xorshift64* generator, each 64-bit output written little-endian: byte `i` is
//!   byte `i % 8` of output number `i / 8`. Not random enough for cryptography,
//!   random enough that zstd cannot shrink it: a transfer of it costs what real
//!   incompressible data costs.
//! - [`Flavor::Logs`] ([`Content::logs`]): JSON-like log lines, one object a
//!   line, like a service's structured log (a timestamp, a level, a service,
//!   a route and a message, a status, a duration, a random trace id in hex),
//!   each ending in a `payload` of 80 to 104 uniformly random bytes (not
//!   escaped: the lines are JSON-like, not JSON), so that a quarter of the
//!   bytes (25.0 %) are random: text that compresses well around data that
//!   does not, about 2.4:1 under `zstd -3`. Measured on 64 MiB of seed 1 with
//!   the zstd 1.5.7 CLI: 2.42:1 at `-3`, 2.41:1 at `-1`; `blob-bench dump
//!   logs` writes it for such a check.
//!
//! Both draw from a xorshift64* generator whose state starts as
//! `splitmix64(seed)` (never 0, the one state xorshift cannot leave). The same
//! `(flavor, size, seed)` always gives the same bytes, and a shorter size gives a
//! prefix of a longer one.
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
//!
//! let mut log = Vec::new();
//! content::Content::logs(300, 7).read_to_end(&mut log)?;
//! assert!(log.starts_with(br#"{"ts":"2026-11-22T"#));
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

/// What generated content looks like (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Incompressible bytes.
    Random,
    /// JSON-like log lines, a quarter random bytes: about 2.4:1 under `zstd -3`.
    Logs,
}

/// A reader of generated content (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Content {
    flavor: Flavor,
    state: u64,
    /// The current unit (an output word or a log line), of which `used` bytes
    /// were read.
    unit: Vec<u8>,
    used: usize,
    remaining: u64,
    /// Logs: the time of the last line, µs after midnight.
    clock_us: u64,
}

impl Content {
    /// The `size` random bytes generated from `seed`.
    pub fn new(size: u64, seed: u64) -> Content {
        Content::with_flavor(Flavor::Random, size, seed)
    }

    /// `size` bytes of JSON-like log lines generated from `seed` (the last line
    /// cut at `size`).
    pub fn logs(size: u64, seed: u64) -> Content {
        Content::with_flavor(Flavor::Logs, size, seed)
    }

    /// `size` bytes of `flavor` generated from `seed`.
    pub fn with_flavor(flavor: Flavor, size: u64, seed: u64) -> Content {
        Content {
            flavor,
            state: splitmix64(seed),
            unit: Vec::with_capacity(match flavor {
                Flavor::Random => 8,
                Flavor::Logs => MAX_LINE,
            }),
            used: 0,
            remaining: size,
            clock_us: 7 * 3_600_000_000,
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
        while !out.is_empty() {
            // Finish the current unit, then (random) whole outputs straight into
            // `out`, then start the next unit.
            let leftover = (self.unit.len() - self.used).min(out.len());
            out[..leftover].copy_from_slice(&self.unit[self.used..self.used + leftover]);
            self.used += leftover;
            out = &mut out[leftover..];
            if out.is_empty() {
                break;
            }
            if self.flavor == Flavor::Random {
                let mut words = out.chunks_exact_mut(8);
                for word in &mut words {
                    word.copy_from_slice(&self.next_u64().to_le_bytes());
                }
                out = words.into_remainder();
                if out.is_empty() {
                    break;
                }
            }
            self.next_unit();
        }
        self.remaining -= n as u64;
        n
    }

    /// Replaces the unit, all read, with the next one.
    fn next_unit(&mut self) {
        let mut unit = std::mem::take(&mut self.unit);
        unit.clear();
        match self.flavor {
            Flavor::Random => unit.extend_from_slice(&self.next_u64().to_le_bytes()),
            Flavor::Logs => self.log_line(&mut unit),
        }
        self.unit = unit;
        self.used = 0;
    }

    /// The next xorshift64* output.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`, uniform enough for test content.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// One of `choices`.
    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len() as u64) as usize]
    }

    /// Appends one log line, `\n` included.
    fn log_line(&mut self, line: &mut Vec<u8>) {
        // Most lines come a few ms apart; the clock never runs backwards.
        self.clock_us += self.below(3_000);
        let t = self.clock_us % 86_400_000_000;
        line.extend_from_slice(br#"{"ts":"2026-11-22T"#);
        push_padded(line, t / 3_600_000_000, 2);
        line.push(b':');
        push_padded(line, t / 60_000_000 % 60, 2);
        line.push(b':');
        push_padded(line, t / 1_000_000 % 60, 2);
        line.push(b'.');
        push_padded(line, t % 1_000_000, 6);
        let level = match self.below(20) {
            0 => "error",
            1..=2 => "warn",
            3..=5 => "debug",
            _ => "info",
        };
        line.extend_from_slice(br#"Z","level":""#);
        line.extend_from_slice(level.as_bytes());
        line.extend_from_slice(br#"","service":""#);
        line.extend_from_slice(self.pick(&SERVICES).as_bytes());
        line.extend_from_slice(br#"","host":"node-"#);
        push_decimal(line, self.below(48));
        let (method, path, msg) = ROUTES[self.below(ROUTES.len() as u64) as usize];
        line.extend_from_slice(br#"","msg":""#);
        line.extend_from_slice(msg.as_bytes());
        for _ in 0..self.below(4) {
            line.push(b' ');
            line.extend_from_slice(self.pick(&WORDS).as_bytes());
        }
        line.extend_from_slice(br#"","method":""#);
        line.extend_from_slice(method.as_bytes());
        line.extend_from_slice(br#"","path":""#);
        line.extend_from_slice(path.as_bytes());
        push_decimal(line, self.below(10_000));
        line.extend_from_slice(br#"","status":"#);
        line.extend_from_slice(self.pick(&STATUSES).as_bytes());
        line.extend_from_slice(br#","duration_ms":"#);
        // Mostly short, some long.
        let scale = self.below(400_000) + 1;
        let duration = self.below(scale);
        push_decimal(line, duration / 1000);
        line.push(b'.');
        push_padded(line, duration % 1000, 3);
        line.extend_from_slice(br#","bytes":"#);
        push_decimal(line, self.below(64 * 1024));
        line.extend_from_slice(br#","user":"u-"#);
        push_decimal(line, 10_000 + self.below(5_000));

        line.extend_from_slice(br#"","trace_id":""#);
        self.push_hex(line);
        line.extend_from_slice(br#"","payload":""#);
        let payload = PAYLOAD_MIN + self.below(PAYLOAD_SPREAD) as usize;
        let start = line.len();
        line.resize(start + payload, 0);
        for bytes in line[start..].chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            bytes.copy_from_slice(&word[..bytes.len()]);
        }
        line.extend_from_slice(b"\"}\n");
    }

    /// Appends 16 random lowercase hex digits.
    fn push_hex(&mut self, line: &mut Vec<u8>) {
        let mut word = self.next_u64();
        for _ in 0..16 {
            line.push(b"0123456789abcdef"[(word & 0xf) as usize]);
            word >>= 4;
        }
    }
}

/// The longest log line [`Content::log_line`] writes.
const MAX_LINE: usize = 512;

const SERVICES: [&str; 8] = [
    "checkout",
    "billing",
    "search",
    "catalog",
    "auth",
    "inventory",
    "shipping",
    "notify",
];

/// Method, path (its last part is a number), message.
const ROUTES: [(&str, &str, &str); 8] = [
    ("GET", "/api/v1/orders/", "request completed"),
    ("GET", "/api/v1/items/", "request completed"),
    ("POST", "/api/v1/orders/", "order created"),
    ("PUT", "/api/v1/carts/", "cart updated"),
    ("GET", "/api/v2/search?page=", "search served"),
    ("DELETE", "/api/v1/sessions/", "session closed"),
    ("GET", "/healthz?probe=", "health check"),
    ("POST", "/api/v1/payments/", "payment authorized"),
];

/// Words that follow a message.
const WORDS: [&str; 32] = [
    "after", "retry", "cache", "miss", "hit", "slow", "queue", "backend", "timeout", "upstream",
    "db", "replica", "primary", "shard", "lock", "wait", "batch", "partial", "stale", "fresh",
    "token", "refresh", "quota", "rate", "limited", "region", "eu-west", "us-east", "canary",
    "fallback", "warm", "cold",
];

/// Random bytes of a line's `payload`: `PAYLOAD_MIN + below(PAYLOAD_SPREAD)`.
const PAYLOAD_MIN: usize = 80;
const PAYLOAD_SPREAD: u64 = 25;

const STATUSES: [&str; 8] = ["200", "200", "200", "200", "201", "204", "404", "500"];

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `n` in decimal, zero-padded to `width` digits.
fn push_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut n = n;
    for digit in digits[..width].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// The SHA-256 of the random content of `size` bytes from `seed`, lowercase hex (what
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

    fn all_logs(size: u64, seed: u64, step: usize) -> Vec<u8> {
        let mut content = Content::logs(size, seed);
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
    fn log_lines_do_not_depend_on_how_they_are_read_and_shorter_is_a_prefix() {
        let whole = all_logs(10_000, 3, 4096);
        assert_eq!(whole.len(), 10_000);
        for step in [1, 7, 8, 300, 513, 9_999] {
            assert_eq!(
                all_logs(10_000, 3, step),
                whole,
                "read {step} bytes at a time"
            );
        }
        assert_eq!(all_logs(777, 3, 64), whole[..777]);
        assert_ne!(all_logs(10_000, 4, 4096), whole);
    }

    #[test]
    fn log_lines_are_json_like_objects_a_quarter_random_bytes() {
        let text = all_logs(1 << 20, 5, 4096);
        let starts: Vec<usize> = text
            .windows(18)
            .enumerate()
            .filter(|(_, w)| w == br#"{"ts":"2026-11-22T"#)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(starts[0], 0);
        let lines = starts.len() - 1;
        let mut random = 0;
        for pair in starts.windows(2) {
            let line = &text[pair[0]..pair[1]];
            assert!(line.len() < MAX_LINE);
            assert!(line.ends_with(b"\"}\n"));
            let payload = line
                .windows(11)
                .position(|w| w == br#""payload":""#)
                .expect("a payload");
            random += line.len() - payload - 11 - 3;
        }
        let share = random as f64 / starts[lines] as f64;
        assert!((0.24..0.26).contains(&share), "{share}");
    }

    #[tokio::test]
    async fn the_async_reader_gives_the_same_bytes() {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        reader(1000, 42).read_to_end(&mut out).await.expect("read");
        assert_eq!(out, all(1000, 42, 4096));
    }
}
