//! A real HAProxy as a gRPC reverse proxy, for the proxy tests.
//!
//! [`Haproxy::start`] runs the shipped `examples/deploy/haproxy.cfg` (see
//! [`deploy_config`]) with HAProxy listening with cleartext HTTP/2 on a free port
//! of `127.0.0.1`, in front of one gRPC upstream, with the given idle timeout;
//! [`Haproxy::start_with`] runs the sections a test gives instead. The config
//! goes into a fresh temporary directory, beside a `global` section of the
//! test's (logs on stderr); HAProxy runs in the foreground in master-worker mode
//! (`-W -db`), master and worker in a process group of their own. Dropping the [`Haproxy`] stops it and removes the
//! directory.
//!
//! The config uses the syntax of HAProxy 2.6 (named `defaults`). Unix only.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::group::{GroupLeader, start_on_free_port};

/// What the HAProxy master logs once its worker runs on the bound listeners.
const READY_LINE: &str = "Loading success.";

/// The deployment config users copy, which the tests run.
pub const DEPLOY_CONFIG: &str = include_str!("../../examples/deploy/haproxy.cfg");

/// A running HAProxy in front of a gRPC upstream; stopped when dropped.
#[derive(Debug)]
pub struct Haproxy {
    /// Declared first so that it is dropped (stopped) before the directory goes.
    process: GroupLeader,
    addr: SocketAddr,
    /// The directory with the config and the log.
    dir: TempDir,
}

impl Haproxy {
    /// Starts `haproxy_bin` on the shipped deployment config, listening on a free
    /// port of `127.0.0.1` and passing gRPC to `upstream`, with `timeout server`
    /// and `timeout client` set to `idle_timeout` (millisecond precision, at
    /// least 1 ms), and waits until it accepts TCP connections.
    ///
    /// Blocks for as long as HAProxy takes to start (a few tens of milliseconds,
    /// more when a port has to be retried). Fails when HAProxy exits before
    /// listening, with its log in the error, or does not listen within 10 s.
    pub fn start(
        haproxy_bin: &Path,
        upstream: SocketAddr,
        idle_timeout: Duration,
    ) -> io::Result<Haproxy> {
        Self::start_with(haproxy_bin, |listen| {
            deploy_config(listen, upstream, idle_timeout)
        })
    }

    /// Starts `haproxy_bin` with the sections that `config` writes for the listen
    /// address it is given (a free port of `127.0.0.1`; the sections must have one
    /// frontend bound there with `proto h2`), after a `global` section that logs
    /// to stderr. Otherwise like [`start`](Self::start).
    pub fn start_with(
        haproxy_bin: &Path,
        config: impl Fn(SocketAddr) -> String,
    ) -> io::Result<Haproxy> {
        let dir = tempfile::Builder::new()
            .prefix("steadfast-haproxy-")
            .tempdir()?;
        let prefix = dir.path();
        std::fs::write(prefix.join("global.cfg"), GLOBAL)?;
        let (process, addr) = start_on_free_port(
            "haproxy",
            |listen| {
                std::fs::write(prefix.join("grpc.cfg"), config(listen))?;
                spawn(haproxy_bin, prefix)
            },
            || read_lossy(&prefix.join("haproxy.log")).contains(READY_LINE),
            || read_lossy(&prefix.join("haproxy.log")),
        )?;
        Ok(Haproxy { process, addr, dir })
    }

    /// The address HAProxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// HAProxy's address as an `http://` URL, for a tonic `Endpoint`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What HAProxy has logged so far: its notices and alerts, and one line per
    /// call (`option httplog`: status, timings, termination state).
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("haproxy.log"))
    }

    /// The process id of the HAProxy master, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }
}

/// The test's `global` section: logs, in HAProxy's own format, to stderr (which
/// goes to `haproxy.log`).
const GLOBAL: &str = "\
global
    log stderr format raw local0 info
";

/// `examples/deploy/haproxy.cfg` with its `bind` address replaced by `listen`,
/// its one `server` line pointing at `upstream`, and `timeout server` and
/// `timeout client` set to `idle_timeout` (in milliseconds, at least 1).
///
/// # Panics
///
/// Panics when the file has not exactly one of each of these lines, so that the
/// file the tests run cannot drift from the file users get.
pub fn deploy_config(listen: SocketAddr, upstream: SocketAddr, idle_timeout: Duration) -> String {
    let idle_ms = idle_timeout.as_millis().max(1);
    let mut counts = [0; 4];
    let mut out = String::new();
    for line in DEPLOY_CONFIG.lines() {
        let code = line.split('#').next().unwrap_or_default().trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        let replaced = if code.starts_with("bind ") {
            counts[0] += 1;
            Some(format!("bind {listen} proto h2"))
        } else if let Some(rest) = code.strip_prefix("server ") {
            counts[1] += 1;
            let name = rest.split_whitespace().next().unwrap_or("grpc1");
            Some(format!("server {name} {upstream} proto h2"))
        } else if code.starts_with("timeout server ") {
            counts[2] += 1;
            Some(format!("timeout server {idle_ms}ms"))
        } else if code.starts_with("timeout client ") {
            counts[3] += 1;
            Some(format!("timeout client {idle_ms}ms"))
        } else {
            None
        };
        match replaced {
            Some(code) => out.push_str(&format!("{indent}{code}\n")),
            None => out.push_str(&format!("{line}\n")),
        }
    }
    assert_eq!(
        counts, [1; 4],
        "examples/deploy/haproxy.cfg must have one `bind`, one `server`, one \
         `timeout server` and one `timeout client` line (found {counts:?})"
    );
    out
}

/// Runs HAProxy in the foreground on the config in `prefix`, master and worker in
/// a process group of their own, their stderr (the log) in `haproxy.log`.
fn spawn(haproxy_bin: &Path, prefix: &Path) -> io::Result<GroupLeader> {
    // The log of an earlier attempt is truncated: it would fake readiness, or
    // make any failure look like a taken port.
    let log = File::create(prefix.join("haproxy.log"))?;
    GroupLeader::spawn(
        Command::new(haproxy_bin)
            // Master-worker in the foreground: the master binds the listeners,
            // forks the worker, then logs `READY_LINE`; it exits at once when a
            // listener cannot be bound.
            .args(["-W", "-db"])
            .arg("-f")
            .arg(prefix.join("global.cfg"))
            .arg("-f")
            .arg(prefix.join("grpc.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log),
    )
    .map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("running {}: {err}", haproxy_bin.display()),
        )
    })
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::live_group_members;
    use crate::tools;
    use std::net::{Ipv4Addr, TcpStream};

    #[test]
    fn the_deploy_config_gets_the_test_addresses_and_timeouts() {
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 8443));
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 50061));
        let config = deploy_config(listen, upstream, Duration::from_millis(1500));
        assert!(
            config.contains("    bind 127.0.0.1:8443 proto h2\n"),
            "{config}"
        );
        assert!(
            config.contains("    server grpc1 127.0.0.1:50061 proto h2\n"),
            "{config}"
        );
        assert!(config.contains("    timeout server 1500ms\n"), "{config}");
        assert!(config.contains("    timeout client 1500ms\n"), "{config}");
        assert!(!config.contains("50051"), "{config}");
        assert!(config.contains("    mode http\n"), "{config}");
    }

    #[test]
    fn haproxy_listens_and_leaves_nothing_behind_when_dropped() {
        let Some(haproxy_bin) = tools::require("haproxy") else {
            return;
        };
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        let haproxy = Haproxy::start(&haproxy_bin, upstream, Duration::from_secs(1))
            .expect("starting haproxy");
        let addr = haproxy.addr();
        let pid = haproxy.pid();
        assert_eq!(haproxy.url(), format!("http://127.0.0.1:{}", addr.port()));
        TcpStream::connect(addr).expect("haproxy accepts connections");
        assert!(haproxy.log().contains(READY_LINE), "{}", haproxy.log());
        let members = live_group_members(pid);
        assert!(
            members.len() >= 2,
            "expected a master and a worker, found {members:?}"
        );

        drop(haproxy);
        assert!(
            TcpStream::connect(addr).is_err(),
            "something still listens on {addr}"
        );
        assert_eq!(live_group_members(pid), Vec::<u32>::new());
    }

    #[test]
    fn a_config_haproxy_refuses_fails_the_start_with_its_alert() {
        let Some(haproxy_bin) = tools::require("haproxy") else {
            return;
        };
        let err = Haproxy::start_with(&haproxy_bin, |listen| {
            format!("frontend f\n    bind {listen} proto h2\n    no-such-keyword\n")
        })
        .expect_err("haproxy refuses the config");
        let message = err.to_string();
        assert!(message.contains("haproxy exited"), "{message}");
        assert!(message.contains("no-such-keyword"), "{message}");
    }
}
