//! The front doors' sections of the server configuration (`limits`, `auth`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted (bytes).
    pub max_body_bytes: usize,
    /// Most events in one `POST /v1/events` batch.
    pub max_batch_events: usize,
    /// Largest WebSocket frame accepted from a client (bytes).
    pub max_frame_bytes: usize,
    /// Most events returned by one page of `GET …/events`.
    pub max_page_events: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Operator key for the admin API (`/v1/admin/…`). Unset: the admin API is disabled.
    pub operator_key: Option<String>,
    /// File holding the operator key (takes effect when `operator_key` is unset).
    pub operator_key_file: Option<PathBuf>,
    /// Clock skew tolerated on client tokens (seconds).
    pub token_leeway_s: u64,
    /// Longest lifetime of a client token minted by Herald (seconds).
    pub max_minted_ttl_s: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_batch_events: 1000,
            max_frame_bytes: 64 * 1024,
            max_page_events: 500,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            operator_key: None,
            operator_key_file: None,
            token_leeway_s: 30,
            max_minted_ttl_s: 86_400,
        }
    }
}
