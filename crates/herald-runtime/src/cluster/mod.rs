//! Cluster mode's seams in the runtime (docs/ARCHITECTURE.md, "Cluster mode"). Several nodes
//! share one PostgreSQL database; what they must also share but the database does not hold —
//! live events, presence, engine signals — travels through [`Peers`] (Redis, in
//! `herald-peers-redis`). One node at a time decides, under the engine lease ([`Leadership`]).
//!
//! On the embedded store there are no peers and the one process always decides.

mod leadership;
mod presence;

use async_trait::async_trait;
use herald_engine::ids::{TenantId, UserId};

use crate::live::presence::Presence;
use crate::live::routed::Routed;
use crate::notify::Signal;

pub use leadership::{Leadership, spawn_renewals};
pub use presence::merge;

/// The other nodes of the cluster, as this node talks to them. Sending never waits on the
/// network (a node's writes go out in order from a queue of their own); what cannot be sent
/// is lost the way a node's death loses it, and every reader fails open.
#[async_trait]
pub trait Peers: Send + Sync + 'static {
    /// Events committed on this node: the other nodes route them to their live sessions and
    /// wake their engine.
    fn committed(&self, tenant: &TenantId, routed: &[Routed]);
    /// A signal for the engine, wherever it runs now. A `Foreground` or `Away` is also this
    /// node's view of the user's presence from now on.
    fn signal(&self, signal: &Signal);
    /// The users' presence on every other live node, merged; a user no live node knows is
    /// away (and a node that stopped renewing its liveness counts as knowing nobody).
    async fn presence(&self, users: &[(TenantId, UserId)]) -> Vec<Presence>;
}
