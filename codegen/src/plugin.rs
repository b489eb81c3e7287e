//! The protoc plugin behind `protoc-gen-steadfast`: an encoded
//! `google.protobuf.compiler.CodeGeneratorRequest` in, an encoded
//! `CodeGeneratorResponse` out, through the same generator as
//! [`Builder::compile_protos`] (descriptors → options → wire rewrite → prost
//! with steadfast's service generator), so that it writes what build.rs
//! writes, byte for byte: one `<dotted.package>.rs` per package of the files
//! to generate (messages, tonic services and steadfast's typed layer in one
//! file, no insertion points).
//!
//! Settings come in the parameter (`--steadfast_opt=…`, or `opt:` in
//! `buf.gen.yaml`), comma-separated `key=value` entries named after the
//! [`Builder`] methods; a setting with a target takes `key=target=value`, and
//! `\,` is a comma inside a value:
//!
//! ```text
//! heartbeat=lab.v1.Lab/Sleep=500ms,request_blob=lab.v1.Lab/Digest,build_server=false,
//! type_attribute=.=#[derive(Eq\, Hash)],
//! retry=lab.v1.Lab/Sleep=max_attempts=3 initial_backoff=5ms retryable_codes=ABORTED\,UNAVAILABLE,
//! include_file=mod.rs
//! ```
//!
//! The keys: `build_client`, `build_server`, `build_transport`,
//! `emit_package`, `use_arc_self`, `generate_default_stubs` (`=true|false`);
//! `request_blob`, `response_blob`, `idempotent`, `disable_comments`,
//! `bytes`, `btree_map`, `boxed` (`=<target>`); `steadfast_path`,
//! `codec_path` (`=<path>`); `heartbeat` (`=<target>=500ms|2s|500`), `retry`
//! (`=<target>=<field>=<value> …`, the [`RetryPolicy`](crate::RetryPolicy) methods), `extern_path`
//! and the `*_attribute` settings (`=<target>=<value>`); and `include_file`
//! (`=<name>`), the plugin's own. An unknown key is an error listing these.
//!
//! Differences from build.rs, each for a reason:
//! - only the packages of protoc's files to generate are written (build.rs
//!   writes the packages of every file it read, imports included): name
//!   every file whose package you want, as with any protoc plugin;
//! - no wire descriptor set and no wire protos (the response carries text
//!   only, and protoc sends no source text to splice);
//! - `include_file=<name>` writes a module tree including every file written.
//!
//! An error in the protos or the settings is reported in the response's
//! `error` (protoc prints it and fails); only a request that does not decode
//! is an error of [`try_execute`].

use std::collections::{BTreeMap, HashSet};

use prost::Message as _;
use prost_build::Module;
use prost_types::compiler::{CodeGeneratorResponse, code_generator_response};

use crate::settings::{self, Shape};
use crate::{Builder, Error, front::Front, generate};

/// `CodeGeneratorResponse.Feature.FEATURE_PROTO3_OPTIONAL`: prost generates
/// proto3 `optional` fields.
const FEATURE_PROTO3_OPTIONAL: u64 = 1;

/// The request's bytes are not a `CodeGeneratorRequest`.
#[derive(Debug, thiserror::Error)]
#[error("the request is not an encoded google.protobuf.compiler.CodeGeneratorRequest: {0}")]
pub struct MalformedRequest(#[source] prost::DecodeError);

/// The parts of a `CodeGeneratorRequest` the plugin reads, the files kept
/// encoded so that the descriptor pool sees their options as protoc wrote
/// them (prost's `MethodOptions` would drop the `(steadfast.v1.method)`
/// extension).
#[derive(Clone, PartialEq, prost::Message)]
struct Request {
    #[prost(string, repeated, tag = "1")]
    file_to_generate: Vec<String>,
    #[prost(string, optional, tag = "2")]
    parameter: Option<String>,
    #[prost(bytes = "vec", repeated, tag = "15")]
    proto_file: Vec<Vec<u8>>,
}

/// Runs the plugin on an encoded `CodeGeneratorRequest` and returns the
/// encoded `CodeGeneratorResponse`. A request that does not decode gets a
/// response with its `error` set too; [`try_execute`] tells it apart.
///
/// ```no_run
/// use std::io::{Read, Write};
/// let mut request = Vec::new();
/// std::io::stdin().read_to_end(&mut request)?;
/// std::io::stdout().write_all(&steadfast_build::plugin::execute(&request))?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn execute(request: &[u8]) -> Vec<u8> {
    try_execute(request).unwrap_or_else(|malformed| {
        CodeGeneratorResponse {
            error: Some(malformed.to_string()),
            supported_features: Some(FEATURE_PROTO3_OPTIONAL),
            file: Vec::new(),
        }
        .encode_to_vec()
    })
}

/// [`execute`], with a request that does not decode as an error (what
/// `protoc-gen-steadfast` exits non-zero on). Errors in the protos or the
/// settings are in the response's `error`.
pub fn try_execute(request: &[u8]) -> Result<Vec<u8>, MalformedRequest> {
    let request = Request::decode(request).map_err(MalformedRequest)?;
    let response = match generate(request) {
        Ok(file) => CodeGeneratorResponse {
            error: None,
            supported_features: Some(FEATURE_PROTO3_OPTIONAL),
            file,
        },
        Err(error) => CodeGeneratorResponse {
            error: Some(error.to_string()),
            supported_features: Some(FEATURE_PROTO3_OPTIONAL),
            file: Vec::new(),
        },
    };
    Ok(response.encode_to_vec())
}

fn generate(request: Request) -> Result<Vec<code_generator_response::File>, Error> {
    let parameters = Parameters::parse(request.parameter.as_deref().unwrap_or(""))?;
    let builder = parameters.builder;
    let crate_path = builder.parsed_crate_path()?;
    let front = Front::from_encoded_files(&request.proto_file)?;
    let wanted: HashSet<Module> = request
        .file_to_generate
        .iter()
        .filter_map(|name| front.fds.file.iter().find(|f| f.name() == name))
        .map(|file| Module::from_protobuf_package_name(file.package()))
        .collect();
    let rewritten = builder.rewrite(&front)?;
    let protos = &request.file_to_generate;
    let mut config = builder.rust_config(
        prost_build::Config::new(),
        crate_path,
        &front,
        rewritten.model,
        protos,
    )?;
    // Every file, as build.rs's `compile_fds` passes them: a package's code
    // is the code of all its files protoc sent, in protoc's order.
    let requests = rewritten
        .wire
        .file
        .into_iter()
        .map(|file| (Module::from_protobuf_package_name(file.package()), file))
        .collect();
    let modules = generate::guarded(protos, || config.generate(requests))?;
    let modules: BTreeMap<Module, String> = modules
        .into_iter()
        .filter(|(module, _)| wanted.contains(module))
        .collect();
    let mut files: Vec<code_generator_response::File> = modules
        .iter()
        .map(|(module, content)| file(module.to_file_name_or("_"), content.clone()))
        .collect();
    if let Some(name) = parameters.include_file {
        files.push(file(name, include_file(modules.keys())));
    }
    Ok(files)
}

fn file(name: String, content: String) -> code_generator_response::File {
    code_generator_response::File {
        name: Some(name),
        insertion_point: None,
        content: Some(content),
        generated_code_info: None,
    }
}

/// The module tree of `modules` (sorted), each including its file from the
/// same directory, as prost-build's `include_file` writes it for an explicit
/// output directory.
fn include_file<'a>(modules: impl Iterator<Item = &'a Module>) -> String {
    let mut out = String::from("// This file is @generated by prost-build.\n");
    let mut line = |depth: usize, text: &str| {
        out.push_str(&"    ".repeat(depth));
        out.push_str(text);
        out.push('\n');
    };
    let mut stack: Vec<&str> = Vec::new();
    for module in modules {
        let parts: Vec<&str> = module.parts().collect();
        while !parts.starts_with(&stack) {
            stack.pop();
            line(stack.len(), "}");
        }
        while stack.len() < parts.len() {
            line(stack.len(), &format!("pub mod {} {{", parts[stack.len()]));
            stack.push(parts[stack.len()]);
        }
        line(
            stack.len(),
            &format!("include!(\"{}\");", module.to_file_name_or("_")),
        );
    }
    for depth in (0..stack.len()).rev() {
        line(depth, "}");
    }
    out
}

/// The settings of one run, from the parameter.
struct Parameters {
    builder: Builder,
    include_file: Option<String>,
}

impl Parameters {
    /// Parses the parameter strictly: an unknown key, a missing value or a
    /// value of the wrong form is an error naming the entry.
    fn parse(parameter: &str) -> Result<Parameters, Error> {
        let mut parameters = Parameters {
            // No cargo here: nothing reads `cargo:` lines.
            builder: crate::configure().emit_rerun_if_changed(false),
            include_file: None,
        };
        for entry in split_entries(parameter) {
            if entry.is_empty() {
                continue;
            }
            let invalid = |message: String| Error::InvalidOption {
                target: format!("protoc-gen-steadfast parameter `{entry}`"),
                message,
            };
            let (key, value) = entry.split_once('=').unwrap_or((&entry, ""));
            if key == "include_file" {
                if value.is_empty() {
                    return Err(invalid(
                        "`include_file` wants a file name: `include_file=mod.rs`".to_owned(),
                    ));
                }
                parameters.include_file = Some(value.to_owned());
                continue;
            }
            let Some(shape) = settings::shape(key) else {
                let mut known = settings::names();
                known.push("include_file");
                return Err(invalid(format!(
                    "unknown setting `{key}`; known: {}",
                    known.join(", ")
                )));
            };
            let (target, value) = match shape {
                Shape::Two => match value
                    .split_once('=')
                    .filter(|(t, v)| !t.is_empty() && !v.is_empty())
                {
                    Some((target, value)) => (Some(target), value),
                    None => {
                        return Err(invalid(format!(
                            "`{key}` wants a target and a value: `{key}=<target>=<value>`"
                        )));
                    }
                },
                Shape::Flag | Shape::One => (None, value),
            };
            parameters.builder =
                settings::apply(parameters.builder, key, target, value).map_err(invalid)?;
        }
        Ok(parameters)
    }
}

/// The entries of the parameter: split on commas, `\,` a comma and `\\` a
/// backslash inside an entry.
fn split_entries(parameter: &str) -> Vec<String> {
    let mut entries = vec![String::new()];
    let mut chars = parameter.chars();
    while let Some(c) = chars.next() {
        let current = entries.last_mut().expect("never empty");
        match c {
            '\\' => match chars.next() {
                Some(next @ (',' | '\\')) => current.push(next),
                Some(next) => {
                    current.push('\\');
                    current.push(next);
                }
                None => current.push('\\'),
            },
            ',' => entries.push(String::new()),
            c => current.push(c),
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(parameter: &str) -> String {
        match Parameters::parse(parameter) {
            Ok(_) => panic!("`{parameter}` parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn an_unknown_setting_is_an_error_listing_the_known_ones() {
        let message = error("build_server=false,heartbeats=lab.v1.Lab=500ms");
        assert!(
            message.contains("unknown setting `heartbeats`"),
            "{message}"
        );
        for name in settings::names().into_iter().chain(["include_file"]) {
            assert!(message.contains(name), "{name} missing from: {message}");
        }
    }

    #[test]
    fn every_setting_of_the_golden_cases_parses() {
        let parameters = Parameters::parse(
            "build_server=false,heartbeat=settings.v1.Tuned/Quick=0ms,\
             heartbeat=lab.v1.Lab/Sleep=500,request_blob=lab.v1.Lab/Digest,\
             client_attribute=settings.v1.Tuned=#[doc(alias = \"TunedCaller\")],\
             type_attribute=.=#[derive(Eq\\, Hash)],\
             retry=retry.v1.Flaky/Tuned=max_attempts=3 initial_backoff=5ms retryable_codes=ABORTED\\,UNAVAILABLE,\
             extern_path=.external.v1.Outside=crate::external::Outside,include_file=mod.rs,",
        )
        .expect("parses");
        let builder = parameters.builder;
        assert!(!builder.build_server && builder.build_client);
        assert_eq!(builder.settings.len(), 4);
        assert_eq!(
            builder.type_attributes,
            [(".".to_owned(), "#[derive(Eq, Hash)]".to_owned())]
        );
        assert_eq!(
            builder.client_attributes,
            [(
                "settings.v1.Tuned".to_owned(),
                "#[doc(alias = \"TunedCaller\")]".to_owned()
            )]
        );
        assert_eq!(
            builder.extern_paths,
            [(
                ".external.v1.Outside".to_owned(),
                "crate::external::Outside".to_owned()
            )]
        );
        assert_eq!(parameters.include_file.as_deref(), Some("mod.rs"));
    }

    #[test]
    fn malformed_values_are_errors_naming_the_entry() {
        for (parameter, expected) in [
            ("build_server=no", "wants `true` or `false`"),
            ("build_server", "wants `true` or `false`"),
            ("heartbeat=lab.v1.Lab/Sleep", "wants a target and a value"),
            ("heartbeat=lab.v1.Lab/Sleep=soon", "is not a duration"),
            ("request_blob", "wants a value"),
            ("retry=lab.v1.Lab=tries=3", "is no retry setting"),
        ] {
            let message = error(parameter);
            assert!(message.contains(expected), "{parameter}: {message}");
            assert!(
                message.contains(&format!("parameter `{parameter}`")),
                "{message}"
            );
        }
    }

    #[test]
    fn commas_and_backslashes_escape() {
        assert_eq!(
            split_entries(r"a=x\,y,b=\\,c=\d"),
            ["a=x,y", r"b=\", r"c=\d"]
        );
    }

    #[test]
    fn the_include_file_nests_the_modules() {
        let modules = [
            Module::from_protobuf_package_name(""),
            Module::from_protobuf_package_name("lab.v1"),
            Module::from_protobuf_package_name("lab.v2"),
            Module::from_protobuf_package_name("zoo"),
        ];
        assert_eq!(
            include_file(modules.iter()),
            "// This file is @generated by prost-build.\n\
             include!(\"_.rs\");\n\
             pub mod lab {\n    pub mod v1 {\n        include!(\"lab.v1.rs\");\n    }\n\
             \x20   pub mod v2 {\n        include!(\"lab.v2.rs\");\n    }\n}\n\
             pub mod zoo {\n    include!(\"zoo.rs\");\n}\n"
        );
    }
}
