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

/// What prost-build and tonic-prost-build generate for [`PROTO`], with [`HEADER`].
fn generate() -> String {
    let fds = protox::compile([PROTO], [workspace().join("proto")]).expect("health.proto compiles");
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
