//! Child processes owned by a test.
//!
//! A [`ChildGuard`] kills and reaps its process when dropped, so a failing assertion
//! never leaves a server running. [`wait_for_port`] waits, with a deadline, until a
//! freshly started server accepts TCP connections; [`spawn_server`] starts a
//! server that announces its address on stdout and reads it.

use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::wait::POLL_INTERVAL;

/// A child process that is killed (`SIGKILL`) and waited for when dropped.
///
/// The process is the only thing killed: a child that starts processes of its own
/// must stop them itself, or be handled like [`crate::nginx::Nginx`] does.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Spawns `command` and guards the new process.
    pub fn spawn(command: &mut Command) -> io::Result<ChildGuard> {
        command.spawn().map(ChildGuard)
    }

    /// The OS process id of the child.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Like [`wait_for_port`], but fails at once, with the exit status, when the
    /// child exits before anything accepts connections on `addr`.
    pub fn wait_for_port(&mut self, addr: SocketAddr, deadline: Duration) -> io::Result<()> {
        poll_port(addr, deadline, || match self.0.try_wait()? {
            Some(status) => Err(io::Error::other(format!(
                "process {} exited ({status}) before accepting connections on {addr}",
                self.0.id()
            ))),
            None => Ok(()),
        })
    }
}

impl ChildGuard {
    /// Sends `SIGTERM` (with `kill`, so Unix only) and waits, polling, until the
    /// process exits; its exit status, or [`io::ErrorKind::TimedOut`] when it is
    /// still running after `deadline` (the guard then kills it when dropped).
    pub fn terminate(&mut self, deadline: Duration) -> io::Result<ExitStatus> {
        let kill = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()?;
        if !kill.status.success() {
            return Err(io::Error::other(format!(
                "kill -TERM {}: {}",
                self.id(),
                String::from_utf8_lossy(&kill.stderr).trim()
            )));
        }
        let give_up = Instant::now() + deadline;
        loop {
            if let Some(status) = self.0.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= give_up {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "process {} still running {deadline:?} after SIGTERM",
                        self.id()
                    ),
                ));
            }
            sleep(POLL_INTERVAL);
        }
    }
}

impl From<Child> for ChildGuard {
    fn from(child: Child) -> ChildGuard {
        ChildGuard(child)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Fails only when the process has already exited; it is reaped below either way.
        let _ = self.0.kill();
        if let Err(err) = self.0.wait() {
            eprintln!("could not reap child process {}: {err}", self.0.id());
        }
    }
}

/// Spawns a server that announces itself with a first line on stdout of the form
/// `<announcement> listening on <ADDR>` (like the example servers, started on port
/// 0), and returns it with the address it listens on.
///
/// The server's stdout is piped to a thread that reads the announcement and then
/// drains the rest until the server exits, so later output never blocks or breaks
/// it. Fails, with the server killed, when it exits or announces nothing within
/// `deadline`, or announces something else.
pub fn spawn_server(
    command: &mut Command,
    announcement: &str,
    deadline: Duration,
) -> io::Result<(ChildGuard, SocketAddr)> {
    let mut child = ChildGuard::spawn(command.stdout(Stdio::piped()))?;
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("the server's stdout is not piped"))?;
    let (line_sender, line) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut first = String::new();
        let read = stdout.read_line(&mut first).map(|_| first);
        let _ = line_sender.send(read);
        let _ = io::copy(&mut stdout, &mut io::sink());
    });
    let program = command.get_program().to_string_lossy().into_owned();
    let line = match line.recv_timeout(deadline) {
        Ok(read) => read?,
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{program} announced nothing on stdout within {deadline:?}"),
            ));
        }
    };
    let prefix = format!("{announcement} listening on ");
    line.trim_end()
        .strip_prefix(&prefix)
        .and_then(|addr| addr.parse().ok())
        .map(|addr| (child, addr))
        .ok_or_else(|| {
            io::Error::other(format!(
                "{program} announced {line:?}, not \"{prefix}<ADDR>\" (an empty line: it exited)"
            ))
        })
}

/// Starts `program --addr ADDR ARGS...` (one of the example servers, which
/// print `<name> listening on ADDR`) on `addr`, a fixed address so that a test
/// can kill it and start it again there; its stderr is discarded. Panics if it
/// does not announce `addr` within `deadline`.
pub fn server_at(
    program: &str,
    name: &str,
    addr: SocketAddr,
    args: &[&str],
    deadline: Duration,
) -> ChildGuard {
    let (server, announced) = spawn_server(
        Command::new(program)
            .args(["--addr", &addr.to_string()])
            .args(args)
            .stderr(Stdio::null()),
        name,
        deadline,
    )
    .unwrap_or_else(|e| panic!("{name} starts: {e}"));
    assert_eq!(announced, addr, "{name} listens where it was told");
    server
}

/// Blocks until a TCP connection to `addr` succeeds, polling every
/// [`POLL_INTERVAL`], or fails with [`io::ErrorKind::TimedOut`] after `deadline`.
pub fn wait_for_port(addr: SocketAddr, deadline: Duration) -> io::Result<()> {
    poll_port(addr, deadline, || Ok(()))
}

/// Polls `addr` until it accepts a connection; `still_worth_it` is checked before
/// each attempt and can end the wait early with its error.
fn poll_port(
    addr: SocketAddr,
    deadline: Duration,
    mut still_worth_it: impl FnMut() -> io::Result<()>,
) -> io::Result<()> {
    let give_up = Instant::now() + deadline;
    loop {
        still_worth_it()?;
        let remaining = give_up.saturating_duration_since(Instant::now());
        let attempt = remaining.clamp(Duration::from_millis(1), Duration::from_millis(200));
        let last_error = match TcpStream::connect_timeout(&addr, attempt) {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        if Instant::now() >= give_up {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "nothing accepted TCP connections on {addr} within {deadline:?} (last error: {last_error})"
                ),
            ));
        }
        sleep(POLL_INTERVAL);
    }
}

/// The processes in process group `pgid` that are still running (zombies, which
/// hold no sockets and run no code, are left out). Reads `/proc`, so Linux only;
/// elsewhere it returns an empty list.
pub fn live_group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // A process can exit between listing and reading; it is then no member.
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            let Some((_, after_comm)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = after_comm.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|pgrp| pgrp.parse::<u32>().ok());
            pgrp == Some(pgid) && state != Some("Z") && state != Some("X")
        })
        .collect()
}

/// Runs `python script ARGS…` to its end (killed after 60 s) and returns its
/// stdout.
///
/// # Panics
///
/// Panics when it cannot start, runs over 60 s or exits unsuccessfully, with
/// its output.
pub async fn run_python_script(
    python: &std::path::Path,
    script: &std::path::Path,
    args: &[String],
) -> String {
    let child = tokio::process::Command::new(python)
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting python");
    // On a timeout the child is dropped, and killed (`kill_on_drop`).
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the python client finishes within 60 s")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};
    use std::process::Stdio;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]).stdin(Stdio::null());
        command
    }

    #[test]
    fn spawn_server_reads_the_announced_address_and_keeps_draining_stdout() {
        let (mut server, addr) = spawn_server(
            &mut sh(
                "echo 'srv a listening on 127.0.0.1:4321'; yes | head -c 1000000; exec sleep 600",
            ),
            "srv a",
            Duration::from_secs(10),
        )
        .expect("announced");
        assert_eq!(addr, SocketAddr::from((Ipv4Addr::LOCALHOST, 4321)));
        // 1 MB after the announcement does not block the server on a full pipe:
        // it reaches its `sleep` and is still running.
        assert_eq!(server.0.try_wait().expect("try_wait"), None);
    }

    #[test]
    fn spawn_server_fails_on_a_server_that_exits_or_says_something_else() {
        let err = spawn_server(&mut sh("exit 3"), "srv", Duration::from_secs(10))
            .expect_err("nothing announced");
        assert!(err.to_string().contains("an empty line"), "{err}");
        let err = spawn_server(
            &mut sh("echo 'other listening on 127.0.0.1:1'; exec sleep 600"),
            "srv",
            Duration::from_secs(10),
        )
        .expect_err("another name");
        assert!(err.to_string().contains("other listening"), "{err}");
    }

    #[test]
    fn spawn_server_gives_up_on_a_silent_server_at_the_deadline() {
        let started = Instant::now();
        let err = spawn_server(&mut sh("exec sleep 600"), "srv", Duration::from_millis(300))
            .expect_err("silent");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    fn sleeper() -> ChildGuard {
        ChildGuard::spawn(
            Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        )
        .expect("spawning `sleep 600`")
    }

    #[test]
    fn dropping_the_guard_kills_the_process() {
        let guard = sleeper();
        let pid = guard.id();
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        drop(guard);
        // Reaped by the guard, so the pid no longer exists (not even as a zombie).
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn terminate_stops_a_process_that_honours_sigterm() {
        let mut guard = sleeper();
        let status = guard
            .terminate(Duration::from_secs(10))
            .expect("`sleep` stops on SIGTERM");
        assert!(!status.success(), "killed by the signal: {status}");
    }

    #[test]
    fn terminate_times_out_on_a_process_that_ignores_sigterm() {
        let mut guard = ChildGuard::spawn(
            sh("trap '' TERM; echo ready; exec sleep 600").stdout(Stdio::piped()),
        )
        .expect("spawning a shell that ignores SIGTERM");
        // Once it has printed, the trap is set (and inherited by `exec`).
        let mut line = String::new();
        BufReader::new(guard.0.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("ready");
        let err = guard
            .terminate(Duration::from_millis(300))
            .expect_err("ignored");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    }

    #[test]
    fn wait_for_port_sees_a_listener() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding port 0");
        let addr = listener.local_addr().expect("listener address");
        wait_for_port(addr, Duration::from_secs(5)).expect("the listener accepts");
    }

    #[test]
    fn wait_for_port_times_out_when_nothing_listens() {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, crate::wait::free_port()));
        let err = wait_for_port(addr, Duration::from_millis(200)).expect_err("nothing listens");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn guarded_wait_fails_fast_when_the_child_exits() {
        let mut guard = ChildGuard::spawn(&mut Command::new("true")).expect("spawning `true`");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, crate::wait::free_port()));
        let started = Instant::now();
        let err = guard
            .wait_for_port(addr, Duration::from_secs(30))
            .expect_err("the child exits without listening");
        assert!(err.to_string().contains("exited"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn live_group_members_lists_a_running_group_leader() {
        use std::os::unix::process::CommandExt;
        let guard = ChildGuard::spawn(
            Command::new("sleep")
                .arg("600")
                .process_group(0)
                .stdout(Stdio::null()),
        )
        .expect("spawning `sleep 600` in its own group");
        let pid = guard.id();
        assert_eq!(live_group_members(pid), vec![pid]);
        drop(guard);
        assert_eq!(live_group_members(pid), Vec::<u32>::new());
    }
}
