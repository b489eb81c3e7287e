// Keys the attributes do not have.
use tonic::Status;

#[steadfast::service(name = "models")]
trait Model {
    #[steadfast::func(timeout_ms = 1000)]
    async fn hello(&self, name: String) -> Result<String, Status>;
    #[steadfast::func(heartbeat = 500)]
    async fn predict(&self, n: u32) -> Result<u32, Status>;
}

fn main() {}
