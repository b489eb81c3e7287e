//! What the benchmark binaries share: a server child process and the sibling binary it
//! runs, a process's CPU time and memory as Linux's `/proc` shows them, and
//! medians.

use std::{
    io::{self, BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    time::Duration,
};

use tonic::transport::{Channel, Endpoint};

use crate::load::Round;

/// A server child process that announces itself on its first line of stdout
/// (`NAME ... listening on ADDR`); killed (and reaped) on drop, panics included.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    // Kept open so that the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts `command` (its stdout piped, stderr inherited, stdin closed) and
    /// waits for its first line, which must start with `name` and end with
    /// ` listening on ADDR`.
    pub fn spawn(mut command: Command, name: &str) -> io::Result<ServerProcess> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!("{name} has no stdout")));
        };
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            _stdout: BufReader::new(stdout),
        };
        // From here on, an early return kills the child through `Drop`.
        let mut line = String::new();
        server._stdout.read_line(&mut line)?;
        let line = line.trim();
        server.addr = line
            .strip_prefix(name)
            .and_then(|rest| rest.rsplit_once(" listening on "))
            .and_then(|(_, addr)| addr.parse().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected first line from {name}: {line:?}"),
                )
            })?;
        Ok(server)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address it announced.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connects `n` channels, each its own TCP connection.
    pub async fn channels(&self, n: usize) -> Result<Vec<Channel>, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(self.url())?;
        let mut channels = Vec::with_capacity(n);
        for _ in 0..n {
            channels.push(endpoint.connect().await?);
        }
        Ok(channels)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary `name` (a server of steadfast-examples) next to this executable
/// (so built in the same profile), or `path` when given; an error saying how to build it when it
/// does not exist.
pub fn sibling_binary(path: Option<&Path>, name: &str) -> io::Result<PathBuf> {
    let bin = match path {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()?.with_file_name(name),
    };
    if !bin.exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} not found: build it first (cargo build --release -p steadfast-examples --bin {name})",
                bin.display()
            ),
        ));
    }
    Ok(bin)
}

/// CPU time (on-CPU, the threads alive now) of a process so far, from
/// `/proc/PID/task/*/schedstat` (nanosecond resolution). `pid` may be `"self"`.
/// Threads that already exited are not counted: see [`process_cpu_time`].
pub fn cpu_time(pid: &str) -> io::Result<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread may exit between listing and reading.
        let Ok(stat) = std::fs::read_to_string(task?.path().join("schedstat")) else {
            continue;
        };
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(Duration::from_nanos(total))
}

/// User plus system CPU time of a process so far, threads that exited
/// included, from `/proc/PID/stat` (`utime` + `stime`, in clock ticks of
/// 10 ms: `USER_HZ` is 100 on Linux). `pid` may be `"self"`.
pub fn process_cpu_time(pid: &str) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields 14 and 15 of the whole line; the first after ')' is field 3.
    let ticks = |index: usize| fields.get(index - 3).and_then(|t| t.parse::<u64>().ok());
    match (ticks(14), ticks(15)) {
        (Some(user), Some(system)) => Ok(Duration::from_millis((user + system) * 10)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no utime/stime in /proc/{pid}/stat"),
        )),
    }
}

/// A `kB` field of a `/proc` file such as `/proc/PID/status` (`VmHWM:`,
/// `VmRSS:`...) or `smaps_rollup` (`Pss:`), in KiB.
pub fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Write syscalls of a process so far (`syscw` in `/proc/PID/io`). `pid` may be
/// `"self"`.
pub fn write_syscalls(pid: &str) -> io::Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    io.lines()
        .find_map(|line| line.strip_prefix("syscw:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no syscw in /proc/PID/io"))
}

/// The peak resident memory of a process so far (`VmHWM`), in KiB. `pid` may
/// be `"self"`.
pub fn peak_rss_kib(pid: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    kib_field(&status, "VmHWM:")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmHWM in /proc/PID/status"))
}

/// The median of `values` (`NaN` for none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The median of `field` over `rounds`.
pub fn median_of<R>(rounds: &[R], field: fn(&R) -> f64) -> f64 {
    median(&rounds.iter().map(field).collect::<Vec<_>>())
}

/// The median of the per-round ratios of `field`, `a` over `b` (the rounds of
/// two contenders, paired in order): each pair ran in the same round, so drift
/// between rounds cancels out.
pub fn paired_median<R>(a: &[R], b: &[R], field: fn(&R) -> f64) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| field(a) / field(b)).collect();
    median(&ratios)
}

/// The smallest and the largest of `values`.
pub fn spread(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// A goal's verdict in a summary: `met` or `MISSED`.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// A goal's verdict in a markdown table: `yes` or `no`.
pub fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_a_peak_rss() {
        // Spin until the process has had 30 ms of CPU by either count (on a
        // loaded machine wall time says nothing about CPU time), for at most 10 s.
        let spin = std::time::Instant::now();
        let enough = Duration::from_millis(30);
        while spin.elapsed() < Duration::from_secs(10)
            && (process_cpu_time("self").expect("stat") < enough
                || cpu_time("self").expect("schedstat") < enough)
        {
            for _ in 0..10_000 {
                std::hint::black_box(0);
            }
        }
        assert!(process_cpu_time("self").expect("stat") >= enough);
        assert!(cpu_time("self").expect("schedstat") >= enough);
        assert!(peak_rss_kib("self").expect("status") > 0);
    }

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(spread([2.0, 5.0, 1.0].into_iter()), (1.0, 5.0));
    }
}

/// The table of one level of calls in flight, titled `title`: a row per
/// contender (calls/s: the median and the spread; client and server CPU per
/// call: the medians), then a row per ratio of two contenders' rounds, paired
/// in order (calls/s: of the medians, and the median of per-round ratios; CPU
/// per call: the median of per-round ratios, and of per-round differences in µs).
pub fn calls_table(
    title: String,
    contenders: &[(&str, &[Round])],
    ratios: &[(&str, &[Round], &[Round])],
) -> Table {
    let header = vec![
        title,
        "calls/s (min–max)".to_owned(),
        "client CPU/call".to_owned(),
        "server CPU/call".to_owned(),
    ];
    let mut rows = Vec::new();
    for &(label, rounds) in contenders {
        let (lo, hi) = spread(rounds.iter().map(|r| r.rate));
        rows.push(vec![
            label.to_owned(),
            format!("{:.0} ({lo:.0}–{hi:.0})", median_of(rounds, |r| r.rate)),
            format!("{:.1} µs", median_of(rounds, |r| r.client_us)),
            format!("{:.1} µs", median_of(rounds, |r| r.server_us)),
        ]);
    }
    for &(label, a, b) in ratios {
        let rate = median_of(a, |r| r.rate) / median_of(b, |r| r.rate);
        let cpu = |field: fn(&Round) -> f64| {
            let extra: Vec<f64> = a.iter().zip(b).map(|(a, b)| field(a) - field(b)).collect();
            format!(
                "{:.1} % ({:+.1} µs)",
                paired_median(a, b, field) * 100.0,
                median(&extra)
            )
        };
        rows.push(vec![
            label.to_owned(),
            format!(
                "{:.1} % (per-round median {:.1} %)",
                rate * 100.0,
                paired_median(a, b, |r| r.rate) * 100.0
            ),
            cpu(|r| r.client_us),
            cpu(|r| r.server_us),
        ]);
    }
    Table { header, rows }
}

/// Prints a run's summary: the goals' verdict lines, each table aligned, then
/// each table again as markdown (for BENCHMARKS.md).
pub fn print_summary(verdicts: &[String], tables: &[Table]) {
    println!("\n=== summary ===");
    for line in verdicts {
        println!("{line}");
    }
    for table in tables {
        println!("{}", table.text());
    }
    println!("--- markdown ---");
    for table in tables {
        println!("{}", table.markdown());
    }
}

/// A table with a title row, printed aligned (a run's summary) or as markdown
/// (for BENCHMARKS.md).
#[derive(Debug)]
pub struct Table {
    /// The title, then the column names.
    pub header: Vec<String>,
    /// A row per contender or ratio, as many cells as `header`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The title on a line of its own, then the columns aligned.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut header = self.header.clone();
        let mut out = format!("{}:\n", std::mem::take(&mut header[0]));
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                std::iter::once(&header)
                    .chain(&self.rows)
                    .map(|row| row[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                let _ = match i {
                    0 => write!(out, "  {cell:<width$}"),
                    _ => write!(out, "   {cell:>width$}"),
                };
            }
            out.push('\n');
        }
        out
    }

    /// A markdown table, the title in the first header cell.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.header);
        let _ = writeln!(out, "|---{}|", "|---:".repeat(self.header.len() - 1));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}
