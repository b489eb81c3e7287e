// A method that is not `async`: each method is a remote call.
use tonic::Status;

#[steadfast::service]
trait Model {
    fn hello(&self, name: String) -> Result<String, Status>;
    async fn bye(&self, name: String) -> Result<String, Status>;
}

fn main() {}
