//! Generates the service's server and client from its proto with
//! steadfast-build (no `protoc` needed), and the wire descriptor set the server
//! serves by reflection.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    steadfast_build::configure().compile_protos(&["proto/service/v1/service.proto"], &["proto"])?;
    Ok(())
}
