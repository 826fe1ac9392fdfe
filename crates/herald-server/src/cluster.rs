//! Cluster mode's configuration (`store = "postgres"`, `[postgres]`, `[redis]`, `[cluster]`,
//! `node_id`) and what it opens: the PostgreSQL store, the engine lease and the Redis peers.

use std::sync::Arc;
use std::time::Duration;

use herald_runtime::cluster::Leadership;
use herald_store_postgres::PostgresStore;
use serde::{Deserialize, Serialize};

/// Where everything durable lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// The embedded default: one SQLite file in the data folder, one process.
    #[default]
    Sqlite,
    /// Cluster mode: every node on one PostgreSQL database, with Redis between them.
    Postgres,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// A `postgres://` URL (or key=value string). Required with `store = "postgres"`.
    pub url: Option<String>,
    /// The schema Herald's tables live in (created if missing); default: the server's
    /// `search_path`.
    pub schema: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// A `redis://` URL. Required with `store = "postgres"`.
    pub url: Option<String>,
    /// Every key and channel of this cluster starts with it: clusters sharing one Redis pick
    /// different prefixes.
    pub prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            prefix: "herald".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// How long the engine lease lasts without a renewal (renewed every third of it): the
    /// longest a dead deciding node holds up decisions.
    pub lease_ms: u64,
    /// How long a node counts as alive without renewing (every third of it): the longest a
    /// dead node's users still count as looking. At most `live.reconnect_grace_ms`.
    pub node_ttl_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            lease_ms: 5_000,
            node_ttl_ms: 3_000,
        }
    }
}

impl crate::config::Config {
    /// This node's name in the cluster: `node_id`, else one made up at start.
    pub fn node_id(&self) -> String {
        self.node_id
            .clone()
            .unwrap_or_else(|| format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]))
    }

    pub(crate) fn validate_cluster(&self) -> Result<(), String> {
        let bad = |key: &str, why: &str| Err(format!("invalid configuration: `{key}` {why}"));
        if let Some(id) = &self.node_id
            && (id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        {
            return bad(
                "node_id",
                "must be 1 to 64 letters, digits, `-`, `_` or `.`",
            );
        }
        if !(1_000..=60_000).contains(&self.cluster.lease_ms) {
            return bad("cluster.lease_ms", "must be between 1000 and 60000");
        }
        if self.cluster.node_ttl_ms < 1_000
            || self.cluster.node_ttl_ms > self.live.reconnect_grace_ms
        {
            return bad(
                "cluster.node_ttl_ms",
                "must be at least 1000 and at most live.reconnect_grace_ms",
            );
        }
        if self.redis.prefix.is_empty() || self.redis.prefix.contains(char::is_whitespace) {
            return bad("redis.prefix", "must be a non-empty word");
        }
        if self.store == StoreKind::Postgres {
            if self.postgres.url.is_none() {
                return bad("postgres.url", "is required with store = \"postgres\"");
            }
            if self.redis.url.is_none() {
                return bad("redis.url", "is required with store = \"postgres\"");
            }
            // A key generated on each node would seal secrets the others cannot open.
            if self.master_key.is_none() && self.master_key_file.is_none() {
                return bad(
                    "master_key",
                    "(or master_key_file) is required with store = \"postgres\": every node must share it",
                );
            }
        }
        Ok(())
    }
}

/// Opens the PostgreSQL store named by the configuration (migrating it if needed).
pub async fn open_postgres(config: &crate::config::Config) -> anyhow::Result<Arc<PostgresStore>> {
    let url = config
        .postgres
        .url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("postgres.url is not set"))?;
    let store = PostgresStore::connect(url, config.postgres.schema.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the PostgreSQL store: {e}"))?;
    Ok(Arc::new(store))
}

/// What a cluster node runs beside the runtime: its peers and the tasks talking to them.
pub struct Node {
    pub peers: Arc<herald_peers_redis::RedisPeers>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Joins the cluster: the node's peers, and the engine lease it decides under.
pub async fn join(
    config: &crate::config::Config,
    store: Arc<PostgresStore>,
) -> anyhow::Result<(Leadership, Node)> {
    let node_id = config.node_id();
    let url = config
        .redis
        .url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("redis.url is not set"))?;
    let (peers, tasks) = herald_peers_redis::RedisPeers::connect(
        url,
        &config.redis.prefix,
        &node_id,
        Duration::from_millis(config.cluster.node_ttl_ms),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    tracing::info!(node = %peers.instance(), "joined the cluster");
    // The instance, not the node id: a node restarted under the same id is a new holder and
    // takes the lease with a new epoch.
    let leadership = Leadership::leased(
        store,
        peers.instance().to_string(),
        Duration::from_millis(config.cluster.lease_ms),
    );
    Ok((leadership, Node { peers, tasks }))
}
