// Names that cannot be an `x-func-name`, and intervals that are not one.
use tonic::Status;

#[steadfast::service]
trait Model {
    #[steadfast::func(name = "")]
    async fn a(&self, n: u32) -> Result<u32, Status>;
    #[steadfast::func(name = "two words")]
    async fn b(&self, n: u32) -> Result<u32, Status>;
    #[steadfast::func(name = "modèle")]
    async fn c(&self, n: u32) -> Result<u32, Status>;
    #[steadfast::func(heartbeat_ms = 0)]
    async fn d(&self, n: u32) -> Result<u32, Status>;
    #[steadfast::func(heartbeat_ms = 5000000000)]
    async fn e(&self, n: u32) -> Result<u32, Status>;
}

fn main() {}
