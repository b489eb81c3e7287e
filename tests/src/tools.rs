//! External tools a test needs, and what happens when one is missing.
//!
//! The policy: locally, a test whose tool is missing prints
//! `SKIPPED (<n> so far) <test>: <tool> not found (<how to get it>)` to stderr and
//! returns early; in CI (`CI=true`) the same situation is a failure, so a test can
//! never pass there by not running.
//!
//! The line is written to the process's stderr directly, not with `eprintln!`,
//! which libtest captures (and shows only for a failing test): a plain
//! `cargo test` shows every skip among the test results. `<n>` counts the skips
//! of the whole `cargo test` run, across its test binaries: each skip adds a line
//! to a log named after the run (the parent process, cargo, and its start time)
//! in `target/<profile>/steadfast-skips/`, and the count is that log's length.
//! `STEADFAST_SKIP_LOG` names another log file.
//!
//! ```no_run
//! # fn a_test() {
//! let Some(nginx) = steadfast_tests::tools::require("nginx") else { return };
//! # let _ = nginx;
//! # }
//! ```

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Directories searched after `PATH`: system binaries such as nginx live in `sbin`,
/// which is often not on an unprivileged user's `PATH`.
const SBIN_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// How to set up a Python for the interop tests.
const PYTHON_SETUP: &str = "python3 -m venv .venv && .venv/bin/pip install grpcio grpcio-tools protobuf zstandard xxhash \
     grpcio-health-checking grpcio-reflection pytest pytest-asyncio \
     at the workspace root, or point STEADFAST_PYTHON at a python that has them";

/// What the interop scripts import: the gRPC runtime, its code generator, zstd
/// (for blob uploads) and gRPC's health and reflection clients.
const GRPC_MODULES: &[&str] = &[
    "grpc",
    "grpc_tools",
    "zstandard",
    "grpc_health.v1.health_pb2_grpc",
    "grpc_reflection",
];

/// What the `steadfast` Python package (python/) and its pytest suite import
/// besides [`GRPC_MODULES`]: protobuf, XXH3 (raw blobs), pytest and pytest-asyncio.
const PACKAGE_MODULES: &[&str] = &["google.protobuf", "xxhash", "pytest", "pytest_asyncio"];

/// Finds the executable `tool` on `PATH`, then in the `sbin` directories.
///
/// Returns `None` after printing a `SKIPPED` line when the tool is missing.
///
/// # Panics
///
/// Panics when the tool is missing and the environment variable `CI` is `true`.
pub fn require(tool: &str) -> Option<PathBuf> {
    match find_executable(tool, std::env::var_os("PATH").as_deref()) {
        Some(path) => Some(path),
        None => missing(tool, &install_hint(tool)),
    }
}

/// A Python interpreter that can `import grpc, grpc_tools, zstandard, grpc_health, grpc_reflection`.
///
/// Looks at, in order: the environment variable `STEADFAST_PYTHON` (when set, it is
/// the only candidate), `.venv/bin/python` at the workspace root, and `python3` on
/// `PATH`. Missing is handled like in [`require`].
///
/// # Panics
///
/// Panics when no such Python is found and the environment variable `CI` is `true`.
pub fn python_with_grpc() -> Option<PathBuf> {
    python_with(
        GRPC_MODULES,
        "a python with grpcio, grpcio-tools, zstandard, grpcio-health-checking and grpcio-reflection",
    )
}

/// A Python interpreter for the `steadfast` Python package's tests: what
/// [`python_with_grpc`] needs, plus protobuf, xxhash, pytest and pytest-asyncio.
/// Found and, when missing, handled like [`python_with_grpc`].
///
/// # Panics
///
/// Panics when no such Python is found and the environment variable `CI` is `true`.
pub fn python_for_package() -> Option<PathBuf> {
    let modules: Vec<&str> = GRPC_MODULES
        .iter()
        .chain(PACKAGE_MODULES)
        .copied()
        .collect();
    python_with(
        &modules,
        "a python with grpcio, grpcio-tools, protobuf, zstandard, xxhash, pytest and pytest-asyncio",
    )
}

/// The first candidate Python (see [`python_with_grpc`]) that imports `modules`.
fn python_with(modules: &[&str], what: &str) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("STEADFAST_PYTHON") {
        Some(explicit) => vec![PathBuf::from(explicit)],
        None => {
            let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            let workspace_root = manifest_dir.parent().unwrap_or(manifest_dir);
            let venv = workspace_root.join(".venv/bin/python");
            let path_python = find_executable("python3", std::env::var_os("PATH").as_deref());
            std::iter::once(venv).chain(path_python).collect()
        }
    };
    if let Some(python) = candidates.iter().find(|python| imports(python, modules)) {
        return Some(python.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    missing(
        what,
        &format!("tried {}; set it up with: {PYTHON_SETUP}", tried.join(", ")),
    )
}

/// Whether `python` runs and can import `modules`.
fn imports(python: &Path, modules: &[&str]) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {}", modules.join(", "))])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Applies the missing-tool policy: fail in CI, otherwise say the test is skipped.
/// `hint` says how to get the tool.
fn missing<T>(tool: &str, hint: &str) -> Option<T> {
    if is_ci(std::env::var("CI").ok().as_deref()) {
        panic!("{tool} is required in CI ({hint})");
    }
    skipped(&format!("{}: {tool} not found ({hint})", current_test()));
    None
}

/// Says that the running test is skipped because of `why`: a `SKIPPED` line with
/// the count of skips so far in this run, on stderr, past libtest's capture (see
/// the [module docs](self)).
pub fn skipped(why: &str) {
    let count = match count_skip(why) {
        Ok(count) => format!("{count} so far"),
        Err(err) => format!("count unknown: {err}"),
    };
    // `io::stderr()` itself, not `eprintln!`: libtest captures the macros'
    // output for a passing test, not writes to the stream.
    let _ = writeln!(io::stderr().lock(), "SKIPPED ({count}) {why}");
}

/// Adds `why` to this run's skip log and returns how many lines it holds.
fn count_skip(why: &str) -> io::Result<usize> {
    let log = skip_log()?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(&log)?;
    // One write of one line: appends of concurrent tests do not interleave.
    file.write_all(format!("{}\n", why.replace('\n', " ")).as_bytes())?;
    Ok(std::fs::read_to_string(&log)?.lines().count())
}

/// The skip log of this run: `STEADFAST_SKIP_LOG`, else a file named after the
/// parent process (cargo, for `cargo test`) and its start time in
/// `target/<profile>/steadfast-skips/`, where logs over a day old are removed.
fn skip_log() -> io::Result<PathBuf> {
    if let Some(log) = std::env::var_os("STEADFAST_SKIP_LOG") {
        return Ok(PathBuf::from(log));
    }
    // A test binary lives in `target/<profile>/deps/`.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| io::Error::other(format!("{} has no profile directory", exe.display())))?;
    let dir = profile_dir.join("steadfast-skips");
    remove_old_logs(&dir);
    let parent = std::os::unix::process::parent_id();
    let started = process_start(parent).unwrap_or_default();
    Ok(dir.join(format!("run-{parent}-{started}.log")))
}

/// Removes the logs of runs over a day old (a log's run is over by then).
fn remove_old_logs(dir: &Path) {
    const OLD: Duration = Duration::from_secs(24 * 60 * 60);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > OLD));
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat`,
/// field 22), so that a reused pid names another run.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ...": comm may hold spaces and parentheses.
    let (_, after_comm) = stat.rsplit_once(')')?;
    after_comm.split_whitespace().nth(19).map(str::to_owned)
}

/// Whether the value of the `CI` environment variable means "running in CI".
fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The name of the running test: libtest names each test's thread after it.
fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned()
}

fn install_hint(tool: &str) -> String {
    match tool {
        "nginx" => "apt-get install nginx".to_owned(),
        "haproxy" => "apt-get install haproxy".to_owned(),
        "caddy" => "apt-get install caddy".to_owned(),
        "protoc" => "apt-get install protobuf-compiler".to_owned(),
        "buf" => "npm install --prefix <dir> @bufbuild/buf and put <dir>/node_modules/.bin on PATH"
            .to_owned(),
        "python3" | "python" => "apt-get install python3".to_owned(),
        // The Node example (examples/node) needs Node >= 18.11: Debian 12 has 18.20.
        "node" => "apt-get install nodejs".to_owned(),
        "npm" => "apt-get install npm".to_owned(),
        other => format!("install {other} and put it on PATH"),
    }
}

/// Finds `tool` in the directories of `path_var` (a `PATH`-style list), then in
/// [`SBIN_DIRS`]. A `tool` containing a `/` is taken as a path and only checked.
fn find_executable(tool: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if tool.contains('/') {
        let path = PathBuf::from(tool);
        return is_executable(&path).then_some(path);
    }
    let on_path = path_var.map(std::env::split_paths).into_iter().flatten();
    let sbin = SBIN_DIRS.iter().map(PathBuf::from);
    on_path
        .chain(sbin)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write_file(path: &Path, mode: u32) {
        std::fs::write(path, "#!/bin/sh\n").expect("writing a fake tool");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .expect("setting the fake tool's mode");
    }

    #[test]
    fn finds_an_executable_on_path_and_ignores_other_files() {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        write_file(&dir.path().join("fake-tool"), 0o755);
        write_file(&dir.path().join("not-executable"), 0o644);
        std::fs::create_dir(dir.path().join("a-directory")).expect("creating a directory");
        let path_var = std::env::join_paths(["/nonexistent", dir.path().to_str().expect("utf-8")])
            .expect("joining PATH");

        assert_eq!(
            find_executable("fake-tool", Some(&path_var)),
            Some(dir.path().join("fake-tool"))
        );
        assert_eq!(find_executable("not-executable", Some(&path_var)), None);
        assert_eq!(find_executable("a-directory", Some(&path_var)), None);
        assert_eq!(
            find_executable("steadfast-no-such-tool", Some(&path_var)),
            None
        );
    }

    #[test]
    fn looks_in_sbin_when_path_does_not_have_the_tool() {
        // Any executable of /usr/sbin must be found with a PATH that does not list it.
        let Some(tool) = std::fs::read_dir("/usr/sbin")
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok())
            .find(|entry| is_executable(&entry.path()))
        else {
            return skipped(&format!("{}: /usr/sbin is empty", current_test()));
        };
        let name = tool.file_name();
        let found = find_executable(
            name.to_str().expect("utf-8"),
            Some(OsStr::new("/nonexistent")),
        )
        .expect("found in an sbin directory");
        assert_eq!(found.file_name(), Some(name.as_os_str()));
    }

    #[test]
    fn a_tool_given_as_a_path_is_only_checked() {
        assert_eq!(
            find_executable("/bin/sh", None),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(find_executable("/nonexistent/sh", None), None);
    }

    #[test]
    fn ci_is_recognised() {
        assert!(is_ci(Some("true")));
        assert!(is_ci(Some("TRUE")));
        assert!(is_ci(Some("1")));
        assert!(!is_ci(Some("false")));
        assert!(!is_ci(Some("")));
        assert!(!is_ci(None));
    }

    /// Skips for a missing tool when `STEADFAST_SKIP_PROBE` is set (the tests
    /// below run it in a libtest child process, as `cargo test` runs a test
    /// binary); does nothing otherwise.
    #[test]
    fn skip_probe() {
        if std::env::var_os("STEADFAST_SKIP_PROBE").is_some() {
            assert_eq!(require("steadfast-no-such-tool"), None);
        }
    }

    /// Runs [`skip_probe`] in a child with `CI` set to `ci` (unset: `None`) and
    /// skips logged to `log`; returns whether it passed, its stdout and stderr.
    fn run_skip_probe(ci: Option<&str>, log: &Path) -> (bool, String, String) {
        let mut command = Command::new(std::env::current_exe().expect("the test binary"));
        command
            .args(["--exact", "tools::tests::skip_probe"])
            .env("STEADFAST_SKIP_PROBE", "1")
            .env("STEADFAST_SKIP_LOG", log)
            .env_remove("RUST_TEST_NOCAPTURE")
            .stdin(Stdio::null());
        match ci {
            Some(ci) => command.env("CI", ci),
            None => command.env_remove("CI"),
        };
        let output = command.output().expect("running the test binary");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    const PROBE_SKIP: &str = "tools::tests::skip_probe: steadfast-no-such-tool not found \
                              (install steadfast-no-such-tool and put it on PATH)";

    #[test]
    fn a_missing_tool_fails_the_test_in_ci() {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let log = dir.path().join("skips.log");
        let (passed, stdout, stderr) = run_skip_probe(Some("true"), &log);
        assert!(!passed, "a missing tool must fail the test in CI: {stdout}");
        assert!(
            stdout.contains("steadfast-no-such-tool is required in CI"),
            "{stdout}"
        );
        assert!(!stderr.contains("SKIPPED"), "{stderr}");
        assert!(!log.exists(), "a failure is no skip");
    }

    #[test]
    fn a_skip_shows_in_a_plain_test_run_with_the_count_of_the_run() {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let log = dir.path().join("skips.log");
        let (passed, stdout, stderr) = run_skip_probe(None, &log);
        assert!(passed && stdout.contains("1 passed"), "{stdout}");
        assert!(
            stderr.contains(&format!("SKIPPED (1 so far) {PROBE_SKIP}\n")),
            "the skip is not shown: {stderr:?}"
        );
        let (passed, _, stderr) = run_skip_probe(Some("false"), &log);
        assert!(passed);
        assert!(
            stderr.contains(&format!("SKIPPED (2 so far) {PROBE_SKIP}\n")),
            "the second skip of the run is not counted: {stderr:?}"
        );
    }

    #[test]
    fn the_start_time_of_a_process_tells_runs_apart() {
        let me = std::process::id();
        let started = process_start(me).expect("this process has a start time");
        assert!(started.parse::<u64>().is_ok(), "{started}");
        assert_eq!(process_start(me), Some(started));
        assert_eq!(process_start(u32::MAX), None);
    }

    #[test]
    fn require_finds_sh() {
        assert!(require("sh").is_some());
    }

    #[test]
    fn the_skip_line_names_the_test() {
        assert_eq!(
            current_test(),
            "tools::tests::the_skip_line_names_the_test",
            "libtest names the test thread after the test"
        );
    }
}
