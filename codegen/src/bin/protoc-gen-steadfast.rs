//! `protoc-gen-steadfast`, the protoc (and buf) plugin of steadfast-build:
//! writes what build.rs writes, one `<package>.rs` per package.
//!
//! ```text
//! protoc --plugin=protoc-gen-steadfast=$(which protoc-gen-steadfast) \
//!     --steadfast_out=src/gen --steadfast_opt=heartbeat=lab.v1.Lab/Sleep=500ms \
//!     -I proto -I <steadfast-build>/proto proto/lab/v1/lab.proto
//! ```
//!
//! Errors in the protos or the settings go back to protoc in the response
//! (protoc prints them); a request that is not a `CodeGeneratorRequest`
//! exits with status 1 and a message on stderr.

use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut request = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut request) {
        eprintln!("protoc-gen-steadfast: cannot read the request from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let response = match steadfast_build::plugin::try_execute(&request) {
        Ok(response) => response,
        Err(e) => {
            eprintln!("protoc-gen-steadfast: {e} (this program is run by protoc or buf)");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(&response).and_then(|()| stdout.flush()) {
        eprintln!("protoc-gen-steadfast: cannot write the response to stdout: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
