// An error type that is not `Into<tonic::Status>`: reported at the return type.
#[steadfast::service]
trait Model {
    async fn hello(&self, name: String) -> Result<String, String>;
}

fn main() {}
