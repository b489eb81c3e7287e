//! Keepalive enforcement: a client's PINGs held to a minimum interval
//! (gRPC's `EnforcementPolicy`), below hyper.
//!
//! h2 answers every PING inside the connection and tells no one, and hyper
//! can only end a connection with GOAWAY `NO_ERROR`. So [`Enforced`] wraps
//! the TCP stream that hyper serves and watches the HTTP/2 frames going by in
//! both directions. It reads frame headers only (9 bytes a frame; payloads
//! are skipped by count) and never changes a byte hyper reads or writes,
//! until it evicts.
//!
//! The rule is grpc-go's (`handlePing` in `internal/transport/http2_server.go`):
//! a PING (without ACK) that comes less than the minimum interval after the
//! client's previous one is a strike, and the third strike
//! ([`MAX_PING_STRIKES`] + 1) evicts. A HEADERS or DATA frame the server
//! writes wipes the strikes, and the PING after it is not checked (so a
//! client's BDP pings, sent when data arrives, are never strikes). Without
//! calls and without `permit_without_calls`, the interval is 2 hours.
//!
//! Eviction: the violating PING and everything after it are never handed to
//! hyper (so it does not answer that PING and starts no stream the GOAWAY
//! does not count); at the next boundary between the frames hyper writes,
//! GOAWAY `ENHANCE_YOUR_CALM` with debug data `too_many_pings` and the
//! highest stream id the client opened goes out, then a FIN, and every read
//! and write fails with `ConnectionAborted`, which ends hyper's connection.
//! If hyper is in the middle of a frame and never finishes it, the
//! connection's task closes the connection after [`EVICTION_CLOSE`].

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::drain::Active;

/// How many PINGs too early a client may send before it is evicted: grpc-go's
/// `maxPingStrikes`, 2 (the third evicts).
pub(crate) const MAX_PING_STRIKES: u32 = 2;

/// The minimum interval between PINGs on a connection without calls, when
/// they are not [permitted](PingPolicy::permit_without_calls): grpc-go's
/// `defaultPingTimeout`, 2 hours.
const WITHOUT_CALLS_MIN_INTERVAL: Duration = Duration::from_secs(2 * 3600);

/// How long an evicted connection has to write its GOAWAY before its task
/// closes it anyway: 1 s (a hyper that never finishes its frame cannot keep it).
pub(crate) const EVICTION_CLOSE: Duration = Duration::from_secs(1);

/// The client connection preface, before the client's first frame.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADER_LEN: usize = 9;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const TOO_MANY_PINGS: &[u8; 14] = b"too_many_pings";
const GOAWAY_LEN: usize = HEADER_LEN + 8 + TOO_MANY_PINGS.len();

/// The keepalive enforcement of a server (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PingPolicy {
    /// The shortest time between two PINGs of a client that is not a strike.
    pub(crate) min_interval: Duration,
    /// Whether a client may PING at that rate without calls in flight.
    pub(crate) permit_without_calls: bool,
}

impl PingPolicy {
    /// Whether any client can ever be evicted: if not, frames are not even
    /// looked at.
    pub(crate) fn enforced(&self) -> bool {
        !self.min_interval.is_zero() || !self.permit_without_calls
    }
}

/// A client's strikes (grpc-go's `pingStrikes`, `lastPingAt`,
/// `resetPingStrikes`), apart from any IO so they are tested with any clock.
#[derive(Debug, Default)]
struct Strikes {
    count: u32,
    last_ping: Option<Instant>,
    /// The server wrote HEADERS or DATA since the last PING.
    reset: bool,
}

impl Strikes {
    /// A PING at `now`, held to `min_interval`: whether it evicts.
    fn ping(&mut self, now: Instant, min_interval: Duration) -> bool {
        let last = self.last_ping.replace(now);
        if std::mem::take(&mut self.reset) {
            self.count = 0;
            return false;
        }
        if last.is_some_and(|last| now.saturating_duration_since(last) < min_interval) {
            self.count += 1;
        }
        self.count > MAX_PING_STRIKES
    }
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl Header {
    fn parse(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            len: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// Where a byte stream of HTTP/2 frames is, fed chunks of any size: it
/// collects each frame's header and skips payloads by count.
#[derive(Debug, Default)]
struct Frames {
    /// Bytes of the client preface still to skip.
    preface: usize,
    header: [u8; HEADER_LEN],
    /// How much of `header` is filled.
    filled: usize,
    /// Payload bytes left of the current frame.
    payload: usize,
}

impl Frames {
    /// The client's side: the preface first.
    fn inbound() -> Frames {
        Frames {
            preface: PREFACE.len(),
            ..Frames::default()
        }
    }

    /// The server's side: frames from the first byte.
    fn outbound() -> Frames {
        Frames::default()
    }

    /// Feeds `bytes`, calling `on_header` with each complete header. When it
    /// breaks, returns how many bytes were consumed (up to the end of that
    /// header); the rest of `bytes` is left unread.
    fn feed(
        &mut self,
        bytes: &[u8],
        mut on_header: impl FnMut(Header) -> ControlFlow<()>,
    ) -> Option<usize> {
        let mut at = 0;
        while at < bytes.len() {
            let left = bytes.len() - at;
            if self.preface > 0 {
                let n = self.preface.min(left);
                self.preface -= n;
                at += n;
            } else if self.payload > 0 {
                let n = self.payload.min(left);
                self.payload -= n;
                at += n;
            } else {
                let n = (HEADER_LEN - self.filled).min(left);
                self.header[self.filled..self.filled + n].copy_from_slice(&bytes[at..at + n]);
                self.filled += n;
                at += n;
                if self.filled == HEADER_LEN {
                    self.filled = 0;
                    let header = Header::parse(&self.header);
                    self.payload = header.len;
                    if on_header(header).is_break() {
                        return Some(at);
                    }
                }
            }
        }
        None
    }

    /// How many bytes are left until the next frame boundary (or until the
    /// end of the current header, whose frame's length is not known yet);
    /// 0 at a boundary.
    fn to_boundary(&self) -> usize {
        if self.payload > 0 {
            self.payload
        } else if self.filled > 0 {
            HEADER_LEN - self.filled
        } else {
            self.preface
        }
    }
}

/// The GOAWAY of an eviction and how much of it went out.
#[derive(Debug)]
struct Eviction {
    goaway: [u8; GOAWAY_LEN],
    written: usize,
    closed: bool,
}

impl Eviction {
    fn new(last_stream: u32) -> Eviction {
        let mut goaway = [0; GOAWAY_LEN];
        let len = (8 + TOO_MANY_PINGS.len()) as u32;
        goaway[..3].copy_from_slice(&len.to_be_bytes()[1..]);
        goaway[3] = GOAWAY;
        // Flags 0, stream 0.
        goaway[9..13].copy_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
        goaway[13..17].copy_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
        goaway[17..].copy_from_slice(TOO_MANY_PINGS);
        Eviction {
            goaway,
            written: 0,
            closed: false,
        }
    }
}

fn evicted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "evicted: too many pings (GOAWAY ENHANCE_YOUR_CALM)",
    )
}

/// A connection's IO with its client's PINGs held to a [`PingPolicy`] (see
/// the [module docs](self)).
#[derive(Debug)]
pub(crate) struct Enforced<T> {
    io: T,
    policy: PingPolicy,
    peer: SocketAddr,
    /// The connection's calls in flight (for `permit_without_calls`).
    calls: Arc<Active>,
    /// Told once when the connection is evicted.
    evicting: Arc<Notify>,
    inbound: Frames,
    outbound: Frames,
    strikes: Strikes,
    /// The highest stream id the client opened (HEADERS).
    last_stream: u32,
    eviction: Option<Eviction>,
}

impl<T> Enforced<T> {
    /// `io` of a connection with `peer`, with `calls` its calls in flight;
    /// `evicting` is notified when it evicts the client.
    pub(crate) fn new(
        io: T,
        policy: PingPolicy,
        peer: SocketAddr,
        calls: Arc<Active>,
        evicting: Arc<Notify>,
    ) -> Enforced<T> {
        Enforced {
            io,
            policy,
            peer,
            calls,
            evicting,
            inbound: Frames::inbound(),
            outbound: Frames::outbound(),
            strikes: Strikes::default(),
            last_stream: 0,
            eviction: None,
        }
    }

    /// Reads the frames of `bytes` the client sent; how many of them hyper
    /// may have, when the client is evicted.
    fn received(&mut self, bytes: &[u8]) -> Option<usize> {
        if !self.policy.enforced() {
            return None;
        }
        let Enforced {
            inbound,
            strikes,
            last_stream,
            policy,
            calls,
            ..
        } = self;
        inbound.feed(bytes, |header| match header.kind {
            HEADERS if header.stream % 2 == 1 => {
                *last_stream = (*last_stream).max(header.stream);
                ControlFlow::Continue(())
            }
            PING if header.flags & ACK == 0 => {
                let min_interval = if policy.permit_without_calls || calls.in_flight() > 0 {
                    policy.min_interval
                } else {
                    WITHOUT_CALLS_MIN_INTERVAL
                };
                if strikes.ping(Instant::now(), min_interval) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
            _ => ControlFlow::Continue(()),
        })
    }

    /// Notes the first `n` bytes of `bufs` as written.
    fn sent(&mut self, bufs: &[IoSlice<'_>], mut n: usize) {
        if !self.policy.enforced() {
            return;
        }
        for buf in bufs {
            if n == 0 {
                break;
            }
            let take = n.min(buf.len());
            self.sent_bytes(&buf[..take]);
            n -= take;
        }
    }

    fn sent_bytes(&mut self, bytes: &[u8]) {
        if !self.policy.enforced() {
            return;
        }
        let strikes = &mut self.strikes;
        self.outbound.feed(bytes, |header| {
            if matches!(header.kind, HEADERS | DATA) {
                strikes.reset = true;
            }
            ControlFlow::Continue(())
        });
    }

    fn evict(&mut self) {
        tracing::warn!(
            peer = %self.peer,
            strikes = self.strikes.count,
            min_interval_ms = self.policy.min_interval.as_millis() as u64,
            "client PINGs too often: GOAWAY ENHANCE_YOUR_CALM too_many_pings, closing"
        );
        self.eviction = Some(Eviction::new(self.last_stream));
        self.evicting.notify_one();
    }
}

impl<T: AsyncWrite + Unpin> Enforced<T> {
    /// Writes the GOAWAY once the bytes written so far end at a frame
    /// boundary, then a FIN. `Ready(Ok)` once both are out.
    fn poll_goaway(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(eviction) = &mut self.eviction else {
            return Poll::Ready(Ok(()));
        };
        if self.outbound.to_boundary() > 0 {
            // hyper finishes its frame in `poll_write` first.
            return Poll::Pending;
        }
        while eviction.written < GOAWAY_LEN {
            let n = ready!(
                Pin::new(&mut self.io).poll_write(cx, &eviction.goaway[eviction.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            eviction.written += n;
        }
        if !eviction.closed {
            ready!(Pin::new(&mut self.io).poll_flush(cx))?;
            ready!(Pin::new(&mut self.io).poll_shutdown(cx))?;
            eviction.closed = true;
        }
        Poll::Ready(Ok(()))
    }

    /// A write while evicting: up to the end of hyper's current frame, then
    /// the GOAWAY, then an error.
    fn poll_write_evicting(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let left = self.outbound.to_boundary();
        if left > 0 {
            let end = left.min(buf.len());
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &buf[..end]))?;
            self.sent_bytes(&buf[..n]);
            return Poll::Ready(Ok(n));
        }
        ready!(self.poll_goaway(cx))?;
        Poll::Ready(Err(evicted()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Enforced<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.eviction.is_some() {
                ready!(this.poll_goaway(cx))?;
                return Poll::Ready(Err(evicted()));
            }
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
            let Some(kept) = this.received(&buf.filled()[before..]) else {
                return Poll::Ready(Ok(()));
            };
            // The violating PING and what follows it never reach hyper.
            buf.set_filled(before + kept);
            this.evict();
            if kept > 0 {
                return Poll::Ready(Ok(()));
            }
            // Nothing to hand over (and 0 bytes would read as EOF): evict now.
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Enforced<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.eviction.is_some() {
            return this.poll_write_evicting(cx, buf);
        }
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.sent_bytes(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.eviction.is_some() {
            // Rare and short: the first slice is enough to reach the boundary.
            let buf = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &**b);
            return this.poll_write_evicting(cx, buf);
        }
        let n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        this.sent(bufs, n);
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::drain::CallGuard;

    const PEER: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1);

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut frame = len.to_be_bytes()[1..].to_vec();
        frame.extend([kind, flags]);
        frame.extend(stream.to_be_bytes());
        frame.extend(payload);
        frame
    }

    fn ping() -> Vec<u8> {
        frame(PING, 0, 0, &[7; 8])
    }

    /// A client's bytes: the preface, SETTINGS, two calls' HEADERS and DATA,
    /// a PING, its ACK of the server's PING, an empty DATA.
    fn client_bytes() -> (Vec<u8>, Vec<Header>) {
        let frames = [
            frame(0x4, 0, 0, &[0, 5, 0, 4, 0, 0]),
            frame(HEADERS, 0x4, 1, &[0x82; 20]),
            frame(DATA, 0, 1, &[9; 300]),
            frame(HEADERS, 0x5, 3, &[0x83; 3]),
            ping(),
            frame(PING, ACK, 0, &[1; 8]),
            frame(DATA, 0x1, 1, &[]),
        ];
        let headers = frames
            .iter()
            .map(|f| Header::parse(f[..HEADER_LEN].try_into().expect("9 bytes")))
            .collect();
        let mut bytes = PREFACE.to_vec();
        for f in frames {
            bytes.extend(f);
        }
        (bytes, headers)
    }

    fn collect(frames: &mut Frames, chunks: &[&[u8]]) -> Vec<Header> {
        let mut seen = Vec::new();
        for chunk in chunks {
            let stopped = frames.feed(chunk, |h| {
                seen.push(h);
                ControlFlow::Continue(())
            });
            assert_eq!(stopped, None);
        }
        seen
    }

    #[test]
    fn frames_split_anywhere_give_the_same_headers() {
        let (bytes, headers) = client_bytes();
        assert_eq!(collect(&mut Frames::inbound(), &[&bytes]), headers);
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let mut frames = Frames::inbound();
            assert_eq!(collect(&mut frames, &[a, b]), headers, "cut at {cut}");
            assert_eq!(frames.to_boundary(), 0);
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(collect(&mut Frames::inbound(), &bytewise), headers);
        let threes: Vec<&[u8]> = bytes.chunks(3).collect();
        assert_eq!(collect(&mut Frames::inbound(), &threes), headers);
    }

    #[test]
    fn a_break_stops_right_after_that_header() {
        let (bytes, _) = client_bytes();
        let mut frames = Frames::inbound();
        let stopped = frames.feed(&bytes, |h| {
            if h.kind == PING {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        let ping_at = bytes.len() - 2 * (HEADER_LEN + 8) - HEADER_LEN;
        assert_eq!(stopped, Some(ping_at + HEADER_LEN));
    }

    #[test]
    fn strikes_follow_grpc_go() {
        let min = Duration::from_millis(100);
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut s = Strikes::default();
        // The first PING is never a strike; the third early one evicts.
        assert!(!s.ping(at(0), min));
        assert!(!s.ping(at(10), min));
        assert!(!s.ping(at(20), min));
        assert_eq!(s.count, 2);
        assert!(s.ping(at(30), min));

        // Slow PINGs never strike; exactly the interval is not too early.
        let mut s = Strikes::default();
        for i in 0..10 {
            assert!(!s.ping(at(i * 100), min));
        }
        assert_eq!(s.count, 0);

        // HEADERS or DATA sent: strikes wiped, the next PING not checked,
        // but its time kept.
        let mut s = Strikes::default();
        assert!(!s.ping(at(0), min));
        assert!(!s.ping(at(1), min));
        assert!(!s.ping(at(2), min));
        s.reset = true;
        assert!(!s.ping(at(3), min));
        assert_eq!(s.count, 0);
        assert!(!s.ping(at(4), min));
        assert!(!s.ping(at(5), min));
        assert!(s.ping(at(6), min));

        // Strikes are not forgiven by slow PINGs alone (as in grpc-go).
        let mut s = Strikes::default();
        assert!(!s.ping(at(0), min));
        assert!(!s.ping(at(1), min));
        assert!(!s.ping(at(500), min));
        assert!(!s.ping(at(501), min));
        assert!(s.ping(at(502), min));
    }

    /// An IO whose reads come from `input`, one chunk each (then `Pending`),
    /// and whose writes take at most `cap` bytes each.
    #[derive(Default)]
    struct Mock {
        input: std::collections::VecDeque<Vec<u8>>,
        output: Vec<u8>,
        cap: usize,
        writes: usize,
        vectored_writes: usize,
        shut: bool,
    }

    impl AsyncRead for Mock {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match self.input.pop_front() {
                Some(chunk) => {
                    buf.put_slice(&chunk);
                    Poll::Ready(Ok(()))
                }
                None => Poll::Pending,
            }
        }
    }

    impl AsyncWrite for Mock {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.cap);
            self.output.extend(&buf[..n]);
            self.writes += 1;
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut left = self.cap;
            for buf in bufs {
                let n = buf.len().min(left);
                self.output.extend(&buf[..n]);
                left -= n;
            }
            self.vectored_writes += 1;
            Poll::Ready(Ok(self.cap - left))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.shut = true;
            Poll::Ready(Ok(()))
        }
    }

    fn enforced(input: Vec<Vec<u8>>, cap: usize) -> (Enforced<Mock>, Arc<Active>) {
        let calls = Arc::new(Active::new(false));
        let mock = Mock {
            input: input.into(),
            cap,
            ..Mock::default()
        };
        let policy = PingPolicy {
            min_interval: Duration::from_secs(10),
            permit_without_calls: true,
        };
        (
            Enforced::new(
                mock,
                policy,
                PEER,
                Arc::clone(&calls),
                Arc::new(Notify::new()),
            ),
            calls,
        )
    }

    fn read(io: &mut Enforced<Mock>) -> Poll<io::Result<Vec<u8>>> {
        let mut bytes = [0; 4096];
        let mut buf = ReadBuf::new(&mut bytes);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(io).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().to_vec())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn write(io: &mut Enforced<Mock>, bufs: &[&[u8]]) -> Poll<io::Result<usize>> {
        let slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        Pin::new(io).poll_write_vectored(&mut cx, &slices)
    }

    fn aborted<T>(poll: &Poll<io::Result<T>>) -> bool {
        matches!(poll, Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionAborted)
    }

    fn goaway(last_stream: u32) -> Vec<u8> {
        let mut payload = last_stream.to_be_bytes().to_vec();
        payload.extend(ENHANCE_YOUR_CALM.to_be_bytes());
        payload.extend(TOO_MANY_PINGS);
        frame(GOAWAY, 0, 0, &payload)
    }

    /// The preface, HEADERS of streams 1 and 5, and four quick PINGs (the
    /// fourth is the third strike), then HEADERS of stream 7.
    fn abusive_client() -> (Vec<u8>, usize) {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(HEADERS, 0x5, 1, &[0x82; 4]));
        bytes.extend(frame(HEADERS, 0x5, 5, &[0x82; 4]));
        for _ in 0..3 {
            bytes.extend(ping());
        }
        let fourth = bytes.len();
        bytes.extend(ping());
        bytes.extend(frame(HEADERS, 0x5, 7, &[0x82; 4]));
        (bytes, fourth)
    }

    #[test]
    fn vectored_writes_are_tracked_over_the_bytes_written() {
        let (mut io, _calls) = enforced(Vec::new(), 5);
        let settings = frame(0x4, 0, 0, &[]);
        let data = frame(DATA, 0, 1, &[1; 20]);
        let mut written = 0;
        let all = [settings.clone(), data.clone()].concat();
        while written < all.len() {
            // The rest, as hyper would pass it: header and payload apart.
            let rest = &all[written..];
            let (a, b) = rest.split_at(rest.len().min(4));
            let Poll::Ready(Ok(n)) = write(&mut io, &[a, &[], b]) else {
                panic!("write failed");
            };
            assert!(n <= 5);
            written += n;
            // SETTINGS is not HEADERS or DATA; DATA's header is.
            assert_eq!(io.strikes.reset, written >= settings.len() + HEADER_LEN);
        }
        assert_eq!(io.io.output, all);
        assert_eq!(io.io.writes, 0, "vectored writes stay vectored");
        assert!(io.is_write_vectored());
        assert_eq!(io.outbound.to_boundary(), 0);
    }

    #[test]
    fn eviction_at_a_boundary_sends_goaway_then_fails() {
        let (bytes, fourth) = abusive_client();
        for chunk in [bytes.len(), 1, 7, 16] {
            let (mut io, _calls) = enforced(bytes.chunks(chunk).map(<[u8]>::to_vec).collect(), 64);
            let mut handed = Vec::new();
            let end = loop {
                match read(&mut io) {
                    Poll::Ready(Ok(got)) => handed.extend(got),
                    other => break other,
                }
            };
            assert!(aborted(&end), "chunks of {chunk}: {end:?}");
            // hyper got everything up to the fourth PING's header, not its
            // payload nor stream 7.
            assert_eq!(handed, bytes[..fourth + HEADER_LEN], "chunks of {chunk}");
            assert_eq!(io.io.output, goaway(5));
            assert!(io.io.shut);
            assert!(aborted(&write(&mut io, &[&[1, 2, 3]])));
            assert_eq!(io.io.output, goaway(5));
        }
    }

    #[test]
    fn eviction_mid_frame_lets_the_frame_finish_first() {
        let (bytes, _) = abusive_client();
        let (mut io, _calls) = enforced(vec![bytes], 1 << 20);
        io.io.cap = 13;
        let data = frame(DATA, 0, 1, &[3; 30]);
        let pong = frame(PING, ACK, 0, &[0; 8]);
        // hyper wrote part of a DATA frame (it was cut short).
        assert!(matches!(write(&mut io, &[&data]), Poll::Ready(Ok(13))));
        io.io.cap = 1 << 20;
        assert!(matches!(read(&mut io), Poll::Ready(Ok(_))));
        // Evicting, but hyper is inside a frame: no GOAWAY yet.
        assert!(read(&mut io).is_pending());
        assert_eq!(io.io.output, data[..13]);
        // hyper goes on: only the rest of its frame goes out, then the GOAWAY.
        let rest = [&data[13..], &pong[..]].concat();
        assert!(matches!(write(&mut io, &[&rest]), Poll::Ready(Ok(n)) if n == data.len() - 13));
        assert!(aborted(&write(&mut io, &[&pong])));
        assert_eq!(io.io.output, [data, goaway(5)].concat());
        assert!(aborted(&read(&mut io)));
    }

    #[test]
    fn data_sent_between_pings_keeps_a_client() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(HEADERS, 0x5, 1, &[0x82; 4]));
        let (mut io, _calls) = enforced(vec![bytes], 1 << 20);
        assert!(matches!(read(&mut io), Poll::Ready(Ok(_))));
        for _ in 0..20 {
            io.io.input.push_back([ping(), ping()].concat());
            assert!(matches!(read(&mut io), Poll::Ready(Ok(b)) if b.len() == 34));
            assert!(write(&mut io, &[&frame(DATA, 0, 1, &[1; 5])]).is_ready());
        }
        assert!(io.eviction.is_none());
        assert_eq!(io.strikes.count, 1);
    }

    #[test]
    fn without_calls_pings_are_held_to_two_hours_unless_permitted() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend([ping(), ping(), ping()].concat());
        let (mut io, calls) = enforced(vec![bytes], 1 << 20);
        io.policy = PingPolicy {
            min_interval: Duration::ZERO,
            permit_without_calls: false,
        };
        assert!(matches!(read(&mut io), Poll::Ready(Ok(_))));
        assert_eq!(io.strikes.count, 2);
        // With a call in flight, the policy's own interval (0) holds.
        let call = CallGuard::new(Arc::default(), Arc::clone(&calls));
        io.io.input.push_back([ping(), ping()].concat());
        assert!(matches!(read(&mut io), Poll::Ready(Ok(_))));
        assert_eq!(io.strikes.count, 2);
        drop(call);
        io.io.input.push_back(ping());
        // hyper gets the PING's header, never its payload.
        assert!(matches!(read(&mut io), Poll::Ready(Ok(b)) if b.len() == HEADER_LEN));
        assert!(aborted(&read(&mut io)));
        assert_eq!(io.io.output, goaway(0));
    }
}
