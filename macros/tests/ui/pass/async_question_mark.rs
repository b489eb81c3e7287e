// `?` in an async handler returning `Result<_, tonic::Status>`, as in a tonic
// service implementation.
use steadfast::IntoStatus;
use tonic::{Code, Request, Response, Status};

#[derive(Debug, IntoStatus)]
enum LookupError {
    #[status(not_found)]
    NoSuchUser(u64),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::NoSuchUser(id) => write!(f, "no user {id}"),
        }
    }
}

async fn find(id: u64) -> Result<String, LookupError> {
    Err(LookupError::NoSuchUser(id))
}

async fn get_user(request: Request<u64>) -> Result<Response<String>, Status> {
    let name = find(*request.get_ref()).await?;
    Ok(Response::new(name))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let status = runtime
        .block_on(get_user(Request::new(42)))
        .expect_err("no user 42");
    assert_eq!((status.code(), status.message()), (Code::NotFound, "no user 42"));
}
