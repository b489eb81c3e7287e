//! Procedural macros for steadfast, re-exported by the `steadfast` crate.
//!
//! Empty for now: the code-first `#[steadfast::service]` attribute (metadata
//! dispatch on `steadfast.v1.Dispatch`) lands with the dispatch work. Until
//! then, services are generated from `.proto` files by `steadfast-build`.
