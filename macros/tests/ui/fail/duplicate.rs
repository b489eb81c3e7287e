// A code given twice, in two attributes or in one; a crate path given twice.
use steadfast::IntoStatus;

#[derive(Debug, IntoStatus)]
#[status(crate = "::steadfast", crate = "::steadfast")]
enum Error {
    #[status(not_found)]
    #[status(internal)]
    Missing,
    #[status(aborted, aborted)]
    Again,
    #[status(transparent, unavailable)]
    Down(tonic::Status),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("error")
    }
}

fn main() {}
