// Two functions with one wire name, by `name = "..."` or by the method's name.
use tonic::Status;

#[steadfast::service]
trait Model {
    async fn hello(&self, name: String) -> Result<String, Status>;
    #[steadfast::func(name = "hello")]
    async fn greet(&self, name: String) -> Result<String, Status>;
    #[steadfast::func(name = "predict")]
    async fn predict_v1(&self, n: u32) -> Result<u32, Status>;
    #[steadfast::func(name = "predict")]
    async fn predict_v2(&self, n: u32) -> Result<u32, Status>;
}

fn main() {}
