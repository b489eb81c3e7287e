//! Generates the blob benchmark's sink and the dispatch benchmark's adder from
//! `proto/bench/v1/bench.proto`, with steadfast-build.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    steadfast_build::configure()
        // Zero-copy payloads, as steadfast's own chunks have: the plain tonic
        // contender at its best.
        .bytes(".bench.v1.RawChunk.data")
        .compile_protos(&["proto/bench/v1/bench.proto"], &["proto"])?;
    Ok(())
}
