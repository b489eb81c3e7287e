// `#[status]` with nothing in it, in each of its forms.
use steadfast::IntoStatus;

#[derive(Debug, IntoStatus)]
enum Error {
    #[status]
    Missing,
    #[status()]
    Gone,
    #[status = "not_found"]
    Lost,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("error")
    }
}

fn main() {}
