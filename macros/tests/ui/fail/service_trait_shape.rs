// A generic trait, and items that are not methods.
use tonic::Status;

#[steadfast::service]
trait Model<T> {
    const VERSION: u32;
    type Output;
    async fn hello(&self, name: String) -> Result<String, Status>;
    async fn generic<P: serde::de::DeserializeOwned>(&self, p: P) -> Result<u32, Status>;
}

fn main() {}
