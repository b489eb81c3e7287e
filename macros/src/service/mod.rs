//! `#[steadfast::service]`: parse (`attr`, `ast`) → check (`valid`) → expand
//! (`expand`). The entry point is in `lib.rs`.

pub(crate) mod ast;
pub(crate) mod attr;
pub(crate) mod expand;
pub(crate) mod valid;
