//! Golden files: generated code compared with a reviewed copy in git.
//!
//! After an intended change to the generator, bless the new output with
//! `STEADFAST_BLESS=1 cargo test -p steadfast-tests --test generated` and review
//! the diff of `tests/golden/` in git. A failing check never rewrites
//! its own expectation: only the explicit bless step writes.

use std::path::{Path, PathBuf};

/// The golden files' directory, `tests/golden/`.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// Compares `actual` with the golden file `name` (relative to [`dir`]), or
/// writes it when `STEADFAST_BLESS=1`.
///
/// # Panics
///
/// When they differ (naming the first differing line), or when the golden file
/// is missing.
pub fn check(name: &str, actual: &str) {
    check_path(
        &dir().join(name),
        actual,
        "STEADFAST_BLESS=1 cargo test -p steadfast-tests --test generated",
    );
}

/// [`check`] for a golden file anywhere; `bless` is the command that blesses it.
///
/// # Panics
///
/// As [`check`].
pub fn check_path(golden: &Path, actual: &str, bless: &str) {
    if std::env::var_os("STEADFAST_BLESS").is_some_and(|v| v == "1") {
        if let Some(parent) = golden.parent() {
            std::fs::create_dir_all(parent).expect("create the golden directory");
        }
        std::fs::write(golden, actual).expect("write golden file");
        eprintln!("blessed {}", golden.display());
        return;
    }
    let expected = std::fs::read_to_string(golden)
        .unwrap_or_else(|e| panic!("{}: {e}; run `{bless}` to create it", golden.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "generated code differs from {} at line {}:\n  golden:    {:?}\n  generated: {:?}\n\
             If the change is intended, run `{bless}` and review the diff.",
            golden.display(),
            line + 1,
            expected.lines().nth(line).unwrap_or("<end of file>"),
            actual.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}
