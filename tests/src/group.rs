//! A child process that leads its own process group, for the proxies the tests
//! run (HAProxy, Caddy).
//!
//! [`GroupLeader::spawn`] starts the process in a new process group; dropping the
//! [`GroupLeader`] kills the whole group with `SIGKILL`, reaps the leader and waits
//! (up to 5 s) until no member of the group is left, so nothing a test started
//! outlives it, even a process the child forked. Unix only (the group is read from
//! `/proc`, so the wait for members is Linux only).
//!
//! `start_on_free_port` (for this crate's proxies) runs such a process on a free
//! port of `127.0.0.1`, trying another port when the chosen one was taken in the
//! meantime.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::process::live_group_members;
use crate::wait::{POLL_INTERVAL, free_port};

/// How long the members of a killed group may take to go.
const STOP_DEADLINE: Duration = Duration::from_secs(5);
/// How long a process may take to accept connections after it was started.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How many ports are tried when the chosen one was taken in the meantime.
const START_ATTEMPTS: usize = 3;

/// Starts a server that must be told its port: `spawn` starts it listening on
/// the address it is given (a free port of `127.0.0.1`), `ready` tells when it
/// has bound that port (a pid file, a log line: what the server does only after
/// binding, so that a squatter's port is not taken for the server's), and `logs`
/// reads what it has logged, for errors. Waits until the server is ready and
/// accepts a TCP connection.
///
/// When the server exits before it is ready and its logs say "address already
/// in use", another port is tried, up to 3 in all. Fails when the server exits
/// otherwise, with its logs in the error, or is not ready within 10 s.
pub(crate) fn start_on_free_port(
    name: &str,
    mut spawn: impl FnMut(SocketAddr) -> io::Result<GroupLeader>,
    ready: impl Fn() -> bool,
    logs: impl Fn() -> String,
) -> io::Result<(GroupLeader, SocketAddr)> {
    let mut attempt = 1;
    loop {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let mut process = spawn(addr)?;
        let give_up = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = process.try_wait()? {
                let logs = logs();
                if logs.to_ascii_lowercase().contains("address already in use")
                    && attempt < START_ATTEMPTS
                {
                    // Someone took the port between `free_port` and the bind.
                    break;
                }
                return Err(io::Error::other(format!(
                    "{name} exited ({status}) before listening on {addr}:\n{logs}"
                )));
            }
            if ready() && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok((process, addr));
            }
            if Instant::now() >= give_up {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{name} did not listen on {addr} within {START_DEADLINE:?}:\n{}",
                        logs()
                    ),
                ));
            }
            sleep(POLL_INTERVAL);
        }
        attempt += 1;
    }
}

/// A child process leading its own process group; the group is killed when dropped.
#[derive(Debug)]
pub struct GroupLeader(Child);

impl GroupLeader {
    /// Spawns `command` as the leader of a new process group.
    pub fn spawn(command: &mut Command) -> io::Result<GroupLeader> {
        command.process_group(0).spawn().map(GroupLeader)
    }

    /// The leader's process id, which is also the group's id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// The leader's exit status if it has exited, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.0.try_wait()
    }
}

impl Drop for GroupLeader {
    /// Kills every process of the group, reaps the leader and waits for the rest.
    fn drop(&mut self) {
        let pgid = self.0.id();
        // The group id stays reserved while the unreaped leader or any member
        // lives, so the signal cannot reach an unrelated group.
        let sent = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(err) = sent {
            eprintln!("could not run `kill -KILL -- -{pgid}`: {err}");
            let _ = self.0.kill();
        }
        if let Err(err) = self.0.wait() {
            eprintln!("could not reap process {pgid}: {err}");
        }
        let give_up = Instant::now() + STOP_DEADLINE;
        while !live_group_members(pgid).is_empty() && Instant::now() < give_up {
            sleep(POLL_INTERVAL);
        }
        let survivors = live_group_members(pgid);
        if !survivors.is_empty() {
            eprintln!("processes {survivors:?} of group {pgid} survived SIGKILL");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_leader_stops_the_processes_it_forked() {
        // A shell that forks a second sleeper into its group and waits.
        let mut command = Command::new("sh");
        command
            .args(["-c", "sleep 60 & sleep 60"])
            .stdin(Stdio::null());
        let leader = GroupLeader::spawn(&mut command).expect("spawning sh");
        let pgid = leader.id();
        let give_up = Instant::now() + STOP_DEADLINE;
        while live_group_members(pgid).len() < 2 {
            assert!(
                Instant::now() < give_up,
                "sh (or the sleeper it became) and the forked sleeper: {:?}",
                live_group_members(pgid)
            );
            sleep(POLL_INTERVAL);
        }
        drop(leader);
        assert_eq!(live_group_members(pgid), Vec::<u32>::new());
    }
}
