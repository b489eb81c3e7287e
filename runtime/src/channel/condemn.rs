//! What a generated client's `connect` and `connect_lazy` make: a channel
//! with steadfast's defaults and the [`Condemn`] of its connections, which a
//! liveness failure condemns. Crate-private; generated code reaches it
//! through `__private`.

use tonic::codegen::StdError;
use tonic::transport::{Channel, Endpoint, Error};

use super::connector::{self, Connections, Instance};
use super::endpoint;
#[cfg(doc)]
use super::{Failover, connect, connect_lazy};

/// [`connect_lazy`], and the [`Condemn`] of its connections (for a generated
/// client's retries).
pub fn connect_lazy_condemnable<D>(dst: D) -> Result<(Channel, Condemn), Error>
where
    D: TryInto<Endpoint>,
    D::Error: Into<StdError>,
{
    let (channel, connections) = connector::lazy(&endpoint(dst)?, None);
    Ok((channel, Condemn::new(connections, None)))
}

/// [`connect`], and the [`Condemn`] of its connections (for a generated
/// client's retries).
pub async fn connect_condemnable<D>(dst: D) -> Result<(Channel, Condemn), Error>
where
    D: TryInto<Endpoint>,
    D::Error: Into<StdError>,
{
    let (channel, connections) = connector::eager(&endpoint(dst)?).await?;
    Ok((channel, Condemn::new(connections, None)))
}

/// What a call that heard nothing from its server within its liveness window
/// condemns: the channel's connection (its next read fails, so it closes and
/// the retry makes a new one) and, in a [`Failover`], marks the instance down
/// (so the retry goes to the next instance). A [`Failover`] puts one in each
/// response's extensions; a generated client made by `connect` or
/// `connect_lazy` holds its channel's.
#[derive(Clone)]
pub struct Condemn {
    connections: Connections,
    instance: Option<(Instance, u64)>,
}

impl Condemn {
    pub(super) fn new(connections: Connections, instance: Option<(Instance, u64)>) -> Condemn {
        Condemn {
            connections,
            instance,
        }
    }

    /// Condemns the connection (and marks the instance down), saying `why`.
    pub(crate) fn condemn(&self, why: &dyn std::fmt::Display) {
        tracing::debug!("condemning a connection: {why}");
        self.connections.condemn();
        if let Some((instance, epoch)) = &self.instance {
            instance.failed(Some(*epoch), why);
        }
    }
}

impl std::fmt::Debug for Condemn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condemn").finish_non_exhaustive()
    }
}
