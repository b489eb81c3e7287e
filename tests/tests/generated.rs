//! What steadfast-build generates, for the lab example and for the hard cases
//! of `tests/proto/cases/` (every call shape, response types from everywhere,
//! no package, client only, the mirrored tonic settings, odd and clashing
//! names): it compiles here under `#![deny(warnings)]` (and clippy's
//! `-D warnings` in CI), and it matches the reviewed golden files.
//!
//! Bless after an intended generator change:
//! `STEADFAST_BLESS=1 cargo test -p steadfast-tests --test generated`.

#![deny(warnings)]
#![allow(missing_docs)]

use std::path::Path;

use steadfast_tests::golden;

macro_rules! case {
    ($case:literal, $file:literal) => {
        include!(concat!(env!("OUT_DIR"), "/cases/", $case, "/", $file));
    };
}

pub mod streaming {
    pub mod v1 {
        case!("streaming", "streaming.v1.rs");
    }
}

/// Stands for a type the user maps with `extern_path`.
pub mod external {
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Outside {
        #[prost(string, tag = "1")]
        pub value: ::prost::alloc::string::String,
    }
}

pub mod types {
    pub mod v1 {
        case!("types", "types.v1.rs");
    }
}

pub mod common {
    pub mod v1 {
        case!("types", "common.v1.rs");
    }
}

pub mod nopackage {
    case!("nopackage", "_.rs");
}

pub mod clientonly {
    pub mod v1 {
        case!("clientonly", "clientonly.v1.rs");
    }
}

pub mod settings {
    pub mod v1 {
        case!("settings", "settings.v1.rs");
    }
}

pub mod hostile {
    pub mod v1 {
        case!("hostile", "hostile.v1.rs");
    }
}

/// Every generated `.rs` file of every case matches its golden file.
#[test]
fn the_cases_generate_the_reviewed_code() {
    let out = Path::new(env!("OUT_DIR")).join("cases");
    let mut checked = 0;
    for case in std::fs::read_dir(&out).expect("cases") {
        let case = case.expect("case").path();
        for file in std::fs::read_dir(&case).expect("case dir") {
            let file = file.expect("file").path();
            if file.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let name = format!(
                "cases/{}/{}",
                case.file_name().expect("name").to_string_lossy(),
                file.file_name().expect("name").to_string_lossy()
            );
            golden::check(&name, &std::fs::read_to_string(&file).expect("read"));
            checked += 1;
        }
    }
    assert_eq!(checked, 8, "generated files checked");
}

/// The lab example, as the examples' build script generates it.
#[test]
fn the_lab_example_generates_the_reviewed_code() {
    let out = tempfile::tempdir().expect("out dir");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/proto");
    steadfast_build::configure()
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(
            &[include.join("lab/v1/lab.proto")],
            std::slice::from_ref(&include),
        )
        .expect("lab.proto compiles");
    let generated =
        std::fs::read_to_string(out.path().join("lab.v1.rs")).expect("lab.v1.rs written");
    golden::check("lab.v1.rs", &generated);
}

/// The lab example's wire proto, for other languages.
#[test]
fn the_lab_wire_proto_is_the_reviewed_one() {
    let out = tempfile::tempdir().expect("out dir");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/proto");
    let written = steadfast_build::configure()
        .write_wire_protos(
            &[include.join("lab/v1/lab.proto")],
            std::slice::from_ref(&include),
            out.path(),
        )
        .expect("wire protos written");
    let names: Vec<_> = written
        .iter()
        .map(|p| {
            p.strip_prefix(out.path())
                .expect("under out")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["lab/v1/lab.proto", "steadfast/v1/frame.proto"]);
    let lab = std::fs::read_to_string(out.path().join("lab/v1/lab.proto")).expect("read");
    golden::check("lab.v1.wire.proto", &lab);
}

/// Cargo is told to watch the files read, never a directory: the `nopackage`
/// case includes ".", the directory that holds the target directory, and a
/// watched "." would rerun the build script on every build.
#[test]
fn cargo_watches_the_files_read_and_no_directory() {
    let output = Path::new(env!("OUT_DIR"))
        .parent()
        .expect("build dir")
        .join("output");
    let text =
        std::fs::read_to_string(&output).unwrap_or_else(|e| panic!("{}: {e}", output.display()));
    let watched: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("cargo:rerun-if-changed="))
        .collect();
    assert!(
        watched.contains(&"./proto/cases/nopackage/nopackage.proto"),
        "{watched:?}"
    );
    assert!(
        watched.contains(&"proto/cases/hostile/second.proto"),
        "{watched:?}"
    );
    for path in &watched {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        assert!(path.is_file(), "{} is not a file", path.display());
    }
}
