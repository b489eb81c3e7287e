// A transparent field must convert into a `Status` itself (in a variant or a
// struct): the error is at its type.
use steadfast::IntoStatus;

#[derive(Debug, IntoStatus)]
#[status(internal)]
enum Error {
    #[status(transparent)]
    Grpc(tonic::Status),
    #[status(transparent)]
    Format(std::fmt::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("error")
    }
}

#[derive(Debug, IntoStatus)]
#[status(transparent)]
struct Wrapper {
    inner: std::num::ParseIntError,
}

fn main() {}
