//! Generates the lab service from `proto/lab/v1/lab.proto` with steadfast-build.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    steadfast_build::configure().compile_protos(&["proto/lab/v1/lab.proto"], &["proto"])?;
    Ok(())
}
