// A method named like one of the generated client's own methods.
use tonic::Status;

#[steadfast::service]
trait Model {
    async fn connect(&self, n: u32) -> Result<u32, Status>;
    async fn upstream(&self, n: u32) -> Result<u32, Status>;
    async fn connect_lazy(&self, n: u32) -> Result<u32, Status>;
}

fn main() {}
