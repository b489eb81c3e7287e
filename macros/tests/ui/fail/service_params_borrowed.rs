// A params type that borrows from its input cannot be deserialized from the
// call's JSON: reported at the params type, saying why.
use tonic::Status;

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Hello<'a> {
    name: &'a str,
}

#[steadfast::service]
trait Greeter {
    async fn hello(&self, params: Hello<'static>) -> Result<String, Status>;
    async fn hi(&self, params: Hello<'_>) -> Result<String, Status>;
}

fn main() {}
