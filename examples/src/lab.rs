//! The lab service's handlers: slow sleeps that report progress, ticks with
//! gaps, an identity, and two blob methods: `Digest` hashes an upload as it
//! streams in, `Fetch` streams generated content back. Shared by `lab-server`,
//! the tour and the tests.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use sha2::{Digest as _, Sha256};
use steadfast::{Blob, BlobSource, Progress};
use tokio::{io::AsyncBufReadExt, time::Instant};
use tokio_stream::{Stream, StreamExt, wrappers::IntervalStream};
use tonic::{Request, Response, Status};

use crate::{
    content,
    proto::lab::v1::{
        DigestReply, DigestRequest, FetchReply, FetchRequest, Identity, SleepReply, SleepRequest,
        Tick, TickCount, TicksRequest, WhoAmIRequest, lab_server::Lab,
    },
};

/// The longest sleep a client may ask for (one hour).
pub const MAX_SLEEP_MS: u64 = 3_600_000;

/// The largest blob `Fetch` generates (16 GiB, what a client accepts by default).
pub const MAX_FETCH_BYTES: u64 = 16 << 30;

/// Counts of handler runs, so tests and the tour can see cancellation.
#[derive(Debug, Default)]
pub struct Stats {
    started: AtomicU64,
    finished: AtomicU64,
    cancelled: AtomicU64,
}

impl Stats {
    /// Handlers that started.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }
    /// Handlers that ran to their end.
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::SeqCst)
    }
    /// Handlers dropped before their end (the client went away).
    pub fn cancelled(&self) -> u64 {
        self.cancelled.load(Ordering::SeqCst)
    }
}

/// Marks a handler run; counts it as cancelled if dropped before `finish`.
struct Run {
    stats: Arc<Stats>,
    done: bool,
}

impl Run {
    fn start(stats: &Arc<Stats>) -> Run {
        stats.started.fetch_add(1, Ordering::SeqCst);
        Run {
            stats: Arc::clone(stats),
            done: false,
        }
    }
    fn finish(mut self) {
        self.done = true;
        self.stats.finished.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if !self.done {
            self.stats.cancelled.fetch_add(1, Ordering::SeqCst);
            tracing::info!("handler cancelled: the client went away");
        }
    }
}

/// How often `Sleep` wakes to report progress, unless set otherwise.
pub const DEFAULT_SLEEP_STEP: Duration = Duration::from_millis(100);

/// The lab service.
#[derive(Debug, Clone)]
pub struct LabService {
    name: String,
    stats: Arc<Stats>,
    sleep_step: Duration,
}

impl LabService {
    /// A lab service that answers `WhoAmI` with `name`.
    pub fn new(name: impl Into<String>) -> Self {
        LabService {
            name: name.into(),
            stats: Arc::default(),
            sleep_step: DEFAULT_SLEEP_STEP,
        }
    }

    /// Makes `Sleep` wake every `step` (at least 1 ms) to report progress, instead
    /// of every [`DEFAULT_SLEEP_STEP`]. A step as long as the sleep leaves only the
    /// heartbeats' own work (the benchmark uses it to tell the two apart).
    pub fn with_sleep_step(mut self, step: Duration) -> Self {
        self.sleep_step = step.max(Duration::from_millis(1));
        self
    }

    /// Handler run counts of the `Sleep`/`SleepPlain` handlers.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }
}

fn sleep_duration(millis: u64) -> Result<Duration, Status> {
    if millis > MAX_SLEEP_MS {
        return Err(Status::invalid_argument(format!(
            "millis = {millis} is more than the maximum of {MAX_SLEEP_MS}"
        )));
    }
    Ok(Duration::from_millis(millis))
}

#[tonic::async_trait]
impl Lab for LabService {
    async fn sleep(&self, request: Request<SleepRequest>) -> Result<Response<SleepReply>, Status> {
        let progress = Progress::from_request(&request);
        let total = sleep_duration(request.get_ref().millis)?;
        let run = Run::start(&self.stats);
        let start = Instant::now();
        let step = self.sleep_step;
        loop {
            let elapsed = start.elapsed();
            if elapsed >= total {
                break;
            }
            tokio::time::sleep(step.min(total - elapsed)).await;
            let elapsed = start.elapsed().min(total);
            progress.report(
                elapsed.as_secs_f32() / total.as_secs_f32(),
                format!("slept {} ms of {}", elapsed.as_millis(), total.as_millis()),
            );
        }
        run.finish();
        Ok(Response::new(SleepReply {
            slept_ms: start.elapsed().as_millis() as u64,
        }))
    }

    async fn sleep_plain(
        &self,
        request: Request<SleepRequest>,
    ) -> Result<Response<SleepReply>, Status> {
        let total = sleep_duration(request.get_ref().millis)?;
        let run = Run::start(&self.stats);
        let start = Instant::now();
        if !total.is_zero() {
            // Like `sleep`: no timer for a zero sleep (tokio rounds it up to a 1 ms tick).
            tokio::time::sleep(total).await;
        }
        run.finish();
        Ok(Response::new(SleepReply {
            slept_ms: start.elapsed().as_millis() as u64,
        }))
    }

    type TicksStream = Pin<Box<dyn Stream<Item = Result<Tick, Status>> + Send>>;

    async fn ticks(
        &self,
        request: Request<TicksRequest>,
    ) -> Result<Response<Self::TicksStream>, Status> {
        let TicksRequest { count, gap_ms } = request.into_inner();
        let gap = sleep_duration(gap_ms)?.max(Duration::from_millis(1));
        let ticks = IntervalStream::new(tokio::time::interval_at(Instant::now() + gap, gap))
            .take(count as usize)
            .map({
                let mut n = 0;
                move |_| {
                    n += 1;
                    Ok(Tick { n })
                }
            });
        Ok(Response::new(Box::pin(ticks)))
    }

    async fn digest(
        &self,
        request: Request<DigestRequest>,
        mut blob: Blob,
    ) -> Result<Response<DigestReply>, Status> {
        let progress = Progress::from_request(&request);
        let extra = sleep_duration(request.get_ref().extra_millis)?;
        let (size, sha256_hex) = hash_blob(&mut blob, &progress).await?;
        if !extra.is_zero() {
            progress.note(format!("read {}; extra work", amount(size, size)));
            tokio::time::sleep(extra).await;
        }
        Ok(Response::new(DigestReply { size, sha256_hex }))
    }

    async fn fetch(
        &self,
        request: Request<FetchRequest>,
    ) -> Result<(Response<FetchReply>, BlobSource), Status> {
        let FetchRequest { size, seed } = request.into_inner();
        if size > MAX_FETCH_BYTES {
            return Err(Status::invalid_argument(format!(
                "size = {size} is more than the maximum of {MAX_FETCH_BYTES}"
            )));
        }
        let blob = BlobSource::from_reader(content::reader(size, seed)).size(size);
        Ok((Response::new(FetchReply { size }), blob))
    }

    async fn count(
        &self,
        request: Request<tonic::Streaming<Tick>>,
    ) -> Result<Response<TickCount>, Status> {
        let mut ticks = request.into_inner();
        let mut total = TickCount::default();
        while let Some(tick) = ticks.message().await? {
            total.count += 1;
            total.sum += u64::from(tick.n);
        }
        Ok(Response::new(total))
    }

    type EchoStream = Pin<Box<dyn Stream<Item = Result<Tick, Status>> + Send>>;

    async fn echo(
        &self,
        request: Request<tonic::Streaming<Tick>>,
    ) -> Result<Response<Self::EchoStream>, Status> {
        Ok(Response::new(Box::pin(request.into_inner())))
    }

    async fn who_am_i(
        &self,
        _request: Request<WhoAmIRequest>,
    ) -> Result<Response<Identity>, Status> {
        Ok(Response::new(Identity {
            name: self.name.clone(),
        }))
    }
}

/// Reads `blob` to its end through SHA-256, reporting how much was read to
/// `progress` (the heartbeats carry it): its size and SHA-256 in hex. Errors: the
/// blob's own (corrupt, truncated, over the server's limits), as a status.
pub async fn hash_blob(blob: &mut Blob, progress: &Progress) -> Result<(u64, String), Status> {
    let total = blob.declared_size();
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    loop {
        // The blob lends each decompressed block (no copy into a buffer here).
        let block = blob
            .fill_buf()
            .await
            .map_err(|e| steadfast::blob::status(&e))?;
        let n = block.len();
        if n == 0 {
            return Ok((size, hex(&hasher.finalize())));
        }
        hasher.update(block);
        blob.consume(n);
        size += n as u64;
        match total {
            Some(total) if total > 0 => progress.report(
                size as f32 / total as f32,
                format!("read {} of {}", amount(size, total), amount(total, total)),
            ),
            _ => progress.note(format!("read {}", amount(size, size))),
        }
    }
}

/// `bytes` in MiB when `scale` is 8 MiB or more, else in KiB (both rounded down).
fn amount(bytes: u64, scale: u64) -> String {
    if scale >= 8 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// `bytes` as lowercase hex (how `Digest` answers a SHA-256).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// One line describing a heartbeat, as the client and the tour print it.
pub fn describe(heartbeat: &steadfast::Heartbeat) -> String {
    let mut line = format!(
        "heartbeat #{} at {} ms",
        heartbeat.seq, heartbeat.elapsed_ms
    );
    if let Some(progress) = heartbeat.progress {
        line.push_str(&format!(": {:.0}%", progress * 100.0));
    }
    if let Some(note) = &heartbeat.note {
        line.push_str(&format!(" ({note})"));
    }
    line
}

/// A lab server running in this process on a loopback port; stopped on drop.
#[derive(Debug)]
pub struct RunningLab {
    addr: std::net::SocketAddr,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningLab {
    /// Starts a lab server named `name` on `127.0.0.1:0`, on steadfast's
    /// production [`Server`](steadfast::server::Server) with its defaults.
    pub async fn start(name: &str) -> std::io::Result<RunningLab> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let service = LabService::new(name);
        let stats = service.stats();
        let server = steadfast::server::Server::builder()
            .add_service(crate::proto::lab::v1::lab_server::LabServer::new(service));
        let task = tokio::spawn(async move {
            if let Err(err) = server.serve_until(listener, std::future::pending()).await {
                tracing::error!("lab server stopped: {err}");
            }
        });
        Ok(RunningLab { addr, stats, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Handler run counts.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl Drop for RunningLab {
    fn drop(&mut self) {
        self.task.abort();
    }
}
