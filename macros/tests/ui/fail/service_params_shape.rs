// Arguments in the wrong shape or order: two params values, a borrowed params
// type, an `impl Trait`, the `Context` after the params, params after the blob.
use steadfast::{Blob, Context};
use tonic::Status;

#[steadfast::service]
trait Model {
    async fn add(&self, a: u32, b: u32) -> Result<u32, Status>;
    async fn greet(&self, name: &str) -> Result<String, Status>;
    async fn any(&self, value: impl serde::de::DeserializeOwned) -> Result<(), Status>;
    async fn late(&self, n: u32, ctx: Context) -> Result<u32, Status>;
    async fn upload(&self, input: Blob, n: u32) -> Result<u32, Status>;
}

fn main() {}
