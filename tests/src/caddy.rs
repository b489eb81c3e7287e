//! A real Caddy as a gRPC reverse proxy, for the proxy tests.
//!
//! [`Caddy::start`] runs the shipped `examples/deploy/Caddyfile` (see
//! [`deploy_config`]) with Caddy listening with cleartext HTTP/2 (h2c) on a free
//! port of `127.0.0.1`, in front of one gRPC upstream, with the given read
//! timeout; [`Caddy::start_with`] runs the Caddyfile a test gives instead. The
//! Caddyfile goes into a fresh temporary directory, which is also Caddy's home
//! (its autosaved config and data stay there); Caddy runs in the foreground
//! (`caddy run`) in its own process group. Dropping the [`Caddy`] stops it and
//! removes the directory.
//!
//! The Caddyfile uses the syntax of Caddy 2.6. Unix only.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::group::{GroupLeader, start_on_free_port};

/// The deployment Caddyfile users copy, which the tests run.
pub const DEPLOY_CONFIG: &str = include_str!("../../examples/deploy/Caddyfile");

/// What Caddy logs once its servers listen.
const READY_LINE: &str = "serving initial configuration";

/// A running Caddy in front of a gRPC upstream; stopped when dropped.
#[derive(Debug)]
pub struct Caddy {
    /// Declared first so that it is dropped (stopped) before the directory goes.
    process: GroupLeader,
    addr: SocketAddr,
    /// The directory with the Caddyfile and the log; Caddy's home.
    dir: TempDir,
}

impl Caddy {
    /// Starts `caddy_bin` on the shipped deployment Caddyfile, listening on a
    /// free port of `127.0.0.1` and passing gRPC to `upstream`, with the
    /// transport's `read_timeout` set to `read_timeout` (millisecond precision,
    /// at least 1 ms), and waits until it accepts TCP connections.
    ///
    /// Blocks for as long as Caddy takes to start (a few hundred milliseconds,
    /// more when a port has to be retried). Fails when Caddy exits before
    /// listening, with its log in the error, or does not listen within 10 s.
    pub fn start(
        caddy_bin: &Path,
        upstream: SocketAddr,
        read_timeout: Duration,
    ) -> io::Result<Caddy> {
        Self::start_with(caddy_bin, |listen| {
            deploy_config(listen, upstream, read_timeout)
        })
    }

    /// Starts `caddy_bin` with the Caddyfile that `caddyfile` writes for the
    /// listen address it is given (a free port of `127.0.0.1`; the Caddyfile must
    /// turn the admin endpoint off, and serve h2c on that address only).
    /// Otherwise like [`start`](Self::start).
    pub fn start_with(
        caddy_bin: &Path,
        caddyfile: impl Fn(SocketAddr) -> String,
    ) -> io::Result<Caddy> {
        let dir = tempfile::Builder::new()
            .prefix("steadfast-caddy-")
            .tempdir()?;
        let prefix = dir.path();
        let (process, addr) = start_on_free_port(
            "caddy",
            |listen| {
                std::fs::write(prefix.join("Caddyfile"), caddyfile(listen))?;
                spawn(caddy_bin, prefix)
            },
            || read_lossy(&prefix.join("caddy.log")).contains(READY_LINE),
            || read_lossy(&prefix.join("caddy.log")),
        )?;
        Ok(Caddy { process, addr, dir })
    }

    /// The address Caddy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Caddy's address as an `http://` URL, for a tonic `Endpoint`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What Caddy has logged so far (JSON lines, errors of proxied calls
    /// included).
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("caddy.log"))
    }

    /// The process id of Caddy, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }
}

/// `examples/deploy/Caddyfile` with its site address replaced by `listen` (the
/// port, and a `bind` to its IP), its `reverse_proxy` upstream by `upstream`,
/// its `read_timeout` by `read_timeout` (in milliseconds, at least 1), and
/// `admin off` added to the global options (no admin endpoint on port 2019).
///
/// # Panics
///
/// Panics when the file has not exactly one global options block, site address,
/// `reverse_proxy` line and `read_timeout` line, so that the file the tests run
/// cannot drift from the file users get.
pub fn deploy_config(listen: SocketAddr, upstream: SocketAddr, read_timeout: Duration) -> String {
    let read_timeout_ms = read_timeout.as_millis().max(1);
    let mut counts = [0; 4];
    let mut out = String::new();
    for line in DEPLOY_CONFIG.lines() {
        let code = line.split('#').next().unwrap_or_default().trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        if code == "{" && indent.is_empty() {
            counts[0] += 1;
            out.push_str("{\n\tadmin off\n");
        } else if code.starts_with("http://") && code.ends_with('{') {
            counts[1] += 1;
            out.push_str(&format!(
                "http://:{} {{\n\tbind {}\n",
                listen.port(),
                listen.ip()
            ));
        } else if code.starts_with("reverse_proxy ") && code.ends_with('{') {
            counts[2] += 1;
            out.push_str(&format!("{indent}reverse_proxy h2c://{upstream} {{\n"));
        } else if code.starts_with("read_timeout ") {
            counts[3] += 1;
            out.push_str(&format!("{indent}read_timeout {read_timeout_ms}ms\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_eq!(
        counts, [1; 4],
        "examples/deploy/Caddyfile must have one global options block, one \
         http:// site, one `reverse_proxy` and one `read_timeout` (found {counts:?})"
    );
    out
}

/// Runs `caddy run` on the Caddyfile in `prefix`, in a process group of its own,
/// with `prefix` as its home and its stderr (the log) in `caddy.log`.
fn spawn(caddy_bin: &Path, prefix: &Path) -> io::Result<GroupLeader> {
    // A stale log from an earlier attempt would fake readiness.
    match std::fs::remove_file(prefix.join("caddy.log")) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let log = File::create(prefix.join("caddy.log"))?;
    GroupLeader::spawn(
        Command::new(caddy_bin)
            .arg("run")
            .arg("--config")
            .arg(prefix.join("Caddyfile"))
            .args(["--adapter", "caddyfile"])
            // Caddy keeps an autosaved config and its data under these.
            .env("HOME", prefix)
            .env("XDG_CONFIG_HOME", prefix.join("config"))
            .env("XDG_DATA_HOME", prefix.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log),
    )
    .map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("running {}: {err}", caddy_bin.display()),
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
    fn the_deploy_caddyfile_gets_the_test_addresses_and_timeout() {
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 8443));
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 50061));
        let config = deploy_config(listen, upstream, Duration::from_millis(1500));
        assert!(config.starts_with("# "), "{config}");
        assert!(config.contains("{\n\tadmin off\n"), "{config}");
        assert!(
            config.contains("http://:8443 {\n\tbind 127.0.0.1\n"),
            "{config}"
        );
        assert!(
            config.contains("\treverse_proxy h2c://127.0.0.1:50061 {\n"),
            "{config}"
        );
        assert!(config.contains("\t\t\tread_timeout 1500ms\n"), "{config}");
        assert!(config.contains("flush_interval -1"), "{config}");
        assert!(!config.contains("50051"), "{config}");
    }

    #[test]
    fn caddy_listens_and_leaves_nothing_behind_when_dropped() {
        let Some(caddy_bin) = tools::require("caddy") else {
            return;
        };
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        let caddy =
            Caddy::start(&caddy_bin, upstream, Duration::from_secs(1)).expect("starting caddy");
        let addr = caddy.addr();
        let pid = caddy.pid();
        assert_eq!(caddy.url(), format!("http://127.0.0.1:{}", addr.port()));
        TcpStream::connect(addr).expect("caddy accepts connections");
        assert!(caddy.log().contains(READY_LINE), "{}", caddy.log());

        drop(caddy);
        assert!(
            TcpStream::connect(addr).is_err(),
            "something still listens on {addr}"
        );
        assert_eq!(live_group_members(pid), Vec::<u32>::new());
    }

    #[test]
    fn a_caddyfile_caddy_refuses_fails_the_start_with_its_error() {
        let Some(caddy_bin) = tools::require("caddy") else {
            return;
        };
        let err = Caddy::start_with(&caddy_bin, |listen| {
            format!(
                "{{\n\tadmin off\n}}\nhttp://:{} {{\n\tno_such_directive\n}}\n",
                listen.port()
            )
        })
        .expect_err("caddy refuses the Caddyfile");
        let message = err.to_string();
        assert!(message.contains("caddy exited"), "{message}");
        assert!(message.contains("no_such_directive"), "{message}");
    }
}
