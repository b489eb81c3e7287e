//! The load loop of the call-rate benchmarks (`bench`, `dispatch-bench`,
//! `retry-bench`): `concurrency` tasks, each making back-to-back calls until the
//! round ends, and what the round cost the server process and this one per call.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::measure::{cpu_time, write_syscalls};

/// The error of a benchmark.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// What one loop of a round calls: each loop owns one (a clone of a client,
/// say) and calls it back to back.
pub trait Caller: Send + 'static {
    /// One call, its reply checked.
    fn call(&mut self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// How long a round runs.
#[derive(Debug, Clone, Copy)]
pub enum Length {
    /// For this long: no loop starts a call after it.
    For(Duration),
    /// This many calls in all, shared by the loops.
    Calls(u64),
}

/// What one round measured.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// Completed calls per second.
    pub rate: f64,
    /// CPU time of the server process per call, µs.
    pub server_us: f64,
    /// CPU time of this (client) process per call, µs.
    pub client_us: f64,
    /// Write syscalls of the server process per call (`syscw`); `NaN` unless
    /// the round [counted them](Meter::writes).
    pub server_writes: f64,
    /// Write syscalls of this (client) process per call; `NaN` unless counted.
    pub client_writes: f64,
}

/// What a round measures besides the call rate.
#[derive(Debug, Clone, Copy)]
pub struct Meter<'a> {
    /// The server process, whose CPU time is measured (and write syscalls).
    pub server_pid: &'a str,
    /// Whether the round counts write syscalls too.
    pub writes: bool,
}

/// Runs `concurrency` loops of back-to-back calls for `length`, loop `i`
/// calling `caller(i)`; the call rate and the CPU time (and write syscalls, if
/// `meter` says so) per call of the server and of this process. The first
/// failed call ends the round with its error.
pub async fn round<C: Caller>(
    meter: Meter<'_>,
    concurrency: usize,
    length: Length,
    mut caller: impl FnMut(usize) -> C,
) -> Result<Round, Error> {
    let server_pid = meter.server_pid;
    let (server_cpu, client_cpu) = (cpu_time(server_pid)?, cpu_time("self")?);
    let syscw = if meter.writes {
        Some((write_syscalls(server_pid)?, write_syscalls("self")?))
    } else {
        None
    };
    let start = Instant::now();
    // Calls left to start, for `Length::Calls` only: a timed round shares no
    // counter between its loops.
    let (deadline, left) = match length {
        Length::For(duration) => (Some(start + duration), None),
        Length::Calls(calls) => (None, Some(Arc::new(AtomicU64::new(calls)))),
    };
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            let mut caller = caller(i);
            let left = left.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                loop {
                    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        break;
                    }
                    if let Some(left) = &left {
                        let took =
                            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                                left.checked_sub(1)
                            });
                        if took.is_err() {
                            break;
                        }
                    }
                    caller.call().await?;
                    done += 1;
                }
                Ok::<u64, Error>(done)
            })
        })
        .collect();
    let mut done = 0;
    for task in tasks {
        done += task.await??;
    }
    let elapsed = start.elapsed();
    let per_call = |cpu: Duration| cpu.as_secs_f64() * 1e6 / done.max(1) as f64;
    let writes_per_call =
        |now: u64, before: u64| now.saturating_sub(before) as f64 / done.max(1) as f64;
    let server_us = per_call(cpu_time(server_pid)?.saturating_sub(server_cpu));
    let client_us = per_call(cpu_time("self")?.saturating_sub(client_cpu));
    let (server_writes, client_writes) = match syscw {
        Some((server, client)) => (
            writes_per_call(write_syscalls(server_pid)?, server),
            writes_per_call(write_syscalls("self")?, client),
        ),
        None => (f64::NAN, f64::NAN),
    };
    Ok(Round {
        rate: done as f64 / elapsed.as_secs_f64(),
        server_us,
        client_us,
        server_writes,
        client_writes,
    })
}
