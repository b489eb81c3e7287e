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
//! Both draw from steadfast's xorshift64* generator ([`FastRng`]) seeded with
//! `splitmix64(seed)`, so that neighbouring seeds start far apart. The same
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

use steadfast::retry::{FastRng, Rng as _};
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
    rng: FastRng,
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
            rng: FastRng::seeded(splitmix64(seed)),
            unit: Vec::with_capacity(match flavor {
                Flavor::Random => 8,
                Flavor::Logs => LINE_ROOM,
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
            // Finish the current unit, then whole units straight into `out`
            // (random outputs; log lines while a longest one fits), then start
            // the next unit.
            let leftover = (self.unit.len() - self.used).min(out.len());
            out[..leftover].copy_from_slice(&self.unit[self.used..self.used + leftover]);
            self.used += leftover;
            out = &mut out[leftover..];
            if out.is_empty() {
                break;
            }
            match self.flavor {
                Flavor::Random => {
                    let mut words = out.chunks_exact_mut(8);
                    for word in &mut words {
                        word.copy_from_slice(&self.next_u64().to_le_bytes());
                    }
                    out = words.into_remainder();
                }
                Flavor::Logs => {
                    while let Some(room) = out.first_chunk_mut::<LINE_ROOM>() {
                        let len = self.log_line(room);
                        out = &mut out[len..];
                    }
                }
            }
            if out.is_empty() {
                break;
            }
            self.next_unit();
        }
        self.remaining -= n as u64;
        n
    }

    /// Replaces the unit, all read, with the next one.
    fn next_unit(&mut self) {
        let mut unit = std::mem::take(&mut self.unit);
        match self.flavor {
            Flavor::Random => {
                unit.clear();
                unit.extend_from_slice(&self.next_u64().to_le_bytes());
            }
            Flavor::Logs => {
                unit.resize(LINE_ROOM, 0);
                let room = unit.first_chunk_mut::<LINE_ROOM>().expect("sized above");
                let len = self.log_line(room);
                unit.truncate(len);
            }
        }
        self.unit = unit;
        self.used = 0;
    }

    /// The next xorshift64* output.
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A number in `0..n`, uniform enough for test content.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// One of `choices`.
    fn pick<'a>(&mut self, choices: &'a [Text]) -> &'a Text {
        &choices[self.below(choices.len() as u64) as usize]
    }

    /// Writes one log line, `\n` included, at the start of `room`; returns its
    /// length (at most [`MAX_LINE`]; the bytes after it may be overwritten).
    /// Each part goes in with a copy of a known size, not a growing `Vec`:
    /// the generator's speed bounds every contender of `blob-bench`.
    fn log_line(&mut self, room: &mut [u8; LINE_ROOM]) -> usize {
        let mut line = Line { room, len: 0 };
        // Most lines come a few ms apart; the clock never runs backwards.
        self.clock_us += self.below(3_000);
        let t = self.clock_us % 86_400_000_000;
        line.put(br#"{"ts":"2026-11-22T"#);
        line.padded(t / 3_600_000_000, 2);
        line.put(b":");
        line.padded(t / 60_000_000 % 60, 2);
        line.put(b":");
        line.padded(t / 1_000_000 % 60, 2);
        line.put(b".");
        line.padded(t % 1_000_000, 6);
        let level = match self.below(20) {
            0 => &LEVELS[0],
            1..=2 => &LEVELS[1],
            3..=5 => &LEVELS[2],
            _ => &LEVELS[3],
        };
        line.put(br#"Z","level":""#);
        line.text(level);
        line.put(br#"","service":""#);
        line.text(self.pick(&SERVICES));
        line.put(br#"","host":"node-"#);
        line.decimal(self.below(48));
        let [method, path, msg] = &ROUTES[self.below(ROUTES.len() as u64) as usize];
        line.put(br#"","msg":""#);
        line.text(msg);
        for _ in 0..self.below(4) {
            line.put(b" ");
            line.text(self.pick(&WORDS));
        }
        line.put(br#"","method":""#);
        line.text(method);
        line.put(br#"","path":""#);
        line.text(path);
        line.decimal(self.below(10_000));
        line.put(br#"","status":"#);
        line.text(self.pick(&STATUSES));
        line.put(br#","duration_ms":"#);
        // Mostly short, some long.
        let scale = self.below(400_000) + 1;
        let duration = self.below(scale);
        line.decimal(duration / 1000);
        line.put(b".");
        line.padded(duration % 1000, 3);
        line.put(br#","bytes":"#);
        line.decimal(self.below(64 * 1024));
        line.put(br#","user":"u-"#);
        line.decimal(10_000 + self.below(5_000));

        line.put(br#"","trace_id":""#);
        let mut word = self.next_u64();
        let mut hex = [0u8; 16];
        for digit in &mut hex {
            *digit = b"0123456789abcdef"[(word & 0xf) as usize];
            word >>= 4;
        }
        line.put(&hex);
        line.put(br#"","payload":""#);
        let payload = PAYLOAD_MIN + self.below(PAYLOAD_SPREAD) as usize;
        // Whole words, the last one cut at the payload's end by what follows
        // (LINE_ROOM leaves room for its tail).
        for _ in 0..payload.div_ceil(8) {
            line.put(&self.next_u64().to_le_bytes());
        }
        line.len -= payload.div_ceil(8) * 8 - payload;
        line.put(b"\"}\n");
        line.len
    }
}

/// A log line being written into its room (see [`Content::log_line`]).
struct Line<'a> {
    room: &'a mut [u8; LINE_ROOM],
    len: usize,
}

impl Line<'_> {
    /// Bytes whose length is known where this is called (a literal), so the
    /// copy compiles to a few moves.
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        self.room[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// A table's text: all of its room is copied (one move of a known size),
    /// then the line goes on after the text.
    #[inline(always)]
    fn text(&mut self, text: &Text) {
        self.room[self.len..self.len + TEXT_ROOM].copy_from_slice(&text.bytes);
        self.len += text.len;
    }

    /// `n` in decimal.
    fn decimal(&mut self, n: u64) {
        self.padded(n, n.checked_ilog10().unwrap_or(0) as usize + 1);
    }

    /// `n` in decimal, zero-padded to `width` digits (its last `width` digits).
    #[inline(always)]
    fn padded(&mut self, n: u64, width: usize) {
        let mut n = n;
        for digit in self.room[self.len..self.len + width].iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += width;
    }
}

/// A short text in a room of fixed size (see [`Line::text`]).
struct Text {
    bytes: [u8; TEXT_ROOM],
    len: usize,
}

/// The room of a [`Text`]: its longest text.
const TEXT_ROOM: usize = 24;

/// `list` as [`Text`]s (at compile time).
const fn texts<const N: usize>(list: [&str; N]) -> [Text; N] {
    let mut texts = [const {
        Text {
            bytes: [0; TEXT_ROOM],
            len: 0,
        }
    }; N];
    let mut i = 0;
    while i < N {
        let text = list[i].as_bytes();
        assert!(text.len() <= TEXT_ROOM, "a text longer than TEXT_ROOM");
        let mut j = 0;
        while j < text.len() {
            texts[i].bytes[j] = text[j];
            j += 1;
        }
        texts[i].len = text.len();
        i += 1;
    }
    texts
}

/// The longest log line [`Content::log_line`] writes.
const MAX_LINE: usize = 512;
/// The room a log line is written into: the longest line and the most a
/// copy can reach past its end (a [`Text`]'s room; a payload word's 8 bytes).
const LINE_ROOM: usize = MAX_LINE + TEXT_ROOM;

const LEVELS: [Text; 4] = texts(["error", "warn", "debug", "info"]);

const SERVICES: [Text; 8] = texts([
    "checkout",
    "billing",
    "search",
    "catalog",
    "auth",
    "inventory",
    "shipping",
    "notify",
]);

/// Method, path (its last part is a number), message.
const ROUTES: [[Text; 3]; 8] = [
    texts(["GET", "/api/v1/orders/", "request completed"]),
    texts(["GET", "/api/v1/items/", "request completed"]),
    texts(["POST", "/api/v1/orders/", "order created"]),
    texts(["PUT", "/api/v1/carts/", "cart updated"]),
    texts(["GET", "/api/v2/search?page=", "search served"]),
    texts(["DELETE", "/api/v1/sessions/", "session closed"]),
    texts(["GET", "/healthz?probe=", "health check"]),
    texts(["POST", "/api/v1/payments/", "payment authorized"]),
];

/// Words that follow a message.
const WORDS: [Text; 32] = texts([
    "after", "retry", "cache", "miss", "hit", "slow", "queue", "backend", "timeout", "upstream",
    "db", "replica", "primary", "shard", "lock", "wait", "batch", "partial", "stale", "fresh",
    "token", "refresh", "quota", "rate", "limited", "region", "eu-west", "us-east", "canary",
    "fallback", "warm", "cold",
]);

/// Random bytes of a line's `payload`: `PAYLOAD_MIN + below(PAYLOAD_SPREAD)`.
const PAYLOAD_MIN: usize = 80;
const PAYLOAD_SPREAD: u64 = 25;

const STATUSES: [Text; 8] = texts(["200", "200", "200", "200", "201", "204", "404", "500"]);

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

/// A well-mixed seed for any seed (splitmix64's finalizer). [`FastRng::seeded`]
/// replaces the one it cannot use, 0.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
    fn the_bytes_of_a_seed_never_change() {
        // The benchmarks' figures hold for these bytes (xorshift64* from
        // splitmix64(seed), each output little-endian).
        let hex = |bytes: Vec<u8>| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(all(16, 1, 16)), "9b1b61f35da5464bf43e760e41f1e1d7");
        assert_eq!(hex(all(16, 0, 16)), "d08206550db4bc7bfdc90cd013e47fde");
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
