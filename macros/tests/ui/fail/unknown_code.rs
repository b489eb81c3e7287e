// Every bad code is reported, each at its token: a typo (with the list),
// tonic's CamelCase name and a path (with the spelling to use), and `ok`.
use steadfast::IntoStatus;

#[derive(Debug, IntoStatus)]
enum Error {
    #[status(not_fund)]
    Missing,
    #[status(NotFound)]
    Gone,
    #[status(tonic::Code::PermissionDenied)]
    Denied,
    #[status(ok)]
    Fine,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("error")
    }
}

fn main() {}
