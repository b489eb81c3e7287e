//! steadfast-build (skeleton, being written)
#![allow(missing_docs)]
mod print;
