// One undocumented method under `deny(missing_docs)`: one error, at the method.
#![deny(missing_docs)]
//! A crate.

use tonic::Status;

/// Greets.
#[steadfast::service]
pub trait Greeter {
    async fn hello(&self, name: String) -> Result<String, Status>;
    /// Documented.
    async fn bye(&self, name: String) -> Result<String, Status>;
}

fn main() {}
