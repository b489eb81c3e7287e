//! `steadfast::server::health::pb` is the code prost-build and
//! tonic-prost-build generate for `proto/grpc/health/v1/health.proto` (gRPC's
//! health protocol with `List`, which tonic-health 0.14's own types lack),
//! checked in as `runtime/generated/grpc.health.v1.rs` so that the runtime
//! needs no build script.
//!
//! This test regenerates it (protox, prost-build's default `Config` with
//! tonic-prost-build's client and server, no transport helpers, then
//! prettyplease) and fails when the checked-in file differs. After changing
//! the proto, run
//! `STEADFAST_BLESS=1 cargo test -p steadfast-tests --test health_proto` and
//! review the diff of `runtime/generated/` in git.
//!
//! The same goes for `runtime/generated/grpc.health.v1.bin`, the encoded
//! `FileDescriptorSet` of the proto (source info included, so reflection
//! clients show its comments), `steadfast::server::health::FILE_DESCRIPTOR_SET`.

use std::path::{Path, PathBuf};

const HEADER: &str = "\
// @generated from proto/grpc/health/v1/health.proto by prost-build (default Config)
// and tonic-prost-build (client and server, no transport), formatted with
// prettyplease. Do not edit: change the proto, then run
//   STEADFAST_BLESS=1 cargo test -p steadfast-tests --test health_proto
// and review the diff. Included by runtime/src/server/health.rs as
// `steadfast::server::health::pb`.
";

const PROTO: &str = "grpc/health/v1/health.proto";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The proto's `FileDescriptorSet`, as protox compiles it (it imports
/// nothing), with source info.
macro_rules! descriptor_set {
    () => {
        protox::compile([PROTO], [workspace().join("proto")]).expect("health.proto compiles")
    };
}

/// What prost-build and tonic-prost-build generate for [`PROTO`], with [`HEADER`].
fn generate() -> String {
    let fds = descriptor_set!();
    let requests = fds
        .file
        .into_iter()
        .filter(|file| file.name() == PROTO)
        .map(|file| {
            let module = prost_build::Module::from_protobuf_package_name(file.package());
            (module, file)
        })
        .collect();
    let services = tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .service_generator();
    let mut modules = prost_build::Config::new()
        .service_generator(services)
        .generate(requests)
        .expect("prost-build generates");
    assert_eq!(modules.len(), 1, "one module: grpc.health.v1");
    let (module, code) = modules.drain().next().expect("one module");
    assert_eq!(module.parts().collect::<Vec<_>>(), ["grpc", "health", "v1"]);
    let file = syn::parse_file(&code).expect("the generated code parses");
    format!("{HEADER}{}", prettyplease::unparse(&file))
}

#[test]
fn the_checked_in_health_types_are_what_tonic_prost_build_generates() {
    steadfast_tests::golden::check_path(
        &workspace().join("runtime/generated/grpc.health.v1.rs"),
        &generate(),
        "STEADFAST_BLESS=1 cargo test -p steadfast-tests --test health_proto",
    );
}

#[test]
fn the_checked_in_descriptor_set_is_what_protox_compiles() {
    use prost::Message as _;

    let fds = descriptor_set!();
    assert_eq!(
        fds.file.iter().map(|file| file.name()).collect::<Vec<_>>(),
        [PROTO],
        "health.proto alone: it imports nothing"
    );
    let actual = fds.encode_to_vec();
    let golden = workspace().join("runtime/generated/grpc.health.v1.bin");
    if std::env::var_os("STEADFAST_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&golden, &actual).expect("write the descriptor set");
        return;
    }
    let expected = std::fs::read(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `STEADFAST_BLESS=1 cargo test -p steadfast-tests --test health_proto`",
            golden.display()
        )
    });
    assert!(
        expected == actual,
        "{} is not what protox compiles from {PROTO}; run \
         `STEADFAST_BLESS=1 cargo test -p steadfast-tests --test health_proto`",
        golden.display()
    );
    assert_eq!(
        steadfast::server::health::FILE_DESCRIPTOR_SET,
        expected.as_slice(),
        "the runtime serves the checked-in descriptor set"
    );
}
