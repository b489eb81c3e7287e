// A result type that does not serialize: reported at the type.
use tonic::Status;

#[derive(schemars::JsonSchema)]
struct Prediction {
    size: u64,
}

#[steadfast::service]
trait Model {
    async fn predict(&self, n: u32) -> Result<Prediction, Status>;
}

fn main() {}
