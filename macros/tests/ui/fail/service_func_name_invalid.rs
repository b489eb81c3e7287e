// A method whose Rust name cannot be an `x-func-name`, without `name = "..."`:
// reported at the method's name, with the way out.
use tonic::Status;

#[steadfast::service]
trait Greeter {
    async fn grüße(&self, name: String) -> Result<String, Status>;
    async fn aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa(&self, name: String) -> Result<String, Status>;
    // Renamed on the wire: fine.
    #[steadfast::func(name = "gruesse")]
    async fn grüßen(&self, name: String) -> Result<String, Status>;
}

fn main() {}
