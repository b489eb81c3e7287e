// The message is the value's `Display`: without it the error is at the type's name.
use steadfast::IntoStatus;

#[derive(Debug, IntoStatus)]
enum Error {
    #[status(not_found)]
    Missing,
}

fn main() {}
