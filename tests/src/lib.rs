//! Test support for the steadfast integration, interop, proxy and fault tests.
//!
//! # Where a test goes
//!
//! - **`examples/tests/`** runs the example binaries as processes
//!   (`CARGO_BIN_EXE_<name>`: cargo builds a package's binaries for its own
//!   integration tests only): a server started, killed or stopped and started
//!   again, a client's output, nginx or Python in front of one. Plus the check
//!   of the examples' own build script.
//! - **`tests/tests/`** (this crate) is everything in-process: servers and
//!   clients the test runs on its own runtime, the examples' services used as
//!   a library (`steadfast_examples::…`) included, with the helpers below.
//!
//! A test that needs no binary of `steadfast-examples` belongs here: it runs
//! faster, and a failure points at a line of the test, not at a child's stderr.
//! Both kinds take their helpers from this crate, never from a copy.
//!
//! One place for the helpers the scenario tests share:
//!
//! - [`tools`]: find external tools (nginx, HAProxy, Caddy, protoc, a Python with grpcio) and apply
//!   the skip policy: skip with a `SKIPPED` line locally, fail in CI (`CI=true`).
//! - The idle-cutting TCP proxy lives in `steadfast_examples::proxy` (the tour uses it too).
//! - [`nginx`]: a real nginx in front of a gRPC server, on a temporary config.
//! - [`haproxy`] and [`caddy`]: a real HAProxy and a real Caddy in front of a gRPC
//!   server, each running its shipped `examples/deploy/` config.
//! - [`group`]: a child process leading its own process group, killed with it.
//! - [`wait`]: wait for a condition with a deadline instead of sleeping and hoping.
//! - [`process`]: child processes that are killed when the test lets go of them.
//! - [`sequence`]: a server-streaming service that counts, on a server a test
//!   can kill and start again on the same port.
//! - [`hostile`]: listeners that accept TCP connections and close them, no gRPC.
//! - [`io`]: readers for blob tests (one that counts its drops).
//! - [`serve`]: in-process gRPC servers on loopback: tonic's, and steadfast's
//!   production server with a handle that drains it.
//! - [`observe`]: a span layer and a metrics recorder for the current thread,
//!   to see what `steadfast::observe` reports.
//! - [`golden`]: generated code compared with reviewed golden files, with a bless step.
//!
//! Everything listens on `127.0.0.1` on a port the OS picked, and everything a test
//! starts is stopped when its handle is dropped.

pub mod caddy;
pub mod golden;
pub mod group;
pub mod haproxy;
pub mod hostile;
pub mod io;
pub mod nginx;
pub mod observe;
pub mod process;
pub mod sequence;
pub mod serve;
pub mod tools;
pub mod wait;
