// Returns that are not `Result<R, E>`.
use tonic::Status;

#[steadfast::service]
trait Model {
    async fn hello(&self, name: String) -> String;
    async fn ping(&self, n: u32);
    async fn check(&self, n: u32) -> Option<Result<u32, Status>>;
}

fn main() {}
