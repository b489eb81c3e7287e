//! Run with: `cargo run -p steadfast-build --features cli --bin steadfast-codegen -- wire --include proto --out wire proto/lab/v1/lab.proto`
//!
//! Writes the wire protos of steadfast services (the rewritten methods and
//! their frame and upload messages, plus `steadfast/v1/frame.proto`) for other languages:
//! `protoc` and `python -m grpc_tools.protoc` compile the output as it is. A
//! client built from them sends the request metadata `steadfast-framing: v1` on
//! calls of rewritten methods (each file says so at its top).
//! `wire --out wire steadfast/v1/dispatch.proto` writes the (built-in) wire of
//! metadata dispatch, for a client of a code-first `#[steadfast::service]`.
//! Beside the protos go `service_config.json` and `steadfast.json` (the crate
//! docs' "Wire protos for other languages").

use std::{error::Error, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  # The wire protos of a service, for grpcio, grpc-go or grpcurl:
  steadfast-codegen wire -I proto --out wire proto/lab/v1/lab.proto

  # The wire of code-first services (#[steadfast::service]); built in:
  steadfast-codegen wire --out wire steadfast/v1/dispatch.proto

  # Then, for Python:
  python -m grpc_tools.protoc -I wire --python_out=gen --grpc_python_out=gen \\
      lab/v1/lab.proto steadfast/v1/frame.proto

Docs: https://docs.rs/steadfast/latest/steadfast/framing/";

const WIRE_EXAMPLES: &str = "\
Examples:
  # Options from the protos themselves:
  steadfast-codegen wire -I proto --out wire proto/lab/v1/lab.proto

  # Options for protos you cannot edit (as the build.rs settings):
  steadfast-codegen wire -I proto --out wire \\
      --heartbeat lab.v1.Lab/Sleep=500 --request-blob lab.v1.Lab/Digest \\
      proto/lab/v1/lab.proto

  # Code-first services (#[steadfast::service]) travel on one built-in proto:
  steadfast-codegen wire --out wire steadfast/v1/dispatch.proto

Each file written is printed on stdout. A client built from them sends the
request metadata `steadfast-framing: v1` on every call of a rewritten method.

Beside the protos: service_config.json, a gRPC service config with the retry
policies of the idempotent methods (grpcio: options=[(\"grpc.service_config\",
text), (\"grpc.enable_retries\", 1)]), and steadfast.json, the heartbeat
intervals and blobs of the rewritten methods. Formats:
https://docs.rs/steadfast-build/latest/steadfast_build/#wire-protos-for-other-languages";

#[derive(Debug, Parser)]
#[command(
    name = "steadfast-codegen",
    version,
    about = "steadfast code generation tools",
    long_about = "steadfast code generation tools.\n\n\
        `wire` writes the protos of steadfast services as they travel (heartbeat\n\
        frames, blob uploads and downloads), so that any gRPC stack can call a\n\
        steadfast server. Rust code is generated from build.rs (steadfast-build)\n\
        or by the protoc plugin protoc-gen-steadfast.",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the wire protos of FILEs to --out, with service_config.json and steadfast.json.
    ///
    /// Clients built from them send the request metadata `steadfast-framing: v1` on
    /// calls of rewritten methods; without it a steadfast server answers in the
    /// methods' original shapes.
    #[command(after_help = WIRE_EXAMPLES)]
    Wire {
        /// Directory to search for imports (repeatable). steadfast/v1/*.proto are built in.
        #[arg(long = "include", short = 'I', value_name = "DIR")]
        includes: Vec<PathBuf>,
        /// Directory to write the wire protos to.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Heartbeat override, `METHOD=MILLIS` (e.g. `lab.v1.Lab/Sleep=500`); repeatable.
        #[arg(long = "heartbeat", value_name = "METHOD=MILLIS", value_parser = parse_heartbeat)]
        heartbeats: Vec<(String, Duration)>,
        /// The request of METHOD (or of every method of a service) carries a blob; repeatable.
        #[arg(long = "request-blob", value_name = "METHOD")]
        request_blobs: Vec<String>,
        /// The response of METHOD (or of every method of a service) carries a blob; repeatable.
        #[arg(long = "response-blob", value_name = "METHOD")]
        response_blobs: Vec<String>,
        /// The .proto files to compile; `steadfast/v1/dispatch.proto` is built in.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

fn parse_heartbeat(arg: &str) -> Result<(String, Duration), String> {
    let (method, millis) = arg
        .split_once('=')
        .ok_or_else(|| format!("expected METHOD=MILLIS, got `{arg}`"))?;
    let millis: u64 = millis
        .parse()
        .map_err(|e| format!("`{millis}` is not a number of milliseconds: {e}"))?;
    Ok((method.to_owned(), Duration::from_millis(millis)))
}

fn main() -> ExitCode {
    let Command::Wire {
        includes,
        out,
        heartbeats,
        request_blobs,
        response_blobs,
        files,
    } = Cli::parse().command;
    let includes = if includes.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        includes
    };
    let builder = heartbeats
        .into_iter()
        .fold(steadfast_build::configure(), |b, (method, interval)| {
            b.heartbeat(method, interval)
        });
    let builder = request_blobs
        .into_iter()
        .fold(builder, |b, m| b.request_blob(m));
    let builder = response_blobs
        .into_iter()
        .fold(builder, |b, m| b.response_blob(m));
    match builder.write_wire_protos(&files, &includes, &out) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", chain(&err));
            ExitCode::FAILURE
        }
    }
}

/// `err` and its `source()` chain, `: `-separated; a source whose text its parent
/// already shows (`"{path}: {source}"`) is not repeated.
fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut previous = text.clone();
    let mut next = err.source();
    while let Some(err) = next {
        let this = err.to_string();
        if !previous.contains(&this) {
            text = format!("{text}: {this}");
        }
        previous = this;
        next = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[test]
    fn chain_shows_each_source_once() {
        let io = std::io::Error::other("disk full");
        let err = steadfast_build::Error::Generate(io);
        // `Generate`'s message already includes its source: not repeated.
        assert_eq!(chain(&err), "code generation failed: disk full");

        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("writing failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = Outer(std::io::Error::other("disk full"));
        assert_eq!(chain(&err), "writing failed: disk full");
    }
}
