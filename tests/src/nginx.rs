//! A real nginx as a gRPC reverse proxy, for the proxy tests.
//!
//! [`Nginx::start`] writes a config into a fresh temporary directory and runs
//! `nginx -g "daemon off;"` on it in its own process group, listening with
//! cleartext HTTP/2 on `127.0.0.1` and passing everything to one gRPC upstream with
//! the given `grpc_read_timeout`; [`Nginx::start_with`] runs the `http { }`
//! contents a test gives instead (a deployment config under test). Dropping the
//! [`Nginx`] stops the master and its worker and removes the directory.
//!
//! The config uses the syntax of nginx 1.22 (`listen ... http2;`). Unix only.

use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::live_group_members;
use crate::wait::{POLL_INTERVAL, free_port};

/// How long nginx may take to accept connections after it was started.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How many ports are tried when the chosen one was taken in the meantime.
const START_ATTEMPTS: usize = 3;
/// How long nginx may take to shut down on `SIGTERM` before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// A running nginx in front of gRPC upstreams; stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    /// Declared first so that it is dropped (stopped) before the directory goes.
    master: Master,
    addr: SocketAddr,
    /// The prefix directory with the config, logs and pid file.
    dir: TempDir,
}

impl Nginx {
    /// Starts `nginx_bin` on a free port of `127.0.0.1`, passing gRPC to `upstream`
    /// with `grpc_read_timeout` set to `read_timeout` (millisecond precision, at
    /// least 1 ms), and waits until it accepts TCP connections.
    ///
    /// Blocks for as long as nginx takes to start (a few tens of milliseconds, up to
    /// a few seconds when a port has to be retried). Fails when nginx exits before
    /// listening, with its logs in the error, or does not listen within 10 s.
    pub fn start(
        nginx_bin: &Path,
        upstream: SocketAddr,
        read_timeout: Duration,
    ) -> io::Result<Nginx> {
        Self::start_with(nginx_bin, |listen| {
            proxy_server(listen, upstream, read_timeout)
        })
    }

    /// Starts `nginx_bin` with the `http { }` contents that `http` writes for the
    /// listen address it is given (a free port of `127.0.0.1`; the contents must
    /// have one `server` listening there with `http2`), and waits until it
    /// accepts TCP connections. Around them: the process settings, the logs and
    /// the temporary paths, all in a fresh prefix directory.
    ///
    /// For a deployment config under test (maps, upstream groups, several
    /// locations); otherwise like [`start`](Self::start).
    pub fn start_with(nginx_bin: &Path, http: impl Fn(SocketAddr) -> String) -> io::Result<Nginx> {
        let mut dir = tempfile::Builder::new()
            .prefix("steadfast-nginx-")
            .tempdir()?;
        let run_as_root = is_root();
        let mut attempt = 1;
        loop {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            std::fs::write(
                dir.path().join("nginx.conf"),
                wrap(dir.path(), &http(addr), run_as_root),
            )?;
            let master = Master(spawn(nginx_bin, dir.path())?);
            let mut nginx = Nginx { master, addr, dir };
            match nginx.wait_until_listening() {
                Ok(()) => return Ok(nginx),
                Err(err) if err.kind() == io::ErrorKind::AddrInUse && attempt < START_ATTEMPTS => {
                    // Someone took the port between `free_port` and nginx's bind.
                    attempt += 1;
                    let Nginx {
                        master, dir: kept, ..
                    } = nginx;
                    drop(master);
                    dir = kept;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The address nginx listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// nginx's address as an `http://` URL, for a tonic `Endpoint`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The contents of nginx's error log so far (level `info` and up).
    pub fn error_log(&self) -> String {
        read_lossy(&self.dir.path().join("error.log"))
    }

    /// The process id of the nginx master, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.master.0.id()
    }

    /// The prefix directory holding the config, logs and pid file.
    pub fn prefix(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until nginx accepts connections, failing early when it exits.
    fn wait_until_listening(&mut self) -> io::Result<()> {
        let pid_file = self.dir.path().join("nginx.pid");
        let give_up = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.master.0.try_wait()? {
                let logs = self.logs();
                let kind = if logs.contains("Address already in use") {
                    io::ErrorKind::AddrInUse
                } else {
                    io::ErrorKind::Other
                };
                return Err(io::Error::new(
                    kind,
                    format!(
                        "nginx exited ({status}) before listening on {}:\n{logs}",
                        self.addr
                    ),
                ));
            }
            // nginx writes its pid file only after it has bound its listening socket,
            // so a connection accepted from then on is nginx's, not a squatter's.
            if pid_file.exists()
                && TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= give_up {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "nginx did not listen on {} within {START_DEADLINE:?}:\n{}",
                        self.addr,
                        self.logs()
                    ),
                ));
            }
            sleep(POLL_INTERVAL);
        }
    }

    /// The error log and anything nginx printed on stderr, for error messages.
    fn logs(&self) -> String {
        let mut logs = String::new();
        for name in ["error.log", "stderr.log"] {
            let text = read_lossy(&self.dir.path().join(name));
            if !text.trim().is_empty() {
                let _ = write!(logs, "--- {name} ---\n{text}");
            }
        }
        logs
    }
}

/// The nginx master process; it leads its own process group, which holds the worker.
/// Dropping it stops the whole group.
#[derive(Debug)]
struct Master(Child);

impl Drop for Master {
    /// Stops the master and every process of its group, and reaps the master.
    ///
    /// `SIGTERM` to the master is nginx's fast shutdown: it stops the worker, reaps
    /// it and exits. A master that is already gone (killed with `SIGKILL`, say)
    /// leaves its worker running, so survivors of the group are killed afterwards.
    fn drop(&mut self) {
        let master = &mut self.0;
        let pid = master.id();
        if matches!(master.try_wait(), Ok(None)) {
            signal("-TERM", &pid.to_string());
            let give_up = Instant::now() + STOP_DEADLINE;
            while matches!(master.try_wait(), Ok(None)) && Instant::now() < give_up {
                sleep(POLL_INTERVAL);
            }
            if matches!(master.try_wait(), Ok(None)) {
                eprintln!("nginx {pid} ignored SIGTERM for {STOP_DEADLINE:?}; killing it");
                let _ = master.kill();
            }
        }
        let _ = master.wait();

        // The group id stays reserved while any member lives, so it cannot have been
        // reused for an unrelated group here.
        if !live_group_members(pid).is_empty() {
            signal("-KILL", &format!("-{pid}"));
            let give_up = Instant::now() + STOP_DEADLINE;
            while !live_group_members(pid).is_empty() && Instant::now() < give_up {
                sleep(POLL_INTERVAL);
            }
            let survivors = live_group_members(pid);
            if !survivors.is_empty() {
                eprintln!("nginx processes {survivors:?} survived SIGKILL");
            }
        }
    }
}

/// Runs nginx on the config in `prefix`, in a process group of its own.
fn spawn(nginx_bin: &Path, prefix: &Path) -> io::Result<Child> {
    // A stale pid file from an earlier attempt would fake readiness, and its stale
    // log would make any failure look like a taken port.
    for stale in ["nginx.pid", "error.log"] {
        match std::fs::remove_file(prefix.join(stale)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    let stderr = File::create(prefix.join("stderr.log"))?;
    Command::new(nginx_bin)
        .arg("-p")
        .arg(prefix)
        // The log used before the config is read; the default may not be writable.
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("running {}: {err}", nginx_bin.display()),
            )
        })
}

/// A whole nginx config around `http`, the contents of its `http { }` block: one
/// worker, the pid file, the logs and the temporary paths in `prefix`.
fn wrap(prefix: &Path, http: &str, run_as_root: bool) -> String {
    let prefix = prefix.display();
    let user = if run_as_root { "user root;\n" } else { "" };
    format!(
        "\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;

events {{}}

http {{
    access_log off;
    client_body_temp_path {prefix}/client_body_temp;
    proxy_temp_path {prefix}/proxy_temp;
    fastcgi_temp_path {prefix}/fastcgi_temp;
    uwsgi_temp_path {prefix}/uwsgi_temp;
    scgi_temp_path {prefix}/scgi_temp;

{http}
}}
"
    )
}

/// One HTTP/2 cleartext server passing everything to `upstream`.
fn proxy_server(listen: SocketAddr, upstream: SocketAddr, read_timeout: Duration) -> String {
    let read_timeout_ms = read_timeout.as_millis().max(1);
    format!(
        "\
    server {{
        listen {listen} http2;
        # Long client streams must not hit the 1 MB default body limit.
        client_max_body_size 0;

        location / {{
            grpc_pass grpc://{upstream};
            grpc_read_timeout {read_timeout_ms}ms;
            grpc_send_timeout 60s;
        }}
    }}"
    )
}

/// Whether this process runs as root; nginx then needs `user root;` to keep its
/// worker able to read the temporary directory.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Sends a signal with the `kill` command (`unsafe_code` rules out `libc::kill`).
/// `target` is a pid, or a negated process group id.
fn signal(signal: &str, target: &str) {
    let sent = Command::new("kill")
        .args([signal, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(err) = sent {
        eprintln!("could not run `kill {signal} -- {target}`: {err}");
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools;

    const ANY_UPSTREAM: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 1);

    /// Processes whose command line mentions `needle` (the master's names the prefix).
    fn processes_mentioning(needle: &str) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .expect("reading /proc")
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
            })
            .collect()
    }

    #[test]
    fn the_config_has_the_1_22_listen_syntax_and_the_timeouts() {
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 50051));
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 8443));
        let conf = wrap(
            Path::new("/tmp/x"),
            &proxy_server(listen, upstream, Duration::from_millis(1500)),
            true,
        );
        assert!(conf.starts_with("user root;\n"), "{conf}");
        assert!(conf.contains("listen 127.0.0.1:8443 http2;"), "{conf}");
        assert!(conf.contains("grpc_pass grpc://127.0.0.1:50051;"), "{conf}");
        assert!(conf.contains("grpc_read_timeout 1500ms;"), "{conf}");
        assert!(conf.contains("pid /tmp/x/nginx.pid;"), "{conf}");

        let not_root = wrap(
            Path::new("/tmp/x"),
            &proxy_server(listen, upstream, Duration::ZERO),
            false,
        );
        assert!(!not_root.contains("user "), "{not_root}");
        assert!(not_root.contains("grpc_read_timeout 1ms;"), "{not_root}");
    }

    #[test]
    fn nginx_listens_and_leaves_nothing_behind_when_dropped() {
        let Some(nginx_bin) = tools::require("nginx") else {
            return;
        };
        let nginx =
            Nginx::start(&nginx_bin, ANY_UPSTREAM, Duration::from_secs(1)).expect("starting nginx");
        let addr = nginx.addr();
        let pid = nginx.pid();
        let prefix = nginx.prefix().to_owned();
        assert_eq!(nginx.url(), format!("http://127.0.0.1:{}", addr.port()));
        TcpStream::connect(addr).expect("nginx accepts connections");
        assert!(
            nginx.error_log().contains("start worker process"),
            "{}",
            nginx.error_log()
        );
        let members = live_group_members(pid);
        assert!(
            members.len() >= 2,
            "expected a master and a worker, found {members:?}"
        );

        drop(nginx);
        let refused = TcpStream::connect(addr);
        assert!(refused.is_err(), "something still listens on {addr}");
        assert_eq!(
            live_group_members(pid),
            Vec::<u32>::new(),
            "nginx processes survived"
        );
        assert_eq!(
            processes_mentioning(&prefix.display().to_string()),
            Vec::<u32>::new()
        );
        assert!(!prefix.exists(), "the prefix directory was not removed");
    }

    #[test]
    fn a_worker_orphaned_by_a_killed_master_is_stopped_too() {
        let Some(nginx_bin) = tools::require("nginx") else {
            return;
        };
        let nginx =
            Nginx::start(&nginx_bin, ANY_UPSTREAM, Duration::from_secs(1)).expect("starting nginx");
        let pid = nginx.pid();
        let addr = nginx.addr();
        // nginx's master does not take its worker down when it is killed outright.
        signal("-KILL", &pid.to_string());
        let give_up = Instant::now() + Duration::from_secs(10);
        while live_group_members(pid).contains(&pid) && Instant::now() < give_up {
            sleep(POLL_INTERVAL);
        }
        assert!(
            !live_group_members(pid).is_empty(),
            "the worker was expected to outlive its master"
        );

        drop(nginx);
        assert_eq!(
            live_group_members(pid),
            Vec::<u32>::new(),
            "the orphaned worker survived"
        );
        assert!(
            TcpStream::connect(addr).is_err(),
            "something still listens on {addr}"
        );
    }

    #[test]
    fn a_missing_binary_is_an_error_not_a_hang() {
        let err = Nginx::start(
            Path::new("/nonexistent/nginx"),
            ANY_UPSTREAM,
            Duration::from_secs(1),
        )
        .expect_err("there is no such nginx");
        assert!(err.to_string().contains("/nonexistent/nginx"), "{err}");
    }
}
