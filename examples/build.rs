//! Generates the lab service from `proto/lab/v1/lab.proto`, and the blob
//! benchmark's sink and the dispatch benchmark's adder from
//! `proto/bench/v1/bench.proto`, and the counter's gateway from
//! `proto/schema.proto`, and the contact example from `proto/contact.proto`,
//! with steadfast-build.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    steadfast_build::configure()
        // Zero-copy payloads, as steadfast's own chunks have: the plain tonic
        // contender at its best.
        .bytes(".bench.v1.RawChunk.data")
        .compile_protos(
            &[
                "proto/lab/v1/lab.proto",
                "proto/bench/v1/bench.proto",
                "proto/schema.proto",
                "proto/contact.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
