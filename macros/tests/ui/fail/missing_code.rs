// A variant with no code and no default on the enum. The error is at the
// variant, and the code that uses `?` on the type adds no error of its own.
use steadfast::IntoStatus;

#[derive(Debug, IntoStatus)]
enum Error {
    #[status(not_found)]
    Missing,
    Broken,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("error")
    }
}

#[derive(Debug, IntoStatus)]
struct NoCode;

impl std::fmt::Display for NoCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no code")
    }
}

fn handler() -> Result<(), tonic::Status> {
    Err(Error::Broken)?;
    Err(NoCode)?
}

fn main() {
    let _ = handler();
}
