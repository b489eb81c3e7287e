// `transparent` on tuple and named variants, on a struct, on every variant of
// an enum (generic or not), and an enum with no variants at all.
use steadfast::IntoStatus;
use tonic::{Code, Status};

#[derive(Debug, IntoStatus)]
#[status(data_loss)]
struct Corrupt;

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("corrupt")
    }
}

#[derive(Debug, IntoStatus)]
#[status(internal)]
enum Error {
    #[status(transparent)]
    Status(Status),
    #[status(transparent)]
    Store { source: Corrupt },
    Other,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("other")
    }
}

// No `Display` needed: no variant uses it.
#[derive(Debug, IntoStatus)]
enum OnlyTransparent {
    #[status(transparent)]
    A(Error),
    #[status(transparent)]
    B(Corrupt),
}

// Generic and only transparent: no `Display` bound on the impl either.
#[derive(Debug, IntoStatus)]
enum Either<A, B> {
    #[status(transparent)]
    Left(A),
    #[status(transparent)]
    Right(B),
}

#[derive(Debug, IntoStatus)]
#[status(transparent)]
struct Wrapper {
    inner: Error,
}

#[derive(Debug, IntoStatus)]
enum Never {}

fn main() {
    let status = Status::from(Error::Status(Status::unauthenticated("who?")));
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "who?"));
    let status = Status::from(Error::Store { source: Corrupt });
    assert_eq!((status.code(), status.message()), (Code::DataLoss, "corrupt"));
    assert_eq!(Status::from(OnlyTransparent::A(Error::Other)).code(), Code::Internal);
    assert_eq!(Status::from(OnlyTransparent::B(Corrupt)).code(), Code::DataLoss);
    assert_eq!(Status::from(Wrapper { inner: Error::Other }).message(), "other");
    let either: Either<Corrupt, Status> = Either::Left(Corrupt);
    assert_eq!(Status::from(either).code(), Code::DataLoss);
    let _: fn(Never) -> Status = Status::from;
}
