// Codes per variant, a default for the rest, every kind of variant, and a struct.
use steadfast::IntoStatus;
use tonic::{Code, Status};

#[derive(Debug, IntoStatus)]
#[status(internal)]
enum Error {
    #[status(not_found)]
    Missing(String),
    #[status(invalid_argument)]
    BadRange { from: u64, to: u64 },
    #[status(permission_denied)]
    Denied,
    Broken,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Missing(name) => write!(f, "{name} is missing"),
            Error::BadRange { from, to } => write!(f, "bad range {from}..{to}"),
            Error::Denied => f.write_str("denied"),
            Error::Broken => f.write_str("broken"),
        }
    }
}

#[derive(Debug, IntoStatus)]
#[status(unavailable)]
struct Overloaded;

impl std::fmt::Display for Overloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("overloaded")
    }
}

fn main() {
    let status = Status::from(Error::BadRange { from: 3, to: 1 });
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "bad range 3..1");
    assert_eq!(Status::from(Error::Broken).code(), Code::Internal);
    assert_eq!(Status::from(Overloaded).code(), Code::Unavailable);
}
