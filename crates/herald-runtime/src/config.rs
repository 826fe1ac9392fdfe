//! The runtime's sections of the server configuration (`live`, `delivery`, `engine`); the
//! binary reads them from its file and environment and hands them in.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// How often the client must show it is alive (any frame); announced in `hello`.
    pub heartbeat_ms: u64,
    /// Silence after which a connection is dead (fail open: its user becomes push-eligible).
    pub dead_after_ms: u64,
    /// How long a dropped foreground connection still counts as present.
    pub reconnect_grace_ms: u64,
    /// Frames queued per session before a slow session is closed (it resumes, losing nothing).
    pub session_queue: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            heartbeat_ms: 25_000,
            dead_after_ms: 60_000,
            reconnect_grace_ms: 10_000,
            session_queue: 1024,
        }
    }
}

/// The delivery workers (per-app retry, breaker and concurrency settings live in each app's
/// `delivery` policy).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Most deliveries claimed from the queue at once.
    pub batch: usize,
    /// Most deliveries this node handles at once, across tenants.
    pub max_in_flight: usize,
    /// Most deliveries of one tenant in flight at once (the bulkhead: a tenant whose endpoint
    /// is slow fills only its own share).
    pub per_tenant_concurrency: usize,
    /// How long a claimed delivery is reserved for this node; a node that dies leaves it to
    /// be claimed again after this.
    pub lease_ms: u64,
    /// Longest one attempt may take before it counts as a retryable timeout.
    pub attempt_timeout_ms: u64,
    /// Longest the workers sleep without looking at the queue.
    pub poll_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            batch: 256,
            max_in_flight: 4096,
            per_tenant_concurrency: 512,
            lease_ms: 60_000,
            attempt_timeout_ms: 30_000,
            poll_ms: 1_000,
        }
    }
}

/// The notification engine task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Longest the engine sleeps without looking for work. Writes through the API wake it at
    /// once; this catches what nothing woke it for (events written by the operator CLI).
    pub poll_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { poll_ms: 1_000 }
    }
}
