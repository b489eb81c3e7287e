// A params type that does not deserialize: reported at the type.
use tonic::Status;

#[derive(schemars::JsonSchema)]
struct HelloParams {
    name: String,
}

#[steadfast::service]
trait Model {
    async fn hello(&self, params: HelloParams) -> Result<String, Status>;
}

fn main() {}
