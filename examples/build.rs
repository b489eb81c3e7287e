//! Generates the lab service from `proto/lab/v1/lab.proto`, the counter's
//! gateway from `proto/schema.proto`, and the contact example from `proto/contact.proto`,
//! with steadfast-build (and the lab's client once more with `Sleep`
//! idempotent, for a test).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    steadfast_build::configure().compile_protos(
        &[
            "proto/lab/v1/lab.proto",
            "proto/schema.proto",
            "proto/contact.proto",
        ],
        &["proto"],
    )?;
    // The lab's client again, with `Sleep` idempotent (so that it is retried
    // after a liveness failure), for `tests/hung_peers.rs` only.
    let idempotent = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("idempotent");
    std::fs::create_dir_all(&idempotent)?;
    steadfast_build::configure()
        .out_dir(&idempotent)
        .build_server(false)
        .idempotent("lab.v1.Lab/Sleep")
        .compile_protos(&["proto/lab/v1/lab.proto"], &["proto"])?;
    Ok(())
}
