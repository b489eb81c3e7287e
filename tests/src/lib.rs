//! Test support for the steadfast integration, interop, proxy and fault tests.
//!
//! One place for the helpers the scenario tests share:
//!
//! - [`tools`]: find external tools (nginx, protoc, a Python with grpcio) and apply
//!   the skip policy: skip with a `SKIPPED` line locally, fail in CI (`CI=true`).
//! - The idle-cutting TCP proxy lives in `steadfast_examples::proxy` (the tour uses it too).
//! - [`nginx`]: a real nginx in front of a gRPC server, on a temporary config.
//! - [`wait`]: wait for a condition with a deadline instead of sleeping and hoping.
//! - [`process`]: child processes that are killed when the test lets go of them.
//! - [`sequence`]: a server-streaming service that counts, on a server a test
//!   can kill and start again on the same port.
//! - [`hostile`]: listeners that accept TCP connections and close them, no gRPC.
//! - [`io`]: readers for blob tests (one that counts its drops).
//! - [`serve`]: an in-process gRPC server on loopback.
//! - [`golden`]: generated code compared with reviewed golden files, with a bless step.
//!
//! Everything listens on `127.0.0.1` on a port the OS picked, and everything a test
//! starts is stopped when its handle is dropped.

pub mod golden;
pub mod hostile;
pub mod io;
pub mod nginx;
pub mod process;
pub mod sequence;
pub mod serve;
pub mod tools;
pub mod wait;
