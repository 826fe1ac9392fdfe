//! Herald's cluster peers on Redis (`herald_runtime::cluster::Peers`): what nodes sharing one
//! PostgreSQL database must also share but the database does not hold.
//!
//! - **Live events**: a node that commits events publishes what its hub routed on the
//!   cluster's bus (one pub/sub channel); every other node routes them to its own sessions and
//!   wakes its engine. Pub/sub is at-most-once: a message lost with a broken connection is a
//!   gap the resume cursor fills from the store at the conversation's next event.
//! - **Signals** (`Foreground`, `Away`, `Wake`) go on the same bus to whichever node decides.
//! - **Presence**: each node writes its view of a user (foreground or away, since when) into
//!   the user's hash, one field per node instance, and keeps its instance in the live-node set
//!   with a liveness deadline it renews. A reader merges the views of live instances only, so
//!   a node that dies takes its users' presence with it once its liveness runs out (fail
//!   open: they become push-eligible).
//!
//! Writes leave from one queue, in order, pipelined; they never hold up a request. When Redis
//! cannot be reached, writes are dropped (and counted) and readers see nobody elsewhere.

mod listener;
mod wire;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use herald_engine::ids::{TenantId, UserId};
use herald_runtime::Runtime;
use herald_runtime::cluster::Peers;
use herald_runtime::live::presence::{Presence, PresenceState};
use herald_runtime::live::routed::Routed;
use herald_runtime::notify::Signal;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::wire::{Body, Keys, Message, parse_view, view};
use crate::writer::Op;

/// This node's link to the others.
pub struct RedisPeers {
    /// `<node_id>/<random>`: a restarted node is a new instance, so the views its previous
    /// life wrote are never read again.
    instance: String,
    keys: Keys,
    client: redis::Client,
    reads: ConnectionManager,
    writes: mpsc::UnboundedSender<Op>,
}

impl RedisPeers {
    /// Connects to `url` as `node_id`; clusters sharing one Redis use different `prefix`es.
    /// A node's liveness runs out `liveness` after its last renewal (renewed every third of
    /// it). Starts the writer and the liveness renewals.
    pub async fn connect(
        url: &str,
        prefix: &str,
        node_id: &str,
        liveness: Duration,
    ) -> Result<(Arc<RedisPeers>, Vec<JoinHandle<()>>), String> {
        let client = redis::Client::open(url).map_err(|e| format!("redis url: {e}"))?;
        let reads = ConnectionManager::new(client.clone())
            .await
            .map_err(|e| format!("cannot reach redis: {e}"))?;
        let (writes, queue) = mpsc::unbounded_channel();
        let instance = format!(
            "{node_id}/{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let keys = Keys::new(prefix);
        let writer = tokio::spawn(writer::run(
            reads.clone(),
            keys.clone(),
            instance.clone(),
            liveness,
            queue,
        ));
        let peers = Arc::new(RedisPeers {
            instance,
            keys,
            client,
            reads,
            writes,
        });
        // Live before anything else is sent, so its first views count at once.
        peers.send(Op::Heartbeat);
        let renewals = tokio::spawn({
            let writes = peers.writes.clone();
            async move {
                let mut tick = tokio::time::interval(liveness / 3);
                loop {
                    tick.tick().await;
                    if writes.send(Op::Heartbeat).is_err() {
                        return;
                    }
                }
            }
        });
        Ok((peers, vec![writer, renewals]))
    }

    /// Listens to the other nodes on behalf of `runtime` (its hub and engine).
    pub fn listen(self: &Arc<Self>, runtime: Runtime) -> JoinHandle<()> {
        tokio::spawn(listener::run(
            self.client.clone(),
            self.keys.bus(),
            self.instance.clone(),
            runtime,
        ))
    }

    /// A clean shutdown: this instance leaves the live set at once, so its users' presence
    /// goes with it without waiting for its liveness to run out.
    pub async fn leave(&self) {
        let mut conn = self.reads.clone();
        let left = redis::cmd("ZREM")
            .arg(self.keys.nodes())
            .arg(&self.instance)
            .query_async::<()>(&mut conn)
            .await;
        if let Err(e) = left {
            tracing::warn!(error.message = %e, "could not leave the cluster's live set; it lapses on its own");
        }
    }

    /// This node's name on the bus and in presence views (`<node_id>/<random>`).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn send(&self, op: Op) {
        // The writer only stops with the runtime.
        let _ = self.writes.send(op);
    }

    fn publish(&self, body: Body) {
        let message = Message {
            from: self.instance.clone(),
            body,
        };
        match serde_json::to_string(&message) {
            Ok(payload) => self.send(Op::Publish(payload)),
            Err(e) => tracing::error!(error.message = %e, "cannot encode a cluster message"),
        }
    }

    async fn read_presence(
        &self,
        users: &[(TenantId, UserId)],
    ) -> redis::RedisResult<Vec<Presence>> {
        let now_ms = writer::now_ms();
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGEBYSCORE")
            .arg(self.keys.nodes())
            .arg(now_ms)
            .arg("+inf");
        for (tenant, user) in users {
            pipe.cmd("HGETALL").arg(self.keys.presence(tenant, user));
        }
        let mut reads = self.reads.clone();
        let (alive, views): (Vec<String>, Vec<Vec<(String, String)>>) = {
            let mut values: Vec<redis::Value> = pipe.query_async(&mut reads).await?;
            let rest = values.split_off(1);
            let alive = redis::from_redis_value(values.remove(0))?;
            let views = rest
                .into_iter()
                .map(redis::from_redis_value)
                .collect::<Result<_, _>>()?;
            (alive, views)
        };
        Ok(views
            .into_iter()
            .map(|fields| {
                fields
                    .iter()
                    .filter(|(instance, _)| *instance != self.instance && alive.contains(instance))
                    .filter_map(|(_, field)| parse_view(field))
                    .fold(nobody(), herald_runtime::cluster::merge)
            })
            .collect())
    }
}

/// Presence as nobody elsewhere sees the user.
fn nobody() -> Presence {
    Presence {
        state: PresenceState::Away,
        since: None,
        grace_until: None,
        sessions: 0,
    }
}

#[async_trait]
impl Peers for RedisPeers {
    fn committed(&self, tenant: &TenantId, routed: &[Routed]) {
        self.publish(Body::Committed {
            tenant: tenant.clone(),
            routed: routed.to_vec(),
        });
    }

    fn signal(&self, signal: &Signal) {
        // This node's view first: the node that decides reads it when the signal arrives.
        match signal {
            Signal::Foreground { tenant, user } => self.send(Op::View {
                key: self.keys.presence(tenant, user),
                value: view(PresenceState::Foreground, time::OffsetDateTime::now_utc()),
            }),
            Signal::Away {
                tenant,
                user,
                since,
            } => self.send(Op::View {
                key: self.keys.presence(tenant, user),
                value: view(PresenceState::Away, *since),
            }),
            Signal::Wake => {}
        }
        self.publish(Body::Signal {
            signal: signal.clone(),
        });
    }

    async fn presence(&self, users: &[(TenantId, UserId)]) -> Vec<Presence> {
        if users.is_empty() {
            return Vec::new();
        }
        match self.read_presence(users).await {
            Ok(presence) => presence,
            Err(e) => {
                // Fail open: nobody is looking elsewhere, so nobody misses a push.
                tracing::warn!(error.message = %e, "cannot read presence from redis; counting other nodes' users as away");
                metrics::counter!("herald_cluster_presence_failures_total").increment(1);
                users.iter().map(|_| nobody()).collect()
            }
        }
    }
}
