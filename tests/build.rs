//! Generates every golden case of `golden/cases/` with steadfast-build, one
//! output directory per case under `$OUT_DIR/cases/`, and `$OUT_DIR/cases.rs`,
//! which puts each generated file in the modules of its package.
//! `tests/generated.rs` compiles them under `#![deny(warnings)]` and compares
//! them with the golden files in `golden/cases/<case>/expected/`.
//!
//! A case is a folder: its protos, the reviewed output in `expected/`, and
//! `settings.txt`, the builder calls, one a line (`#` starts a comment):
//!
//! ```text
//! compile a.proto b/c.proto        the protos to compile (paths from the case folder)
//! include ../other                 include paths (paths from the case folder; default: the case folder)
//! heartbeat pkg.Svc/Method 500ms   any other line: a Builder method and its arguments;
//! trait_attribute Svc #[derive(X)] the last argument is the rest of the line
//! retry pkg.Svc/M max_attempts=3 initial_backoff=5ms retryable_codes=ABORTED,UNAVAILABLE
//! emit_wire_protos wire            (a directory under the case's output directory)
//! ```

use std::{
    collections::BTreeMap,
    error::Error,
    path::{Component, Path, PathBuf},
};

use steadfast_build::Builder;
use steadfast_build::settings::{self, Shape};

/// The golden cases, relative to this crate.
const CASES: &str = "golden/cases";

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let out = out_dir.join("cases");
    // A case removed since the last run leaves nothing behind.
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    // A new case folder (and any change in one) reruns this script.
    println!("cargo:rerun-if-changed={CASES}");
    let mut modules = Module::default();
    for case in case_dirs()? {
        let name = file_name(&case);
        let dir = out.join(&name);
        std::fs::create_dir_all(&dir)?;
        let settings = case.join("settings.txt");
        let text = std::fs::read_to_string(&settings)
            .map_err(|e| format!("{}: {e}", settings.display()))?;
        let case_build = CaseBuild::parse(&case, &dir, &text)
            .map_err(|e| format!("{}: {e}", settings.display()))?;
        case_build
            .builder
            .compile_protos(&case_build.protos, &case_build.includes)
            .map_err(|e| format!("case {name}: {e}"))?;
        for file in std::fs::read_dir(&dir)? {
            let file = file?.path();
            if file.extension().is_some_and(|e| e == "rs") {
                modules.add(&name, &file);
            }
        }
    }
    let mut cases_rs = String::from(
        "// Every generated file of every golden case, in the modules of its package.\n",
    );
    modules.write(&mut cases_rs, 0);
    std::fs::write(out_dir.join("cases.rs"), cases_rs)?;

    // What a service's existing callers were built with: tonic-prost-build's
    // plain clients of the protos as written, steadfast options and all.
    let original = out_dir.join("original");
    std::fs::create_dir_all(&original)?;
    let files = protox::compile(
        [
            "../examples/proto/lab/v1/lab.proto",
            "golden/cases/streaming/streaming.proto",
        ],
        ["../examples/proto", "golden/cases/streaming", "../proto"],
    )?;
    for file in &files.file {
        let name = file.name();
        for dir in ["../examples/proto", "golden/cases/streaming"] {
            if Path::new(dir).join(name).is_file() {
                println!("cargo:rerun-if-changed={dir}/{name}");
            }
        }
    }
    tonic_prost_build::configure()
        .build_server(false)
        .out_dir(&original)
        .compile_fds(files)?;
    Ok(())
}

/// The folders of `golden/cases/`, sorted.
fn case_dirs() -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(CASES)? {
        let path = entry?.path();
        if path.is_dir() {
            cases.push(path);
        }
    }
    cases.sort();
    Ok(cases)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One case's builder and what it compiles, from its `settings.txt`.
struct CaseBuild {
    builder: Builder,
    protos: Vec<PathBuf>,
    includes: Vec<PathBuf>,
}

impl CaseBuild {
    /// Applies `settings` to a builder writing to `out`; paths in the settings
    /// are relative to the `case` folder.
    fn parse(case: &Path, out: &Path, settings: &str) -> Result<Self, String> {
        let mut builder = steadfast_build::configure().out_dir(out);
        let (mut protos, mut includes) = (Vec::new(), Vec::new());
        for (number, line) in settings.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (method, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            builder = match method {
                "compile" => {
                    protos.extend(args.split_whitespace().map(|p| under(case, p)));
                    builder
                }
                "include" => {
                    includes.extend(args.split_whitespace().map(|p| under(case, p)));
                    builder
                }
                _ => apply(builder, method, args.trim(), out)
                    .map_err(|e| format!("line {}: `{line}`: {e}", number + 1))?,
            };
        }
        if protos.is_empty() {
            return Err("no `compile` line".to_owned());
        }
        if includes.is_empty() {
            includes.push(under(case, "."));
        }
        Ok(CaseBuild {
            builder,
            protos,
            includes,
        })
    }
}

/// `builder.<method>(<args>)`: the settings steadfast-build reads by name
/// (`steadfast_build::settings`, as the protoc plugin does), a target and its
/// value separated by white space, and `emit_wire_protos` (a folder of `out`).
fn apply(builder: Builder, method: &str, args: &str, out: &Path) -> Result<Builder, String> {
    if method == "emit_wire_protos" {
        return Ok(builder.emit_wire_protos(out.join(args)));
    }
    match settings::shape(method) {
        Some(Shape::Two) => {
            let (target, value) = args
                .split_once(char::is_whitespace)
                .ok_or_else(|| "wants two arguments".to_owned())?;
            settings::apply(builder, method, Some(target), value.trim())
        }
        _ => settings::apply(builder, method, None, args),
    }
}

/// `path` from the `case` folder, as this script names it (from the crate),
/// `..` resolved: the crate itself is `.`.
fn under(case: &Path, path: &str) -> PathBuf {
    let joined = case.join(path);
    let mut parts: Vec<Component<'_>> = Vec::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        PathBuf::from(".")
    } else {
        parts.iter().collect()
    }
}

/// The module tree of the generated files: `a.b.rs` goes in `a::b`; a file
/// without a package (`_.rs`) in a module named after its case.
#[derive(Default)]
struct Module {
    files: Vec<PathBuf>,
    children: BTreeMap<String, Module>,
}

impl Module {
    fn add(&mut self, case: &str, file: &Path) {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path: Vec<&str> = if stem == "_" {
            vec![case]
        } else {
            stem.split('.').collect()
        };
        let mut module = self;
        for part in path {
            module = module.children.entry(part.to_owned()).or_default();
        }
        module.files.push(file.to_owned());
    }

    fn write(&self, text: &mut String, depth: usize) {
        let indent = "    ".repeat(depth);
        for file in &self.files {
            text.push_str(&format!(
                "{indent}include!({:?});\n",
                file.display().to_string()
            ));
        }
        for (name, child) in &self.children {
            text.push_str(&format!("{indent}pub mod {name} {{\n"));
            child.write(text, depth + 1);
            text.push_str(&format!("{indent}}}\n"));
        }
    }
}
