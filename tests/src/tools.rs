//! External tools a test needs, and what happens when one is missing.
//!
//! The policy: locally, a test whose tool is missing prints
//! `SKIPPED <test>: <tool> not found (<how to get it>)` to stderr and returns early;
//! in CI (`CI=true`) the same situation is a failure, so a test can never pass there
//! by not running.
//!
//! ```no_run
//! # fn a_test() {
//! let Some(nginx) = steadfast_tests::tools::require("nginx") else { return };
//! # let _ = nginx;
//! # }
//! ```

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Directories searched after `PATH`: system binaries such as nginx live in `sbin`,
/// which is often not on an unprivileged user's `PATH`.
const SBIN_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// How to set up a Python for the interop tests.
const PYTHON_SETUP: &str = "python3 -m venv .venv && .venv/bin/pip install grpcio grpcio-tools zstandard \
     at the workspace root, or point STEADFAST_PYTHON at a python that has them";

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

/// A Python interpreter that can `import grpc, grpc_tools, zstandard`.
///
/// Looks at, in order: the environment variable `STEADFAST_PYTHON` (when set, it is
/// the only candidate), `.venv/bin/python` at the workspace root, and `python3` on
/// `PATH`. Missing is handled like in [`require`].
///
/// # Panics
///
/// Panics when no such Python is found and the environment variable `CI` is `true`.
pub fn python_with_grpc() -> Option<PathBuf> {
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
    if let Some(python) = candidates.iter().find(|python| imports_grpc(python)) {
        return Some(python.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    missing(
        "a python with grpcio, grpcio-tools and zstandard",
        &format!("tried {}; set it up with: {PYTHON_SETUP}", tried.join(", ")),
    )
}

/// Whether `python` runs and can import the gRPC runtime, its code generator
/// and zstd (for blob uploads).
fn imports_grpc(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import grpc, grpc_tools, zstandard"])
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
    eprintln!("SKIPPED {}: {tool} not found ({hint})", current_test());
    None
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
        "protoc" => "apt-get install protobuf-compiler".to_owned(),
        "python3" | "python" => "apt-get install python3".to_owned(),
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
            return eprintln!("SKIPPED {}: /usr/sbin is empty", current_test());
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

    #[test]
    fn a_missing_tool_skips_locally_and_fails_in_ci() {
        let in_ci = is_ci(std::env::var("CI").ok().as_deref());
        let outcome = std::panic::catch_unwind(|| require("steadfast-no-such-tool"));
        match outcome {
            Ok(found) => {
                assert!(!in_ci, "a missing tool must fail the test in CI");
                assert_eq!(found, None);
            }
            Err(panic) => {
                assert!(in_ci, "a missing tool must only skip outside CI");
                let message = panic
                    .downcast_ref::<String>()
                    .expect("the panic carries a formatted message");
                assert!(
                    message.contains("steadfast-no-such-tool is required in CI"),
                    "{message}"
                );
            }
        }
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
