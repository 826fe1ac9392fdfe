//! The engine lease (cluster mode): several nodes share one database, and exactly one of them
//! decides at a time. A node takes the lease, renews it well before it runs out, and every
//! engine commit carries the [`Fence`] it got: the store refuses a commit whose fence is no
//! longer the lease's (`StoreError::Fenced`), so a node that stalled past its lease (a long
//! pause, `SIGSTOP`) and wakes up mid-step cannot decide anything another node already
//! decided. The lease's clock is the database's, so nodes with skewed clocks still agree on
//! who holds it.
//!
//! The embedded store has no lease: one process owns the data folder (its lock file).

use std::time::Duration;

use async_trait::async_trait;

use crate::store::StoreError;

/// What a lease holder's commits carry; the store checks it inside the commit's transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The node holding the lease.
    pub holder: String,
    /// Grows every time the lease changes hands (or its holder lost it and took it back), so
    /// an old holder's fence never matches again.
    pub epoch: i64,
}

#[async_trait]
pub trait EngineLease: Send + Sync + 'static {
    /// Renews the lease if `holder` has it, or takes it if it is free or has run out; answers
    /// the fence `holder` now decides under, or `None` while another node holds it.
    async fn acquire(&self, holder: &str, ttl: Duration) -> Result<Option<Fence>, StoreError>;
    /// Gives the lease up (a clean shutdown), so another node takes over without waiting for
    /// it to run out. Nothing happens if `fence` no longer holds it.
    async fn release(&self, fence: &Fence) -> Result<(), StoreError>;
}
