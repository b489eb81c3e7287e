//! Generates the hostile-case protos of `golden/cases/` with steadfast-build, one
//! output directory per case under `$OUT_DIR/cases/`. `tests/generated.rs`
//! compiles them under `#![deny(warnings)]` and compares them with the golden
//! files in `golden/cases/<case>/expected/`.

use std::{error::Error, path::PathBuf, time::Duration};

fn main() -> Result<(), Box<dyn Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("cases");
    let case = |name: &str| -> Result<(steadfast_build::Builder, PathBuf), Box<dyn Error>> {
        let dir = out.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok((steadfast_build::configure().out_dir(&dir), dir))
    };

    let (builder, _) = case("streaming")?;
    builder.compile_protos(
        &["golden/cases/streaming/streaming.proto"],
        &["golden/cases/streaming"],
    )?;

    let (builder, _) = case("types")?;
    builder
        .extern_path(".external.v1.Outside", "crate::external::Outside")
        .compile_protos(&["golden/cases/types/types.proto"], &["golden/cases/types"])?;

    // An include path of "." must not make cargo rerun this script on every build.
    let (builder, _) = case("nopackage")?;
    builder.compile_protos(&["golden/cases/nopackage/nopackage.proto"], &["."])?;

    let (builder, _) = case("clientonly")?;
    builder.build_server(false).compile_protos(
        &["golden/cases/clientonly/clientonly.proto"],
        &["golden/cases/clientonly"],
    )?;

    let (builder, _) = case("settings")?;
    builder
        .use_arc_self(true)
        .generate_default_stubs(true)
        .disable_comments("settings.v1.Tuned.Slow")
        .client_mod_attribute("settings.v1", "#[cfg(not(any()))]")
        .client_attribute("settings.v1.Tuned", "#[doc(alias = \"TunedCaller\")]")
        .server_mod_attribute("settings.v1", "#[cfg(not(any()))]")
        .server_attribute("settings.v1.Tuned", "#[doc(alias = \"TunedService\")]")
        .trait_attribute("Tuned", "#[doc(alias = \"TunedHandlers\")]")
        .heartbeat("settings.v1.Tuned/Quick", Duration::ZERO)
        .compile_protos(
            &["golden/cases/settings/settings.proto"],
            &["golden/cases/settings"],
        )?;

    let (builder, _) = case("bare")?;
    builder
        .emit_package(false)
        .build_transport(false)
        .codec_path("tonic_prost::ProstCodec")
        .compile_protos(&["golden/cases/bare/bare.proto"], &["golden/cases/bare"])?;

    let (builder, dir) = case("blobs")?;
    builder
        .request_blob("blobs.v1.Mirror/Echo")
        .response_blob("blobs.v1.Mirror.Echo")
        .emit_wire_protos(dir.join("wire"))
        .compile_protos(&["golden/cases/blobs/blobs.proto"], &["golden/cases/blobs"])?;

    let (builder, dir) = case("retry")?;
    builder
        .emit_wire_protos(dir.join("wire"))
        .retry(
            "retry.v1.Flaky/Tuned",
            steadfast_build::RetryPolicy::new()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(5))
                .retryable_codes(["ABORTED", "UNAVAILABLE"]),
        )
        .compile_protos(&["golden/cases/retry/retry.proto"], &["golden/cases/retry"])?;

    // What a service's existing callers were built with: tonic-prost-build's
    // plain clients of the protos as written, steadfast options and all.
    let original = PathBuf::from(std::env::var("OUT_DIR")?).join("original");
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
            if std::path::Path::new(dir).join(name).is_file() {
                println!("cargo:rerun-if-changed={dir}/{name}");
            }
        }
    }
    tonic_prost_build::configure()
        .build_server(false)
        .out_dir(&original)
        .compile_fds(files)?;

    let (builder, _) = case("hostile")?;
    builder.compile_protos(
        &[
            "golden/cases/hostile/hostile.proto",
            "golden/cases/hostile/second.proto",
        ],
        &["golden/cases/hostile"],
    )?;

    // The service alone in its file, its messages in a sibling file of the
    // package, only the service's file named.
    let (builder, _) = case("servicefile")?;
    builder.compile_protos(
        &["golden/cases/servicefile/shop/v1/service.proto"],
        &["golden/cases/servicefile"],
    )?;

    // One package over many files, services alone in theirs.
    let (builder, _) = case("manyfiles")?;
    builder.compile_protos(
        &[
            "golden/cases/manyfiles/many/v1/reader.proto",
            "golden/cases/manyfiles/many/v1/writer.proto",
        ],
        &["golden/cases/manyfiles"],
    )?;
    Ok(())
}
