// Type, lifetime and const parameters, with a where clause of the user's own.
use std::fmt::{self, Display};
use steadfast::IntoStatus;
use tonic::{Code, Status};

#[derive(Debug, IntoStatus)]
enum Error<'a, K, E, const N: usize>
where
    K: fmt::Debug,
{
    #[status(not_found)]
    Missing(&'a K),
    #[status(out_of_range)]
    TooMany([u8; N]),
    #[status(transparent)]
    Inner(E),
}

impl<K: fmt::Debug, E: Display, const N: usize> Display for Error<'_, K, E, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Missing(key) => write!(f, "missing {key:?}"),
            Error::TooMany(_) => write!(f, "more than {N}"),
            Error::Inner(inner) => inner.fmt(f),
        }
    }
}

fn main() {
    let key = "k";
    let error: Error<'_, &str, Status, 2> = Error::Missing(&key);
    let status = Status::from(error);
    assert_eq!((status.code(), status.message()), (Code::NotFound, "missing \"k\""));
    let error: Error<'_, (), Status, 2> = Error::TooMany([0; 2]);
    assert_eq!(Status::from(error).message(), "more than 2");
    let error: Error<'_, (), Status, 2> = Error::Inner(Status::aborted("again"));
    assert_eq!(Status::from(error).code(), Code::Aborted);
}
