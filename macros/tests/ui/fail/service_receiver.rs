// Without `&self`, or with another receiver: the server shares the service.
use tonic::Status;

#[steadfast::service]
trait Model {
    async fn hello(name: String) -> Result<String, Status>;
    async fn count(&mut self, step: u32) -> Result<u32, Status>;
    async fn take(self, step: u32) -> Result<u32, Status>;
}

fn main() {}
