// Attributes in places where they mean nothing.
use steadfast::IntoStatus;

#[derive(Debug, IntoStatus)]
#[status(transparent)]
enum Error {
    #[status(not_found, crate = "::steadfast")]
    Missing,
    #[status(internal)]
    Broken {
        #[status(not_found)]
        reason: String,
    },
    #[status(transparent)]
    Nothing,
    #[status(transparent)]
    Two(tonic::Status, tonic::Status),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("error")
    }
}

fn main() {}
