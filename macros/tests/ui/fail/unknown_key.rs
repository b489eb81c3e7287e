// Keys `#[status]` does not have, and a `crate` that is not a path.
use steadfast::IntoStatus;

#[derive(Debug, IntoStatus)]
#[status(crate = "not a path")]
enum Error {
    #[status(message = "gone")]
    Missing,
    #[status(code(not_found))]
    Gone,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("error")
    }
}

fn main() {}
